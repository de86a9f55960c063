"""HTTP helpers for tests of services behind the gateway."""

from __future__ import annotations

from kit.identity import sign_identity

DEVELOPMENT_IDENTITY_SECRET = b"dev"


def as_user(user_id: str, secret: bytes = DEVELOPMENT_IDENTITY_SECRET) -> dict[str, str]:
    """Headers that make a direct call to a service look like the gateway forwarded it."""
    return sign_identity(secret, user_id)
