"""Rules for the values a user chooses: what counts as an email and as a strong password."""

from __future__ import annotations

import re

from auth_service.domain.errors import InvalidInputError

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5
# RFC 5322 dot-atom local part; a domain of DNS labels with an alphabetic top-level label.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "qwertyuiop",
        "1q2w3e4r5t",
        "iloveyou123",
        "password123",
        "password1234",
        "passw0rd123",
        "letmein1234",
        "welcome1234",
        "administrator",
        "changeme123",
    }
)


def normalise_email(value: str) -> str:
    """The email without surrounding spaces; raises InvalidInputError when it is not one."""
    email = value.strip()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or len(email) > MAX_EMAIL_LENGTH
        or len(local) > 64
        or not _LOCAL_PART.match(local)
        or not _DOMAIN.match(domain)
    ):
        raise InvalidInputError(
            "the email is not a valid address: use the form name@example.com "
            f"(at most {MAX_EMAIL_LENGTH} characters)"
        )
    return email


def check_password(password: str, email: str | None = None) -> None:
    """Raise InvalidInputError, saying how to fix it, when the password is too weak."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a passphrase of a few words works well)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )
    if len(set(password)) < MIN_DISTINCT_CHARACTERS or password.lower() in _COMMON_PASSWORDS:
        raise InvalidInputError(
            "the password is too easy to guess: avoid repeated characters and common "
            "passwords; a passphrase of a few unrelated words works well"
        )
    if email is not None:
        lowered = password.lower()
        if lowered in (email.lower(), email.lower().partition("@")[0]):
            raise InvalidInputError("the password must not be your email address: choose another")
