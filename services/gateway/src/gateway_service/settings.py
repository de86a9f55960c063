"""The gateway's own settings (``GATEWAY_*``); the chassis loads the shared ones.

The default upstream addresses are those of `make run` (auth 8001, order 8002, payment 8003).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Upstreams, token verification, rate limits and timeouts of the edge."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    auth_url: str = "http://127.0.0.1:8001"
    order_url: str = "http://127.0.0.1:8002"
    payment_url: str = "http://127.0.0.1:8003"
    jwks_url: str = "http://127.0.0.1:8001/auth/jwks.json"
    issuer: str = Field(default="flotilla-auth", min_length=1)
    audience: str = Field(default="flotilla-api", min_length=1)
    clock_skew_seconds: float = Field(default=10.0, ge=0, le=300)
    # An unknown kid triggers a JWKS fetch at most this often, so bogus kids cannot flood auth.
    jwks_refresh_min_interval_seconds: float = Field(default=5.0, ge=0.1, le=3600)
    jwks_max_age_seconds: float = Field(default=300.0, ge=1, le=86400)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    upstream_read_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    upstream_pool_size: int = Field(default=100, ge=1, le=10000)
    # A refused connection means the request was never sent, so any method may try again: a
    # Service whose first pods just became ready has no endpoints until kube-proxy syncs (≤1 s).
    upstream_connect_retries: int = Field(default=3, ge=0, le=10)
    upstream_connect_retry_delay_seconds: float = Field(default=0.25, ge=0, le=10)
    # Below uvicorn's 5 s keep-alive, so the gateway drops an idle connection before its peer.
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0, le=300)
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)

    @field_validator("auth_url", "order_url", "payment_url", "jwks_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError(
                "must be an http:// or https:// URL without query or fragment, "
                "e.g. http://order:8000"
            )
        return value.rstrip("/")
