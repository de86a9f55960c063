"""Fixtures of the gateway's tests: real auth, an echo upstream and two gateways.

The stack is started once per session, its processes in parallel:
- auth (SQLite, the session's NATS) with a signing key the tests also hold, so they can mint
  tokens that differ from auth's in exactly one way;
- an echo upstream (order and payment) that answers with the headers it received;
- ``gateway``: auth, orders and payments all up, generous limits;
- ``edge_gateway``: orders down (nothing listens), payments broken (a socket server that
  answers garbage or drops the connection), and a small rate limit.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devkit.localstack.nats import NatsServer
from devkit.localstack.ports import free_port
from devkit.localstack.process import ServiceProcess

IDENTITY_SECRET = "gateway-tests-identity-secret-91ab"
ECHO = Path(__file__).with_name("gateway_echo_upstream.py")
JWKS_MIN_INTERVAL_SECONDS = 1.0
EDGE_RATE_PER_SECOND = 2
EDGE_BURST = 4


class Keys:
    """The key auth signs with now, and the one before it; rotation swaps them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kid = "key-1"
        self.key = self._write(self.kid)
        self.previous: tuple[str, Path] | None = None

    def _write(self, kid: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        (self.directory / f"{kid}.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return key

    def rotate(self, kid: str) -> None:
        self.previous = (self.kid, self.directory / f"{self.kid}.pem")
        self.kid, self.key = kid, self._write(kid)

    def env(self) -> dict[str, str]:
        env = {
            "AUTH_SIGNING_KEY_FILE": str(self.directory / f"{self.kid}.pem"),
            "AUTH_SIGNING_KEY_ID": self.kid,
        }
        if self.previous is not None:
            env["AUTH_PREVIOUS_PUBLIC_KEY_FILE"] = str(self.previous[1])
            env["AUTH_PREVIOUS_KEY_ID"] = self.previous[0]
        return env


def _serve_broken(listener: socket.socket, seen: list[str]) -> None:
    """Read each request's head, then answer garbage (/garbage) or drop the connection."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return  # the listener was closed
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            seen.append(request_line)
            if "/garbage" in request_line:
                connection.sendall(b"this is not HTTP at all\r\n\r\n")
            elif "/reset" in request_line:
                # Linger 0: close with a TCP reset instead of a clean FIN.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Stack:
    """The processes of the session, and what the tests need to know about them."""

    def __init__(self, directory: Path, nats_url: str) -> None:
        self.directory = directory
        self.keys = Keys(directory)
        self.broken_listener = socket.create_server(("127.0.0.1", 0))
        self.broken_requests: list[str] = []
        threading.Thread(
            target=_serve_broken, args=(self.broken_listener, self.broken_requests), daemon=True
        ).start()
        broken_port = self.broken_listener.getsockname()[1]
        self.auth_port = free_port()
        self.down_order_port = free_port()
        self.auth_env = {
            "SERVICE_ENVIRONMENT": "test",
            "IDENTITY_SHARED_SECRET": IDENTITY_SECRET,
            "NATS_URL": nats_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'auth.db'}",
            "AUTH_ARGON2_TIME_COST": "1",
            "AUTH_ARGON2_MEMORY_KIB": "8192",
        }
        self.auth = self._auth()
        self.echo = ServiceProcess(
            "echo",
            [sys.executable, str(ECHO)],
            directory,
            env={"SERVICE_ENVIRONMENT": "test", "IDENTITY_SHARED_SECRET": IDENTITY_SECRET},
        )
        auth_url = f"http://127.0.0.1:{self.auth_port}"
        common = {
            "SERVICE_ENVIRONMENT": "test",
            "IDENTITY_SHARED_SECRET": IDENTITY_SECRET,
            "GATEWAY_AUTH_URL": auth_url,
            "GATEWAY_JWKS_URL": f"{auth_url}/auth/jwks.json",
            "GATEWAY_JWKS_REFRESH_MIN_INTERVAL_SECONDS": str(JWKS_MIN_INTERVAL_SECONDS),
            "GATEWAY_UPSTREAM_READ_TIMEOUT_SECONDS": "1.5",
        }
        self.gateway = ServiceProcess(
            "gateway",
            [sys.executable, "-m", "gateway_service.main"],
            directory,
            env={
                **common,
                "GATEWAY_ORDER_URL": self.echo.base_url,
                "GATEWAY_PAYMENT_URL": self.echo.base_url,
                "GATEWAY_RATE_LIMIT_PER_SECOND": "1000",
                "GATEWAY_RATE_LIMIT_BURST": "2000",
                "GATEWAY_MAX_BODY_BYTES": "65536",
            },
        )
        self.edge_gateway = ServiceProcess(
            "edge-gateway",
            [sys.executable, "-m", "gateway_service.main"],
            directory,
            env={
                **common,
                "GATEWAY_ORDER_URL": f"http://127.0.0.1:{self.down_order_port}",
                "GATEWAY_PAYMENT_URL": f"http://127.0.0.1:{broken_port}",
                "GATEWAY_RATE_LIMIT_PER_SECOND": str(EDGE_RATE_PER_SECOND),
                "GATEWAY_RATE_LIMIT_BURST": str(EDGE_BURST),
            },
        )

    def _auth(self) -> ServiceProcess:
        return ServiceProcess(
            "auth",
            [sys.executable, "-m", "auth_service.main"],
            self.directory,
            env={**self.auth_env, **self.keys.env()},
            port=self.auth_port,
        )

    def start(self) -> None:
        processes = (self.auth, self.echo, self.gateway, self.edge_gateway)
        with ThreadPoolExecutor(len(processes)) as pool:
            for future in [pool.submit(p.start, 60) for p in processes]:
                future.result()

    def rotate_auth_key(self, kid: str) -> None:
        """Restart auth signing with a new key; the old one stays published as the previous."""
        self.auth.stop()
        self.keys.rotate(kid)
        self.auth = self._auth()
        self.auth.start()

    def stop(self) -> None:
        processes = (self.edge_gateway, self.gateway, self.echo, self.auth)
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServiceProcess.stop, processes))
        self.broken_listener.close()

    def mint(
        self,
        subject: str | None = None,
        *,
        key: Any = None,
        algorithm: str = "EdDSA",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token as auth would sign it, but for the overrides (a claim of None is left out)."""
        now = int(time.time())
        payload = {
            "iss": "flotilla-auth",
            "aud": "flotilla-api",
            "sub": subject or f"user-{uuid.uuid4().hex[:12]}",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload,
            self.keys.key if key is None else key,
            algorithm=algorithm,
            headers={"kid": self.keys.kid, **(headers or {})},
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer) -> Iterator[Stack]:
    """The gateway tests' processes, started once."""
    stack = Stack(tmp_path_factory.mktemp("gateway-stack"), nats_server.url)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> ServiceProcess:
    """The gateway with every upstream up."""
    return stack.gateway


@pytest.fixture(scope="session")
def edge_gateway(stack: Stack) -> ServiceProcess:
    """The gateway whose order upstream is down and payment upstream is broken."""
    return stack.edge_gateway


@pytest.fixture(scope="session")
def down_order_port(stack: Stack) -> int:
    """The port the edge gateway sends orders to, where nothing listens."""
    return stack.down_order_port


@pytest.fixture(scope="session")
def broken_requests(stack: Stack) -> list[str]:
    """The request lines the broken payment upstream received, in order."""
    return stack.broken_requests


@pytest.fixture(scope="session")
def mint(stack: Stack) -> Callable[..., str]:
    """Mints a token with auth's current key: mint(subject=None, *, key, algorithm, headers,
    **claims)."""
    return stack.mint


@pytest.fixture(scope="session")
def identity_secret() -> bytes:
    """The secret the gateway signs identity headers with."""
    return IDENTITY_SECRET.encode()
