"""Fixtures shared by every test suite in the workspace."""

pytest_plugins = ["kit.testing.fixtures"]
