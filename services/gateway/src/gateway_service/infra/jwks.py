"""The auth service's public keys, fetched from its JWKS and cached.

An unknown ``kid`` triggers a fetch (keys rotate), but at most once per
``min_refresh_interval`` seconds, so a flood of made-up key ids costs auth one request now
and then. Keys older than ``max_age`` are refreshed on use; if auth cannot be reached the
cached keys stay in use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import jwt
from prometheus_client import Counter

from gateway_service.domain.errors import KeySetUnavailableError, TokenRejectedError
from gateway_service.domain.tokens import ACCEPTED_ALGORITHMS, ADVICE, shorten

log = logging.getLogger(__name__)

JWKS_FETCHES = Counter(
    "gateway_jwks_fetches_total", "Fetches of the auth service's JWKS.", ["outcome"]
)


class JwksKeys:
    """Verification keys by ``kid``, from a JWKS URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        min_refresh_interval: float,
        max_age: float,
    ) -> None:
        self._session = session
        self._url = url
        self._min_refresh_interval = min_refresh_interval
        self._max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._published: set[str] = set()
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.version = 0

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id, fetching the JWKS when the id is unknown or the set is old."""
        key = self._keys.get(kid)
        if key is None or self._is_stale():
            await self._refresh()
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise KeySetUnavailableError(
                "cannot verify access tokens: the auth service's public keys could not be "
                "fetched yet; retry in a few seconds"
            )
        raise TokenRejectedError(
            f"the access token was signed with an unknown key {shorten(kid)!r}", ADVICE
        )

    def _is_stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._max_age

    async def _refresh(self) -> None:
        async with self._lock:
            # Whoever waited for the lock finds the fresh keys (or a recent failure) here.
            if time.monotonic() - self._attempted_at < self._min_refresh_interval:
                return
            self._attempted_at = time.monotonic()
            try:
                self._install(await self._fetch())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                JWKS_FETCHES.labels("error").inc()
                log.warning(
                    "could not fetch the JWKS; keeping the cached keys",
                    extra={"jwks_url": self._url, "error": repr(exc)},
                )
                return
            JWKS_FETCHES.labels("ok").inc()

    async def _fetch(self) -> Any:
        async with self._session.get(self._url) as response:
            if response.status != 200:
                raise ValueError(f"{self._url} answered HTTP {response.status}")
            return await response.json(content_type=None)

    def _install(self, document: Any) -> None:
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("the JWKS document has no 'keys' list")
        keys: dict[str, jwt.PyJWK] = {}
        published: set[str] = set()
        for entry in entries:
            key = _usable_key(entry)
            if key is not None:
                keys[entry["kid"]] = key
                published.add(json.dumps(entry, sort_keys=True))
        if published != self._published:
            self._published = published
            self.version += 1
            log.info("JWKS keys changed", extra={"kids": sorted(keys)})
        self._keys = keys
        self._fetched_at = time.monotonic()


def _usable_key(entry: Any) -> jwt.PyJWK | None:
    """A signing key with an id and an accepted algorithm; anything else is skipped."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
        return None
    if entry.get("use", "sig") != "sig":
        return None
    try:
        key = jwt.PyJWK(entry)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        log.warning("skipping a JWKS key that cannot be used", extra={"kid": entry["kid"]})
        return None
    return key if key.algorithm_name in ACCEPTED_ALGORITHMS else None
