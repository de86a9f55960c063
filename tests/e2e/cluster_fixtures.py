"""Pytest plugin (registered in the root conftest.py): a Kubernetes cluster, the pinned kubectl and
helm bound to it, and a fresh namespace per test, for every suite that needs a cluster.

The cluster is the local control plane (platform/cluster: real kube-apiserver, controller-manager
and scheduler, etcd, kwok nodes, on 127.0.0.1), started on first use and deleted at the end of the
session; or, when FLOTILLA_KUBECONFIG names a kubeconfig, that existing cluster, in which the tests
only ever delete the namespaces they created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clustersupport import (
    KUBECONFIG_ENV,
    Helm,
    KubeCluster,
    Kubectl,
    LocalCluster,
    built_tool,
    create_test_namespace,
    delete_test_namespace,
    reap_stale_clusters,
    session_cluster_name,
    unique_name,
)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The session's cluster: the one FLOTILLA_KUBECONFIG names, else a local control plane
    started now (a few seconds) and deleted after the session."""
    existing = os.environ.get(KUBECONFIG_ENV)
    if existing:
        path = Path(existing).expanduser().resolve()
        if not path.is_file():
            pytest.fail(
                f"{KUBECONFIG_ENV}={existing}: no such file. Point it at the kubeconfig of an "
                f"existing cluster, or unset it to test against a local control plane."
            )
        yield KubeCluster(path, None)
        return
    cache = Path(os.environ.get("FLOTILLA_CACHE", "~/.cache/flotilla")).expanduser()
    workdir = cache / "kwok-tests"
    reap_stale_clusters(workdir)
    cluster = LocalCluster.start(workdir, session_cluster_name())
    try:
        yield KubeCluster(cluster.kubeconfig, cluster)
    finally:
        cluster.delete()


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: KubeCluster) -> Path:
    """Path of the session cluster's kubeconfig."""
    return kube_cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """The pinned kubectl (platform/cluster), bound to the session's cluster."""
    return Kubectl(built_tool("kubectl"), kubeconfig)


@pytest.fixture(scope="session")
def helm(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (platform/cluster), bound to the session's cluster, with isolated homes."""
    return Helm(built_tool("helm"), kubeconfig, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace for one test (named after it, random suffix), enforcing the restricted Pod
    Security Standard; deleted, with everything in it, after the test."""
    name = unique_name("t", request.node.name)
    create_test_namespace(kubectl, name)
    yield name
    delete_test_namespace(kubectl, name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "local_control_plane: inspects the local control plane's processes; deselected when "
        f"{KUBECONFIG_ENV} names an existing cluster",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With FLOTILLA_KUBECONFIG, deselect (not skip) the tests that only the local control plane
    can pass."""
    if not os.environ.get(KUBECONFIG_ENV):
        return
    local_only = [item for item in items if item.get_closest_marker("local_control_plane")]
    if local_only:
        config.hook.pytest_deselected(items=local_only)
        items[:] = [item for item in items if item not in local_only]
