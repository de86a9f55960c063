"""What can go wrong in the auth domain; the API maps each to an HTTP status once."""

from __future__ import annotations


class AuthError(Exception):
    """Base of the auth service's domain errors; the message is meant for the caller."""


class EmailTakenError(AuthError):
    """Another account already uses this email address (compared case-insensitively)."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"an account with the email {email!r} already exists: sign in with it "
            "(POST /auth/token) or register with another address"
        )


class InvalidCredentialsError(AuthError):
    """The email is unknown or the password is wrong; the caller is not told which."""

    def __init__(self) -> None:
        super().__init__(
            "the email or the password is wrong: check both and try again, or register first"
        )


class UserNotFoundError(AuthError):
    """The authenticated user no longer exists."""

    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"the user {user_id!r} of this token no longer exists: register again or sign in "
            "with another account"
        )


class InvalidInputError(ValueError):
    """A value breaks a domain rule (a malformed email, a weak password)."""
