"""The gateway's pure parts: token buckets, settings, problem details, the verifier's memory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_service.api.problems import problem_for
from gateway_service.domain.errors import TokenRejectedError
from gateway_service.domain.ratelimit import TokenBuckets
from gateway_service.domain.tokens import TokenVerifier
from gateway_service.settings import GatewaySettings
from kit.settings import ConfigurationError, load_settings


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)
    assert buckets.take("b", 100.0) == 0.0  # clients do not share
    assert buckets.take("a", 100.5) == 0.0  # half a second buys one more
    assert buckets.take("a", 100.5) == pytest.approx(0.5)
    assert buckets.take("a", 200.0) == 0.0  # refilled, but never above the burst
    assert [buckets.take("a", 200.0) for _ in range(3)][-1] > 0


def test_buckets_stay_bounded_and_forget_idle_clients_first() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2, max_clients=100)
    for n in range(100):
        buckets.take(f"idle-{n}", 0.0)
    for n in range(50):
        buckets.take(f"active-{n}", 10.0)
        buckets.take(f"active-{n}", 10.0)
    assert len(buckets) == 50  # the idle ones went (they were full again), the active stayed
    assert buckets.take("active-0", 10.0) > 0  # with their empty buckets
    for n in range(500):
        buckets.take(f"more-{n}", 10.0)
    assert len(buckets) <= 100


def test_upstream_urls_are_checked_with_a_readable_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_ORDER_URL", "order:8000")
    with pytest.raises(ConfigurationError, match="GATEWAY_ORDER_URL") as info:
        load_settings(GatewaySettings)
    assert "http:// or https:// URL" in str(info.value)
    monkeypatch.setenv("GATEWAY_ORDER_URL", "http://order:8000/")
    assert load_settings(GatewaySettings).order_url == "http://order:8000"


def test_a_bad_setting_stops_the_gateway_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_service.main"],
        env={"PATH": "/usr/bin:/bin", "GATEWAY_RATE_LIMIT_BURST": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "GATEWAY_RATE_LIMIT_BURST" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_challenge_quotes_only_safe_characters() -> None:
    error = TokenRejectedError("unknown key 'a\"b\\c\r\nX-Evil: 1'", "get a new token")
    challenge = problem_for(error).headers["WWW-Authenticate"]
    assert challenge == (
        'Bearer realm="flotilla", error="invalid_token", '
        "error_description=\"unknown key 'abcX-Evil: 1'\""
    )


class FixedKeys:
    """A key source with one key; ``version`` changes when a test says the set changed."""

    def __init__(self, kid: str, key: Ed25519PrivateKey) -> None:
        self.version = 1
        self._jwk = jwt.PyJWK(
            {**jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}
        )
        self.lookups = 0

    async def key(self, kid: str) -> jwt.PyJWK:
        self.lookups += 1
        return self._jwk


async def test_verified_tokens_are_remembered_until_the_key_set_changes() -> None:
    key = Ed25519PrivateKey.generate()
    keys = FixedKeys("k", key)
    verifier = TokenVerifier(keys, issuer="i", audience="a", leeway=0)
    now = int(time.time())
    claims = {"iss": "i", "aud": "a", "sub": "u-1", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k"})
    assert await verifier.verify(token) == "u-1"
    assert await verifier.verify(token) == "u-1"
    assert keys.lookups == 1
    keys.version += 1
    assert await verifier.verify(token) == "u-1"
    assert keys.lookups == 2
