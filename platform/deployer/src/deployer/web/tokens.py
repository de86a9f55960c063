"""Scoped API tokens: each grants some of read, deploy, rollback and approve, optionally for some
services only. They come from a Secret (``DEPLOYER_API_TOKENS``, YAML):

    - name: ci-order
      token: <at least 16 characters>
      scopes: [read, deploy]
      services: [order]        # optional; absent: every service

``DEPLOYER_API_TOKEN``, when set, is one more token, named ``admin``, with every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from enum import StrEnum

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from deploy_contract.events import SERVICE_NAME

MIN_TOKEN_LENGTH = 16


class Scope(StrEnum):
    """What a token lets its holder do."""

    READ = "read"  # services, history, plans, events, the dashboard
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    APPROVE = "approve"  # approve or deny a deployment that waits for approval


class ApiToken(BaseModel):
    """One token: who it is (``name``, shown in logs and records), what it may do, where."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
    token: SecretStr
    scopes: list[Scope] = Field(min_length=1)
    services: list[str] | None = Field(default=None, min_length=1)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"a token needs at least {MIN_TOKEN_LENGTH} characters "
                "(make one with: openssl rand -hex 24)"
            )
        return token

    def allows(self, scope: Scope, service: str | None = None) -> bool:
        """True when this token has ``scope`` (for ``service``, when one is named)."""
        if scope not in self.scopes:
            return False
        return service is None or self.services is None or service in self.services

    def sees(self, service: str) -> bool:
        """True when reads of ``service`` are this token's to see."""
        return self.allows(Scope.READ, service)

    def describe(self) -> str:
        """The token's name, scopes and services, as a refusal states them."""
        where = ", ".join(self.services) if self.services else "every service"
        return f"token {self.name!r} has {', '.join(self.scopes)} for {where}"


class TokenError(ValueError):
    """The token configuration is malformed; the message says where."""


_TOKENS = TypeAdapter(list[ApiToken])


class TokenBook:
    """The configured tokens; finds the one presented, in time independent of which it is."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self.tokens = list(tokens)
        names = [t.name for t in self.tokens]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise TokenError(f"API token names must be unique: {', '.join(duplicated)}")
        digests = [_digest(t.token.get_secret_value()) for t in self.tokens]
        if len(set(digests)) != len(digests):
            raise TokenError("two API tokens have the same secret: give each its own")
        for token in self.tokens:
            for service in token.services or ():
                if not _service_name(service):
                    raise TokenError(f"API token {token.name!r}: {service!r} is not a service")
        self._digests = digests

    @classmethod
    def load(cls, scoped: str | None, admin: str | None) -> TokenBook:
        """The tokens of ``DEPLOYER_API_TOKENS`` (YAML) and ``DEPLOYER_API_TOKEN`` (admin)."""
        tokens: list[ApiToken] = []
        if scoped:
            try:
                tokens = _TOKENS.validate_python(yaml.safe_load(scoped) or [])
            except yaml.YAMLError as exc:
                raise TokenError(f"DEPLOYER_API_TOKENS is not YAML: {exc}") from None
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                    for error in exc.errors(include_input=False)
                )
                raise TokenError(f"DEPLOYER_API_TOKENS is invalid: {problems}") from None
        if admin:
            tokens.append(
                ApiToken.model_construct(name="admin", token=SecretStr(admin), scopes=list(Scope))
            )
        return cls(tokens)

    def find(self, presented: str) -> ApiToken | None:
        """The token whose secret is ``presented``; every token is compared, so the time taken
        does not tell which one matched."""
        digest = _digest(presented)
        found = None
        for token, known in zip(self.tokens, self._digests, strict=True):
            if hmac.compare_digest(digest, known):
                found = token
        return found


def _digest(secret: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of the lengths.
    return hashlib.sha256(secret.encode()).digest()


def _service_name(name: str) -> bool:
    return re.fullmatch(SERVICE_NAME, name) is not None
