"""The keys that sign access tokens, and their public halves as published in the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

PrivateKey = Ed25519PrivateKey | RSAPrivateKey
PublicKey = Ed25519PublicKey | RSAPublicKey
MIN_RSA_BITS = 2048
# RFC 7638: the members of each key type that its thumbprint covers.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    """The one JWS algorithm a key signs with: EdDSA for Ed25519, RS256 for RSA."""
    return "EdDSA" if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey) else "RS256"


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public key as a JWK (RFC 7517), without kid/alg/use."""
    if isinstance(key, Ed25519PublicKey):
        return dict(OKPAlgorithm.to_jwk(key, as_dict=True))
    return dict(RSAAlgorithm.to_jwk(key, as_dict=True))


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint: a stable key id derived from the key itself."""
    jwk = public_jwk(key)
    canonical = {member: jwk[member] for member in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class VerificationKey:
    """A public key that verifies tokens, under its key id."""

    kid: str
    key: PublicKey

    def jwk(self) -> dict[str, Any]:
        """The JWKS entry: the key pinned to its single algorithm, for signatures only."""
        return {
            **public_jwk(self.key),
            "kid": self.kid,
            "alg": algorithm_for(self.key),
            "use": "sig",
        }


@dataclass(frozen=True)
class SigningKey:
    """The private key that signs new tokens, under its key id."""

    kid: str
    key: PrivateKey

    @property
    def algorithm(self) -> str:
        """The JWS ``alg`` of the tokens this key signs."""
        return algorithm_for(self.key)

    def verification_key(self) -> VerificationKey:
        """The public half, as published in the JWKS."""
        return VerificationKey(self.kid, self.key.public_key())


@dataclass(frozen=True)
class KeyRing:
    """The current signing key and, during a rotation, the previous public key."""

    signing: SigningKey
    previous: VerificationKey | None = None

    def published(self) -> list[VerificationKey]:
        """Every key the JWKS serves: the current one first, then the previous one."""
        keys = [self.signing.verification_key()]
        if self.previous is not None:
            keys.append(self.previous)
        return keys
