"""Rules for the values a user chooses: what counts as an email and as a strong password.

Each rule is also a pattern that the API's OpenAPI document publishes, written so that JSON
Schema's regular expressions (ECMA-262) and Python's read it alike: ``[\\s\\S]`` for any
character, and ``(?![\\s\\S])`` for the end, since Python's ``$`` also matches before a final
newline. Only "not your own email address" compares two fields, which no pattern can say.
"""

from __future__ import annotations

import re

from auth_service.domain.errors import InvalidInputError

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5
_ANY = r"[\s\S]"
_END = r"(?![\s\S])"
_BLANKS = r"[ \t]*"
# RFC 5322 dot-atom local part; a domain of DNS labels with an alphabetic top-level label.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Three patterns, each matched on its own (JSON Schema's allOf), rather than one with lookaheads:
# test-data generators cannot write a string that a positive lookahead constrains.
EMAIL_PATTERN = f"^{_BLANKS}{_ATOM}(?:\\.{_ATOM})*@(?:{_LABEL}\\.)+{_TOP_LABEL}{_BLANKS}{_END}"
EMAIL_LENGTH_PATTERNS = (
    f"^{_BLANKS}[^@]{{1,{MAX_LOCAL_PART_LENGTH}}}@",  # the local part
    f"^{_BLANKS}[^ \\t]{{1,{MAX_EMAIL_LENGTH}}}{_BLANKS}{_END}",  # the address, spaces aside
)
EMAIL_RULE = (
    "An address of the form name@example.com: a dot-atom local part (letters, digits and "
    "!#$%&'*+/=?^_`{|}~- between dots) of at most 64 characters, a domain of DNS labels "
    f"whose last one starts with a letter, at most {MAX_EMAIL_LENGTH} characters in all. "
    "Spaces and tabs around it are ignored."
)
COMMON_PASSWORDS = frozenset(
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


def _in_any_case(word: str) -> str:
    """A pattern for ``word`` in any letter case: ECMA-262 has no inline case-insensitivity."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def _password_pattern() -> str:
    """Not a common password (in any case), and at least MIN_DISTINCT_CHARACTERS distinct
    characters: a first one, then each later one unlike all those before it."""
    common = "|".join(_in_any_case(word) for word in sorted(COMMON_PASSWORDS))
    distinct = f"({_ANY})"
    for n in range(2, MIN_DISTINCT_CHARACTERS + 1):
        earlier = "|".join(f"\\{group}" for group in range(1, n))
        distinct += f"{_ANY}*?(?!{earlier})({_ANY})"
    return f"^(?!(?:{common}){_END}){_ANY}*?{distinct}"


PASSWORD_PATTERN = _password_pattern()
PASSWORD_RULE = (
    f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, at least "
    f"{MIN_DISTINCT_CHARACTERS} of them different, not a common password such as "
    "'password123' (in any letter case), and not the email address or its part before the @ "
    "(in any letter case). A passphrase of a few unrelated words works well."
)
_EMAIL = tuple(re.compile(pattern) for pattern in (EMAIL_PATTERN, *EMAIL_LENGTH_PATTERNS))


def normalise_email(value: str) -> str:
    """The email without surrounding spaces and tabs; InvalidInputError when it is not one."""
    if not all(pattern.search(value) for pattern in _EMAIL):
        raise InvalidInputError(
            "the email is not a valid address: use the form name@example.com "
            f"(at most {MAX_EMAIL_LENGTH} characters)"
        )
    return value.strip(" \t")


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
    if len(set(password)) < MIN_DISTINCT_CHARACTERS or password.lower() in COMMON_PASSWORDS:
        raise InvalidInputError(
            "the password is too easy to guess: avoid repeated characters and common "
            "passwords; a passphrase of a few unrelated words works well"
        )
    if email is not None:
        lowered = password.lower()
        if lowered in (email.lower(), email.lower().partition("@")[0]):
            raise InvalidInputError("the password must not be your email address: choose another")
