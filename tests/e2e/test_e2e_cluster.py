"""The control plane itself: the real Kubernetes version, Ready fake nodes, loopback-only
listeners, fake pod and service IPs, and the kwok stages (readiness delay, never-ready marker)."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.e2e.clustersupport import (
    KubeCluster,
    Kubectl,
    listening_addresses,
    pinned_versions,
)

pytestmark = pytest.mark.e2e

COMPONENTS = {
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
}


def _pod_spec(image: str) -> dict[str, Any]:
    """A pod spec that passes the restricted Pod Security Standard."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "app",
                "image": image,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


def _pod(name: str, image: str, annotations: dict[str, str] | None = None) -> str:
    """A bare pod manifest."""
    metadata = {"name": name, "annotations": annotations or {}}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": _pod_spec(image)}
    )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _running(pod: dict[str, Any]) -> bool:
    return bool(pod.get("status", {}).get("phase") == "Running")


def _wait_for(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 30,
) -> dict[str, Any]:
    """Poll the pod until ``check`` is true of it; return the pod."""
    deadline = time.monotonic() + timeout
    while True:
        pod: dict[str, Any] = kubectl.json("-n", namespace, "get", "pod", name)
        if check(pod):
            return pod
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name}: {check.__name__} never held: {pod.get('status')}")
        time.sleep(0.1)


def test_server_reports_the_real_kubernetes_version(
    kubectl: Kubectl, kube_cluster: KubeCluster
) -> None:
    version = kubectl.json("version")
    server = version["serverVersion"]["gitVersion"]
    assert version["clientVersion"]["gitVersion"] == pinned_versions()["KUBE_VERSION"]
    if kube_cluster.local is not None:
        assert server == pinned_versions()["KUBE_VERSION"]
    else:
        assert server.startswith("v1.")


def test_nodes_are_ready(kubectl: Kubectl, kube_cluster: KubeCluster) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    assert nodes
    for node in nodes:
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conditions["Ready"] == "True", node["metadata"]["name"]
    if kube_cluster.local is not None:
        assert len(nodes) == 2
        allocatable = nodes[0]["status"]["allocatable"]
        assert int(allocatable["pods"]) >= 100
        assert allocatable["cpu"] == "32"


@pytest.mark.local_control_plane
def test_local_control_plane_listens_on_loopback_only(kube_cluster: KubeCluster) -> None:
    local = kube_cluster.local
    assert local is not None
    server = urlsplit(
        yaml.safe_load(local.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    )
    assert server.hostname == "127.0.0.1"
    pids = local.pids()
    assert set(pids) == COMPONENTS
    for component, pid in pids.items():
        addresses = listening_addresses(pid)
        assert addresses, f"{component} listens nowhere"
        assert all(address.is_loopback for address, _ in addresses), (component, addresses)


def _is_local_address(address: str) -> bool:
    """Whether this machine owns ``address``: binding to it (never connecting) succeeds."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def test_node_pod_and_service_ips_are_fake(
    kubectl: Kubectl, namespace: str, kube_cluster: KubeCluster
) -> None:
    pod = _pod("web", "registry.local/web:1.0.0-a1b2c3d")
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=pod)
    kubectl.run("-n", namespace, "create", "service", "clusterip", "web", "--tcp=80:8000")
    pod_ips = [ip["ip"] for ip in _wait_for(kubectl, namespace, "web", _ready)["status"]["podIPs"]]
    service_ips = kubectl.json("-n", namespace, "get", "service", "web")["spec"]["clusterIPs"]
    node_ips = [
        address["address"]
        for node in kubectl.json("get", "nodes")["items"]
        for address in node["status"]["addresses"]
        if address["type"] == "InternalIP"
    ]
    assert pod_ips
    assert service_ips
    assert node_ips
    for address in pod_ips + service_ips + node_ips:
        assert not ipaddress.ip_address(address).is_loopback
        assert not _is_local_address(address), f"{address} is an address of this machine"
    if kube_cluster.local is not None:
        # platform/cluster/cluster.sh: everything fake is in 198.18.0.0/15 (RFC 2544).
        fake = ipaddress.ip_network("198.18.0.0/15")
        assert all(ipaddress.ip_address(a) in fake for a in pod_ips + service_ips + node_ips)


def test_readiness_delay_annotation(kubectl: Kubectl, namespace: str) -> None:
    manifest = _pod("slow", "registry.local/web:1.0.0-a1b2c3d", {"flotilla.dev/ready-after": "2s"})
    start = time.monotonic()
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=manifest)
    pod = _wait_for(kubectl, namespace, "slow", _ready)
    assert time.monotonic() - start >= 2
    # Running (container started, not ready) from startTime; Ready 2 s later.
    started = _timestamp(pod["status"]["startTime"])
    ready = _timestamp(_condition(pod, "Ready")["lastTransitionTime"])
    assert ready - started >= 2


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    (condition,) = (c for c in pod["status"]["conditions"] if c["type"] == kind)
    found: dict[str, Any] = condition
    return found


@pytest.mark.parametrize(
    ("image", "annotations"),
    [
        ("registry.local/web:1.0.1-neverready-a1b2c3d", {}),
        ("registry.local/web:1.0.1-a1b2c3d", {"flotilla.dev/never-ready": "true"}),
    ],
    ids=["image-tag", "annotation"],
)
def test_never_ready_marker(
    kubectl: Kubectl, namespace: str, image: str, annotations: dict[str, str]
) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=_pod("broken", image, annotations))
    pod = _wait_for(kubectl, namespace, "broken", _running)
    time.sleep(1)  # it stays that way
    pod = kubectl.json("-n", namespace, "get", "pod", "broken")
    assert pod["status"]["phase"] == "Running"
    assert not _ready(pod)
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] is False
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_job_pods_complete(kubectl: Kubectl, namespace: str) -> None:
    spec = {**_pod_spec("registry.local/migrate:1.0.0-a1b2c3d"), "restartPolicy": "Never"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    kubectl.run("-n", namespace, "wait", "--for=condition=Complete", "job/migrate", "--timeout=30s")
    (pod,) = kubectl.json("-n", namespace, "get", "pods", "-l", "job-name=migrate")["items"]
    assert pod["status"]["phase"] == "Succeeded"
