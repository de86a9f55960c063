"""The services behind the gateway, each reached over its own pool of keep-alive connections."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway_service.domain.errors import (
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway_service.settings import GatewaySettings


@dataclass(frozen=True)
class UpstreamResponse:
    """An upstream's answer, read in full."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes


class Upstream:
    """One upstream service: a ClientSession and TCPConnector of its own, open while serving."""

    def __init__(self, name: str, base_url: str, settings: GatewaySettings) -> None:
        self.name = name
        self.base_url = base_url
        self._settings = settings
        self._connect_timeout = settings.upstream_connect_timeout_seconds
        self._read_timeout = settings.upstream_read_timeout_seconds
        self._connect_retries = settings.upstream_connect_retries
        self._retry_delay = settings.upstream_connect_retry_delay_seconds
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the connection pool (inside the running event loop)."""
        settings = self._settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=settings.upstream_pool_size,
                keepalive_timeout=settings.upstream_keepalive_seconds,
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.upstream_connect_timeout_seconds,
                sock_read=settings.upstream_read_timeout_seconds,
            ),
            # Bodies and headers pass through as they are: no decompression, no default
            # headers the client did not send, and no cookies kept between different users.
            auto_decompress=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; a clear error when used outside the app's lifespan."""
        if self._session is None:
            raise RuntimeError(f"the {self.name} upstream is not open (outside the lifespan)")
        return self._session

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """Send a request for ``target`` (path and query, already percent-encoded).

        A connection the upstream refused is tried again, ``upstream_connect_retries`` times with
        a delay that doubles from ``upstream_connect_retry_delay_seconds``; nothing else is.
        """
        delay = self._retry_delay
        for _ in range(self._connect_retries):
            try:
                return await self._send_once(method, target, headers, body)
            except UpstreamUnavailableError:
                await asyncio.sleep(delay)
                delay *= 2
        return await self._send_once(method, target, headers, body)

    async def _send_once(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        url = URL(self.base_url + target, encoded=True)
        # aiohttp itself retries an idempotent request once when a pooled connection turns out
        # to be closed (RFC 9112 9.3.1); anything else that fails is reported, not retried.
        try:
            async with self.session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                return UpstreamResponse(
                    response.status, response.raw_headers, await response.read()
                )
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeoutError(
                self.name,
                f"did not accept a connection within {self._connect_timeout:g} s; retry later",
            ) from None
        except (aiohttp.ServerTimeoutError, TimeoutError):
            raise UpstreamTimeoutError(
                self.name, f"did not answer within {self._read_timeout:g} s; retry later"
            ) from None
        except aiohttp.ClientConnectorError:
            raise UpstreamUnavailableError(self.name, "is unavailable; retry later") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            raise UpstreamBadResponseError(
                self.name, "dropped the connection without answering; retry later"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamBadResponseError(
                self.name, f"sent a malformed response ({type(exc).__name__}); retry later"
            ) from None
