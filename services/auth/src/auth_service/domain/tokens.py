"""Issuing access tokens: short-lived JWTs signed with the current key, naming it by ``kid``."""

from __future__ import annotations

import uuid

import jwt

from auth_service.domain.keys import SigningKey


def issue_access_token(
    key: SigningKey, *, issuer: str, audience: str, subject: str, ttl_seconds: int, now: int
) -> str:
    """A JWT access token (RFC 9068 profile) for ``subject``, valid ``ttl_seconds`` from ``now``."""
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        claims, key.key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "at+jwt"}
    )
