"""The whole platform for the API suites: NATS and the four services wired as `make run` wires
them, and accounts made the way a client makes one, through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api.client import Account, call
from tests.integration.platform_stack import Platform

# The fuzzer sends hundreds of requests a second as one user, and signs up many: the rate limit
# and the cost of hashing have their own tests (services/gateway, services/auth).
FUZZING_ENVIRONMENT = {
    "GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
    "GATEWAY_RATE_LIMIT_BURST": "100000",
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_KIB": "8192",
}
PASSWORD = "a long and unguessable passphrase"


@pytest.fixture(scope="package")
def api_stack(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """NATS, auth, order, payment and the gateway as real processes, on SQLite."""
    stack = Platform(repo_root, tmp_path_factory.mktemp("api"), **FUZZING_ENVIRONMENT)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def sign_up(api_stack: Platform) -> Callable[[], Account]:
    """Makes a new account through the gateway (register, then a token) and returns it."""

    def new_account() -> Account:
        gateway = api_stack.gateway
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        status, user = call("POST", f"{gateway}/api/auth/register", email=email, password=PASSWORD)
        assert status == 201, user
        status, token = call(
            "POST",
            f"{gateway}/api/auth/token",
            form={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        assert status == 200, token
        return Account(user_id=user["id"], token=token["access_token"])

    return new_account
