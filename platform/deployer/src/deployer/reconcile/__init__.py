"""Reconcile: observe a release once per pass, decide the next action (pure), act through ports."""
