"""The auth service's own settings (``AUTH_*``); the chassis loads the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class AuthSettings(BaseSettings):
    """Token issuing and the signing keys.

    The signing key is a PEM private key (Ed25519 preferred, RSA >= 2048 bits accepted), from a
    mounted file (``AUTH_SIGNING_KEY_FILE``) or the environment (``AUTH_SIGNING_KEY``). The
    previous key is only published in the JWKS, so tokens it signed stay valid while keys
    rotate; it may be given as a public or a private PEM key. A key id defaults to the key's
    RFC 7638 thumbprint.
    """

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    issuer: str = Field(default="flotilla-auth", min_length=1)
    audience: str = Field(default="flotilla-api", min_length=1)
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=24 * 3600)
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    signing_key_id: str | None = Field(default=None, pattern=KEY_ID_PATTERN)
    previous_public_key: str | None = None
    previous_public_key_file: Path | None = None
    previous_key_id: str | None = Field(default=None, pattern=KEY_ID_PATTERN)
    # argon2id cost (RFC 9106): tune to the hardware; stored hashes are upgraded at sign-in.
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8 * 1024, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)
