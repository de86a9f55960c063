"""Settings: one pydantic-settings class per concern, each with its own environment prefix.

Every class is validated at start-up by :func:`load_settings`, which turns pydantic's errors into
one readable message naming the environment variables to fix.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "placeholder",
        "example",
        "dev",
    }
)


class ConfigurationError(RuntimeError):
    """The service cannot start because its configuration is invalid."""


class Environment(StrEnum):
    """Where a service runs; only ``development`` accepts placeholder secrets."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """Identity, HTTP binding and lifecycle of one service process (``SERVICE_*``)."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9-]*$")
    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
    # A keep-alive connection is closed after its response once this old (0: never), so the
    # clients' pools spread over pods that joined later (kit.draining.CloseConnections).
    connection_max_age_seconds: float = Field(default=5.0, ge=0)
    # The edge (kit.edge_limits), enforced by the server while it reads, before the application
    # runs: a head (request line and header fields) larger or with more fields than this gets
    # 431. 32 KiB is what an nginx ingress lets through by default (4 buffers of 8 KiB), room
    # for a bearer token, tracing headers and cookies; 100 fields is gunicorn's and Apache's.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=10, le=10000)
    # 408 and the connection closed when a request's head has not arrived this long after its
    # first byte, or its body this long after its head (slow clients hold a connection each).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # A connection with no request under way (new, or kept alive) is closed after this long.
    # Keep it above the keep-alive time of this service's clients (the gateway's pools: 4 s),
    # so they drop an idle connection before the server does.
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # A drill, never a feature: answer 500 to this share of the API's requests (probes and
    # /metrics excepted), so a canary analysis has a bad image to catch (kit.faults).
    fault_error_ratio: float = Field(default=0.0, ge=0.0, le=1.0)


# One entry of NATS_URL (the charts' schemas build their nats.url pattern from it).
NATS_SERVER_PATTERN = r"(nats|tls)://[^\s,/]+"
NATS_SERVER_URL = re.compile(f"^{NATS_SERVER_PATTERN}$")
# JetStream's limit; an even count adds a copy without tolerating one more lost member.
MAX_STREAM_REPLICAS = 5


class NatsSettings(BaseSettings):
    """How to reach NATS (``NATS_*``); credentials come from env or a mounted creds file."""

    model_config = SettingsConfigDict(env_prefix="NATS_", extra="ignore")

    # One server, or every member of a cluster separated by commas: the client then reconnects
    # to another member when the one it uses goes away, even before it has learnt the others.
    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: SecretStr | None = None
    creds_file: Path | None = None
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    request_timeout_seconds: float = Field(default=5.0, gt=0)
    # The copies of every stream and key-value bucket this process creates: 1 on a single
    # server (make run, the tests), 3 on a three-member cluster (one member may be lost).
    stream_replicas: int = Field(default=1, ge=1, le=MAX_STREAM_REPLICAS)

    @field_validator("url")
    @classmethod
    def _server_urls(cls, value: str) -> str:
        servers = [entry.strip() for entry in value.split(",")]
        wrong = [entry for entry in servers if not NATS_SERVER_URL.match(entry)]
        if wrong:
            raise ValueError(
                f"{', '.join(repr(w) for w in wrong)} is not a NATS server URL: give one "
                "nats://host:port (tls://host:port for TLS), or several separated by commas, "
                "e.g. nats://nats-0.example:4222,nats://nats-1.example:4222"
            )
        return ",".join(servers)

    @field_validator("stream_replicas")
    @classmethod
    def _odd_replicas(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(
                f"{value} replicas: JetStream's RAFT needs a majority of the copies, so an even "
                "count tolerates no more lost members than one fewer; use 1, 3 or 5"
            )
        return value

    @property
    def servers(self) -> list[str]:
        """Every server URL of ``url``, in order."""
        return self.url.split(",")


class DatabaseSettings(BaseSettings):
    """The service's database (``DATABASE_URL``); SQLite is the embedded default."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr | None = None
    pool_size: int = Field(default=5, ge=1)
    # Connections beyond pool_size are opened for a burst and closed after it. Under load that
    # churn (a server backend started per connection) costs more than waiting for a pooled one:
    # a saga run at 100 orders/s that opened 59 connections instead of 13 had p99 760 ms, not
    # the usual 20-35 ms; with no overflow, five runs in a row stayed at 21-73 ms.
    max_overflow: int = Field(default=0, ge=0)
    echo: bool = False


class IdentitySettings(BaseSettings):
    """The secret the gateway and the services share to vouch for a caller (``IDENTITY_*``)."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    # "dev" is a placeholder: any environment but development refuses it at start-up.
    shared_secret: SecretStr = SecretStr("dev")


class TelemetrySettings(BaseSettings):
    """OpenTelemetry export (standard ``OTEL_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore")

    exporter_otlp_endpoint: str | None = None
    sdk_disabled: bool = False


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object from the environment, or raise a readable ConfigurationError."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"  {prefix}{field.upper()}: {error['msg']}")
        raise ConfigurationError(
            f"invalid {cls.__name__} configuration:\n"
            + "\n".join(problems)
            + "\nSet these environment variables and start again."
        ) from None


def refuse_placeholder_secrets(environment: Environment, *groups: BaseModel) -> None:
    """Refuse to start outside development when a secret is empty or a well-known placeholder."""
    if environment is Environment.DEVELOPMENT:
        return
    offenders = []
    for group in groups:
        prefix = str(group.model_config.get("env_prefix", ""))
        for name, value in group:
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in (
                PLACEHOLDER_SECRETS
            ):
                offenders.append(f"{prefix}{name.upper()}")
    if offenders:
        raise ConfigurationError(
            f"placeholder secret(s) in {environment.value}: {', '.join(offenders)}. "
            "Provide real values (from a mounted Secret), or set SERVICE_ENVIRONMENT=development "
            "for a local run."
        )
