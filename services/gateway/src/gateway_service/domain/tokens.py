"""Verifying access tokens: the algorithm pinned to the key, and every required claim checked."""

from __future__ import annotations

import time
from typing import Protocol

import jwt

from gateway_service.domain.errors import TokenRejectedError

# The only algorithms auth signs with; never "none", never an HMAC algorithm.
ACCEPTED_ALGORITHMS = frozenset({"EdDSA", "RS256"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
# What to do about any rejected token.
ADVICE = "get a new one from POST /api/auth/token and send it as 'Authorization: Bearer <token>'"


def shorten(value: object, limit: int = 64) -> str:
    """A caller-supplied value cut to a length fit to quote back in an error."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class KeySource(Protocol):
    """Where verification keys come from (the auth service's JWKS)."""

    @property
    def version(self) -> int:
        """Changes whenever the set of keys changes."""
        ...

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id; raises TokenRejectedError when there is none."""
        ...


class TokenVerifier:
    """Verifies bearer tokens and remembers the verified ones until they expire.

    A token verified once is the same string next time, so its signature need not be checked
    again; the memory is dropped whenever the key set changes (a key may have been withdrawn).
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: float,
        remember: int = 10_000,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._remember = remember
        self._verified: dict[str, tuple[str, float]] = {}
        self._keys_version = keys.version

    async def verify(self, token: str) -> str:
        """The user id (``sub``) of a valid token; raises TokenRejectedError saying why not."""
        if self._keys.version != self._keys_version:
            self._verified.clear()
            self._keys_version = self._keys.version
        known = self._verified.get(token)
        if known is not None and known[1] + self._leeway > time.time():
            return known[0]
        subject, expires = await self._verify(token)
        if len(self._verified) >= self._remember:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (subject, expires)
        return subject

    async def _verify(self, token: str) -> tuple[str, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejectedError("the access token is not a well-formed JWT", ADVICE) from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in ACCEPTED_ALGORITHMS:
            raise TokenRejectedError(
                f"tokens signed with {shorten(algorithm)!r} are not accepted", ADVICE
            )
        if not isinstance(kid, str) or not kid:
            raise TokenRejectedError("the access token names no signing key (kid)", ADVICE)
        key = await self._keys.key(kid)
        if key.algorithm_name != algorithm:
            # The algorithm belongs to the key, never to the token (no algorithm confusion).
            raise TokenRejectedError(
                f"key {shorten(kid)!r} signs with {key.algorithm_name}, not {algorithm}", ADVICE
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError("the access token has expired", ADVICE) from None
        except jwt.InvalidAudienceError:
            raise TokenRejectedError(
                f"the access token is not meant for this API (audience {self._audience!r})",
                ADVICE,
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenRejectedError(
                f"the access token was not issued by {self._issuer!r}", ADVICE
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejectedError(
                f"the access token lacks the {exc.claim!r} claim", ADVICE
            ) from None
        except jwt.ImmatureSignatureError:
            raise TokenRejectedError("the access token is not valid yet", ADVICE) from None
        except jwt.InvalidSignatureError:
            raise TokenRejectedError(
                "the access token's signature does not match its key", ADVICE
            ) from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejectedError(f"the access token is invalid ({exc})", ADVICE) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise TokenRejectedError("the access token names no user (sub)", ADVICE)
        return subject, float(claims["exp"])
