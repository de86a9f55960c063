"""Errors a handler raises to steer what happens to a delivery."""


class PermanentEventError(Exception):
    """The event can never be processed (bad data, broken invariant): dead-letter it now."""
