"""Signing keys: loaded from files or the environment, generated only for development."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.domain.keys import thumbprint
from auth_service.domain.tokens import issue_access_token
from auth_service.infra.keys import load_key_ring
from auth_service.settings import AuthSettings
from kit.settings import ConfigurationError, Environment

KeyWriter = Callable[[Path], Ed25519PrivateKey]


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_a_key_file_signs_and_the_previous_public_key_is_published(
    tmp_path: Path, write_key: KeyWriter
) -> None:
    signing = write_key(tmp_path / "signing.pem")
    old = Ed25519PrivateKey.generate()
    (tmp_path / "old.pem").write_bytes(
        old.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ring = load_key_ring(
        AuthSettings(
            signing_key_file=tmp_path / "signing.pem",
            signing_key_id="k2",
            previous_public_key_file=tmp_path / "old.pem",
        ),
        Environment.PRODUCTION,
    )
    assert [key.kid for key in ring.published()] == ["k2", thumbprint(old.public_key())]
    token = issue_access_token(
        ring.signing, issuer="i", audience="a", subject="u", ttl_seconds=60, now=1_000
    )
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "k2", "typ": "at+jwt"}
    claims = jwt.decode(
        token,
        signing.public_key(),
        algorithms=["EdDSA"],
        audience="a",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert (claims["sub"], claims["exp"]) == ("u", 1_060)


def test_an_rsa_key_from_the_environment_signs_rs256_and_an_old_private_key_file_works(
    tmp_path: Path, write_key: KeyWriter
) -> None:
    old = write_key(tmp_path / "old-private.pem")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ring = load_key_ring(
        AuthSettings(
            signing_key=pem(rsa_key).decode(),
            previous_public_key_file=tmp_path / "old-private.pem",
            previous_key_id="old",
        ),
        Environment.PRODUCTION,
    )
    assert ring.signing.algorithm == "RS256"
    jwks = [key.jwk() for key in ring.published()]
    assert [(k["kty"], k["alg"], k["kid"]) for k in jwks] == [
        ("RSA", "RS256", thumbprint(rsa_key.public_key())),
        ("OKP", "EdDSA", "old"),
    ]
    assert jwt.PyJWK(jwks[1]).key.public_bytes_raw() == old.public_key().public_bytes_raw()


def test_development_generates_a_temporary_key_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        ring = load_key_ring(AuthSettings(), Environment.DEVELOPMENT)
    assert ring.signing.algorithm == "EdDSA"
    assert "temporary Ed25519 key" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({}, "no token signing key: mount a PEM private key", id="missing"),
        pytest.param(
            {"signing_key": "changeme"},
            "placeholder secret(s) in test: AUTH_SIGNING_KEY",
            id="placeholder",
        ),
        pytest.param(
            {"signing_key": "-----BEGIN PRIVATE KEY-----\nnope\n"},
            "AUTH_SIGNING_KEY does not hold an unencrypted PEM private key",
            id="not-pem",
        ),
        pytest.param(
            {"signing_key_file": Path("/nonexistent/signing.pem")},
            "cannot read the key (No such file or directory)",
            id="unreadable",
        ),
        pytest.param(
            {"signing_key": pem(ec.generate_private_key(ec.SECP256R1())).decode()},
            "unsupported type (EC); use Ed25519",
            id="unsupported",
        ),
        pytest.param(
            {"signing_key": pem(rsa.generate_private_key(65537, 1024)).decode()},  # noqa: S505
            "holds a 1024-bit RSA key; use at least 2048 bits",
            id="weak-rsa",
        ),
        pytest.param(
            {"previous_key_id": "old"},
            "AUTH_PREVIOUS_KEY_ID is set but no previous key",
            id="orphan-id",
        ),
    ],
)
def test_outside_development_a_bad_key_is_a_clear_configuration_error(
    settings: dict[str, object], message: str, tmp_path: Path, write_key: KeyWriter
) -> None:
    if "previous_key_id" in settings:
        write_key(tmp_path / "signing.pem")
        settings = {**settings, "signing_key_file": tmp_path / "signing.pem"}
    with pytest.raises(ConfigurationError) as info:
        load_key_ring(AuthSettings(**settings), Environment.TEST)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_the_previous_key_needs_its_own_id(tmp_path: Path, write_key: KeyWriter) -> None:
    write_key(tmp_path / "signing.pem")
    settings = AuthSettings(
        signing_key_file=tmp_path / "signing.pem",
        signing_key_id="same",
        previous_public_key_file=tmp_path / "signing.pem",
        previous_key_id="same",
    )
    with pytest.raises(ConfigurationError, match="same key id as the signing key"):
        load_key_ring(settings, Environment.PRODUCTION)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "no token signing key: mount a PEM private key", id="missing"),
        pytest.param(
            {"AUTH_SIGNING_KEY": "changeme"},
            "placeholder secret(s) in production: AUTH_SIGNING_KEY",
            id="placeholder",
        ),
    ],
)
def test_the_service_refuses_to_start_without_a_real_key_outside_development(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "auth_service.main"],
        env={
            "PATH": "/usr/bin:/bin",
            "SERVICE_ENVIRONMENT": "production",
            "IDENTITY_SHARED_SECRET": "a-real-secret-for-this-test-8c2f",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "AUTH_SIGNING_KEY" in result.stderr
    assert "Traceback" not in result.stderr
