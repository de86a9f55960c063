"""Helpers for tests of services built on the chassis: real processes, free ports."""
