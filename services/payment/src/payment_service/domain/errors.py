"""Domain errors; the API maps each to an HTTP status once (api/errors.py)."""


class PaymentNotFoundError(Exception):
    """No payment for that order belongs to the caller (or it is not settled yet)."""
