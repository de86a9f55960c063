"""The layering of the deployer, kept by a test: decisions import no adapter.

Each decision module is imported alone in a fresh interpreter, and whatever it pulls in,
directly or not, must hold no adapter: no helm client, Kubernetes client, NATS, HTTP client or
server. That is what lets the decisions be tested (and read) as plain functions.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DECISIONS = [
    "deployer.reconcile.decide",
    "deployer.reconcile.state",
    "deployer.reconcile.podproblems",
    "deployer.plan",
    "deployer.drift.compare",
    "deployer.drift.config",
    "deployer.canary.run",
    "deployer.canary.replicas",
    "deployer.canary.strategy",
    "deployer.canary.analysis",
    "deployer.intake.policy",
    "deployer.intake.guardrails",
    "deployer.queue.lanes",
    "deployer.gitops.layout",
    "deployer.gitops.verdict",
]
ADAPTERS = (
    "deployer.adapters",
    "kubernetes_asyncio",
    "nats",
    "httpx",
    "aiohttp",
    "fastapi",
    "starlette",
)


def imported_by(module: str) -> list[str]:
    """Every module importing ``module`` loads, in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("module", DECISIONS)
def test_a_decision_module_imports_no_adapter(module: str) -> None:
    adapters = [
        name
        for name in imported_by(module)
        if any(name == a or name.startswith(a + ".") for a in ADAPTERS)
    ]
    assert adapters == [], f"{module} imports adapters: {adapters[:5]}"


def test_the_check_can_fail() -> None:
    assert "deployer.adapters.helm" in imported_by("deployer.adapters.helm")
