"""Loading the signing keys from a mounted file or the environment.

Only a development run may start without a configured key: it then signs with a temporary
Ed25519 key that lives as long as the process. Anywhere else a missing or unusable key stops
the service at start-up with a message that says what to provide.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from auth_service.domain.keys import (
    MIN_RSA_BITS,
    KeyRing,
    PrivateKey,
    PublicKey,
    SigningKey,
    VerificationKey,
    thumbprint,
)
from auth_service.settings import AuthSettings
from kit.settings import ConfigurationError, Environment, refuse_placeholder_secrets

log = logging.getLogger(__name__)

HOW_TO_CREATE = "Create one with `openssl genpkey -algorithm ed25519 -out signing-key.pem`."


def load_key_ring(settings: AuthSettings, environment: Environment) -> KeyRing:
    """The configured keys; a temporary key only in development when none is configured."""
    refuse_placeholder_secrets(environment, settings)
    signing = _signing_key(settings, environment)
    previous = _previous_key(settings)
    if previous is not None and previous.kid == signing.kid:
        raise ConfigurationError(
            f"the previous key has the same key id as the signing key ({signing.kid!r}): "
            "AUTH_PREVIOUS_PUBLIC_KEY_FILE must hold the key that signed before the rotation, "
            "with its own AUTH_PREVIOUS_KEY_ID."
        )
    return KeyRing(signing, previous)


def _signing_key(settings: AuthSettings, environment: Environment) -> SigningKey:
    pem = _pem("AUTH_SIGNING_KEY", settings.signing_key_file, _secret(settings))
    if pem is None:
        if environment is not Environment.DEVELOPMENT:
            raise ConfigurationError(
                "no token signing key: mount a PEM private key and set AUTH_SIGNING_KEY_FILE to "
                f"its path (or put the PEM in AUTH_SIGNING_KEY). {HOW_TO_CREATE} Only "
                "SERVICE_ENVIRONMENT=development generates a temporary key."
            )
        key: PrivateKey = Ed25519PrivateKey.generate()
        log.warning(
            "no signing key configured: signing with a temporary Ed25519 key (development "
            "only); tokens stop verifying when the service restarts. Set AUTH_SIGNING_KEY_FILE "
            "to keep them",
            extra={"kid": thumbprint(key.public_key())},
        )
    else:
        source, data = pem
        key = _private_key(source, data)
    return SigningKey(settings.signing_key_id or thumbprint(key.public_key()), key)


def _previous_key(settings: AuthSettings) -> VerificationKey | None:
    pem = _pem(
        "AUTH_PREVIOUS_PUBLIC_KEY", settings.previous_public_key_file, settings.previous_public_key
    )
    if pem is None:
        if settings.previous_key_id is not None:
            raise ConfigurationError(
                "AUTH_PREVIOUS_KEY_ID is set but no previous key is: set "
                "AUTH_PREVIOUS_PUBLIC_KEY_FILE to the PEM key that signed before the rotation, "
                "or unset AUTH_PREVIOUS_KEY_ID."
            )
        return None
    source, data = pem
    key = _public_key(source, data)
    return VerificationKey(settings.previous_key_id or thumbprint(key), key)


def _secret(settings: AuthSettings) -> str | None:
    return settings.signing_key.get_secret_value() if settings.signing_key else None


def _pem(variable: str, path: Path | None, inline: str | None) -> tuple[str, bytes] | None:
    """The PEM text and where it came from, from ``<variable>_FILE`` or ``<variable>``."""
    if path is not None and inline:
        raise ConfigurationError(f"set {variable}_FILE or {variable}, not both.")
    if path is None:
        return (variable, inline.encode()) if inline else None
    source = f"{variable}_FILE={path}"
    try:
        return source, path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{source}: cannot read the key ({exc.strerror}). Mount the key file there or fix "
            "the path."
        ) from None


def _private_key(source: str, data: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(
            f"{source} does not hold an unencrypted PEM private key ({exc}). {HOW_TO_CREATE}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey | RSAPrivateKey):
        raise ConfigurationError(_unsupported(source, key))
    _check_size(source, key)
    return key


def _public_key(source: str, data: bytes) -> PublicKey:
    # A rotation may hand over the old private key file as it is; only its public half is used.
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        key = _private_key(source, data).public_key()
    if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
        raise ConfigurationError(_unsupported(source, key))
    _check_size(source, key)
    return key


def _check_size(source: str, key: PrivateKey | PublicKey) -> None:
    if isinstance(key, RSAPrivateKey | RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            f"{source} holds a {key.key_size}-bit RSA key; use at least {MIN_RSA_BITS} bits, "
            f"or better Ed25519. {HOW_TO_CREATE}"
        )


def _unsupported(source: str, key: object) -> str:
    kind = type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey")
    return (
        f"{source} holds a key of an unsupported type ({kind}); use Ed25519 (preferred) or RSA "
        f"of at least {MIN_RSA_BITS} bits. {HOW_TO_CREATE}"
    )
