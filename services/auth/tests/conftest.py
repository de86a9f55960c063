"""Fixtures of the auth service's tests: signing keys on disk and auth as a real process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess

IDENTITY_SECRET = b"auth-tests-identity-secret-5d1f0c"
# Cheap hashing where a test does not measure hashing: its cost is a setting of its own.
FAST_ARGON2 = {"AUTH_ARGON2_TIME_COST": "1", "AUTH_ARGON2_MEMORY_KIB": "8192"}


def _write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _auth_process(log_dir: Path, env: dict[str, str]) -> ServiceProcess:
    return ServiceProcess(
        "auth",
        [sys.executable, "-m", "auth_service.main"],
        log_dir,
        env={
            "SERVICE_ENVIRONMENT": "test",
            "IDENTITY_SHARED_SECRET": IDENTITY_SECRET.decode(),
            **env,
        },
    )


@pytest.fixture(scope="session")
def identity_secret() -> bytes:
    """The secret the auth processes of these tests share with "the gateway"."""
    return IDENTITY_SECRET


@pytest.fixture(scope="session")
def write_key() -> Callable[[Path], Ed25519PrivateKey]:
    """Writes a new Ed25519 private key to a path (unencrypted PKCS#8 PEM) and returns it."""
    return _write_key


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ed25519PrivateKey, Path]:
    """The module's signing key and its PEM file."""
    path = tmp_path_factory.mktemp("keys") / "signing.pem"
    return _write_key(path), path


@pytest.fixture(scope="module")
def previous_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ed25519PrivateKey, Path]:
    """The key that signed before the rotation, and its public PEM file."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("keys") / "previous.pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, path


@pytest.fixture(scope="module")
def key_env(
    signing_key: tuple[Ed25519PrivateKey, Path], previous_key: tuple[Ed25519PrivateKey, Path]
) -> dict[str, str]:
    """AUTH_* variables for both keys (the signing key's id defaults to its thumbprint)."""
    return {
        "AUTH_SIGNING_KEY_FILE": str(signing_key[1]),
        "AUTH_PREVIOUS_PUBLIC_KEY_FILE": str(previous_key[1]),
        "AUTH_PREVIOUS_KEY_ID": "previous-2026",
    }


@pytest.fixture
def start_auth(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts auth processes with extra environment variables; all stop after the test."""
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        process = _auth_process(tmp_path, {**FAST_ARGON2, **env})
        started.append(process)
        process.start()
        process.wait_until("/readyz", 200)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def shared_auth(
    tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer, key_env: dict[str, str]
) -> Iterator[ServiceProcess]:
    """One auth process (SQLite, cheap hashing) that the tests of a module share."""
    directory = tmp_path_factory.mktemp("auth")
    process = _auth_process(
        directory,
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'auth.db'}",
            "NATS_URL": nats_server.url,
            **key_env,
            **FAST_ARGON2,
        },
    )
    process.start()
    yield process
    process.stop()
