"""Domain errors; the API maps each to an HTTP status once (api/errors.py)."""


class OrderError(Exception):
    """Base of the order service's domain errors."""


class OrderNotFoundError(OrderError):
    """No order with that id belongs to the caller."""


class IdempotencyConflictError(OrderError):
    """The Idempotency-Key was already used with a different request body."""
