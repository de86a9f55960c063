"""Fixtures of the deployer's tests: the pinned helm with isolated homes (the cluster fixtures come
from the tests.e2e.cluster_fixtures plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clustersupport import built_tool


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """The pinned helm binary (platform/cluster/build-tools.sh --path helm)."""
    return built_tool("helm")


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Helm homes of the session's own, so no repository or plugin of the user's is read."""
    home = tmp_path_factory.mktemp("helm-home")
    return {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
