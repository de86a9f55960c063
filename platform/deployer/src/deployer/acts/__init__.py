"""The reconciler's actions, one module each: what the orchestrator does once
:mod:`deployer.actions` chose it. Each act returns an :class:`deployer.actions.Outcome` (or what it
observed) and reports nothing itself: the orchestrator records and publishes."""
