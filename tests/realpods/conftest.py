"""Fixtures of the real-pods suite: one cluster with the machine's real node and the platform on
it, shared by the package's tests (see realcluster.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.realcluster import (
    REAL_CLUSTER_ENV,
    SERVICES,
    Platform,
    RealCluster,
    install_platform,
    reap_stale_runs,
    session_run_dir,
)
from tests.realpods.rollouts import real_pods_deployer, settled


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="package")
def real_cluster() -> Iterator[RealCluster]:
    """The cluster FLOTILLA_REAL_CLUSTER names, else one started now and removed afterwards."""
    existing = os.environ.get(REAL_CLUSTER_ENV)
    if existing:
        run_dir = Path(existing).expanduser().resolve()
        if not (run_dir / "kubeconfig").is_file() or not (run_dir / "registry").is_file():
            pytest.fail(
                f"{REAL_CLUSTER_ENV}={existing} has no kubeconfig and registry: name the run "
                "directory of a cluster with a real node (make cluster-up: .run/cluster), or "
                "unset it to let the suite start one"
            )
        yield RealCluster(run_dir, owned=False)
        return
    cache = Path(os.environ.get("FLOTILLA_CACHE", "~/.cache/flotilla")).expanduser()
    reap_stale_runs(cache / "realpods-tests")
    run_dir, name = session_run_dir(cache)
    cluster = RealCluster.up(run_dir, name)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="package")
def platform(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform on the real cluster: images, NATS, PostgreSQL and the four services."""
    return install_platform(real_cluster, tmp_path_factory.mktemp("helm-home"), _log)


@pytest.fixture(scope="package")
async def deployer(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DeployerStack]:
    """The deployer (a local process with its own NATS) driving the releases of ``platform``."""
    stack = real_pods_deployer(platform, tmp_path_factory.mktemp("deployer"))
    await stack.start()
    # A freshly installed platform still drains the pods its install replaced: the rollout
    # suites measure from a settled one.
    for service in SERVICES:
        await asyncio.to_thread(settled, platform, service)
    yield stack
    await stack.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that start and stop clusters of their own run first, before the package's
    cluster starts: the machine has one real node (with FLOTILLA_REAL_CLUSTER they are
    deselected, not skipped: that cluster holds the node). The chaos tests run last: the other
    tests start from a data plane nobody hurt."""
    own = [item for item in items if item.get_closest_marker("own_real_cluster")]
    if os.environ.get(REAL_CLUSTER_ENV) and own:
        config.hook.pytest_deselected(items=own)
        items[:] = [item for item in items if item not in own]
        own = []
    # Only this package's tests move (the hook sees the whole session), and they stay together,
    # so the package's cluster starts once.
    here = Path(__file__).parent
    package = [item for item in items if item.path.is_relative_to(here)]
    if not package:
        return
    chaos = [item for item in package if item.get_closest_marker("chaos")]
    own = [item for item in package if item in own]
    rest = [item for item in package if item not in own and item not in chaos]
    first = items.index(package[0])
    others = [item for item in items if item not in package]
    items[:] = others[:first] + own + rest + chaos + others[first:]
