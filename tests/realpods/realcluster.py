"""A local cluster with the machine's real node for the real-pods suite, and the platform on it:
the images built from the Dockerfiles, NATS and PostgreSQL, the four services as real pods.

The suite starts its own cluster (platform/cluster/cluster.sh up) and removes it afterwards; or,
when FLOTILLA_REAL_CLUSTER names the run directory of a running one (its ``kubeconfig`` and
``registry`` files, e.g. ``.run/cluster`` of ``make cluster-up``), it installs into that one and
leaves it running.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import layout
from pipelines_cli.imagebuild import PushedImage, ensure_image
from pipelines_cli.incluster import (
    PLATFORM_NAMESPACE,
    Cluster,
    install_dependencies,
    install_release,
    local_values,
)
from tests.e2e.clustersupport import CLUSTER_DIR, REPO_ROOT, Kubectl, built_tool

REAL_CLUSTER_ENV = "FLOTILLA_REAL_CLUSTER"
# Every service (kit.layout: the folders services/<name>/), the gateway last: it routes to the
# others and needs auth's JWKS.
SERVICES = tuple(sorted(layout.service_names(REPO_ROOT), key=lambda name: name == "gateway"))
NODE_NAME = "flotilla-node"
# A rollout whose new pods make no progress for this long fails (helm stops waiting at once and
# rolls back), instead of at helm's timeout: a broken build is caught in seconds.
PROGRESS_DEADLINE_SECONDS = 20


def real_pod_values(service: str) -> dict[str, Any]:
    """The values the real-pods suites release ``service`` with: values-local.yaml (the gateway
    on a NodePort) and a short progress deadline."""
    values = local_values(REPO_ROOT, service, node_port=service == "gateway")
    values["progressDeadlineSeconds"] = PROGRESS_DEADLINE_SECONDS
    return values


def _cluster_sh(*args: str, timeout: float) -> str:
    result = subprocess.run(
        [str(CLUSTER_DIR / "cluster.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"cluster.sh {' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
        )
    return result.stderr


@dataclass(frozen=True)
class RealCluster:
    """A cluster with a real node: its run directory (kubeconfig, registry) and whether this
    session started it (and so stops it)."""

    run_dir: Path
    owned: bool

    @property
    def kubeconfig(self) -> Path:
        """The cluster's admin kubeconfig."""
        return self.run_dir / "kubeconfig"

    @property
    def registry(self) -> str:
        """``127.0.0.1:<port>`` of the registry the real node pulls from."""
        return (self.run_dir / "registry").read_text().strip()

    @classmethod
    def up(cls, run_dir: Path, name: str) -> RealCluster:
        """``cluster.sh up`` (control plane and real node) in ``run_dir``; on failure whatever
        was started is removed again."""
        try:
            _cluster_sh("up", "--run-dir", str(run_dir), "--name", name, timeout=300)
        except BaseException:
            cls(run_dir, owned=True).down()
            raise
        return cls(run_dir, owned=True)

    def down(self) -> None:
        """``cluster.sh down``: the control plane, the node and everything they made."""
        if self.owned:
            _cluster_sh("down", "--run-dir", str(self.run_dir), timeout=120)  # its one cluster


def cluster_name(run_dir: Path) -> str:
    """The name cluster.sh gave the cluster of ``run_dir`` (its one kwok cluster)."""
    return next((run_dir / "kwok" / "clusters").iterdir()).name


def reap_stale_runs(parent: Path) -> None:
    """Stop the clusters of earlier sessions in ``parent`` whose pytest process is gone."""
    for run_dir in sorted(parent.glob("pytest-*")):
        match = re.fullmatch(r"pytest-(\d+)-[0-9a-f]+", run_dir.name)
        if match is None:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            _cluster_sh("down", "--run-dir", str(run_dir), "--name", run_dir.name, timeout=120)
            subprocess.run(["rm", "-rf", str(run_dir)], check=False)
        except PermissionError:
            continue


def session_run_dir(cache: Path) -> tuple[Path, str]:
    """A run directory and cluster name that tell which pytest process owns them."""
    name = f"pytest-{os.getpid()}-{secrets.token_hex(2)}"
    return cache / "realpods-tests" / name, name


@dataclass
class Platform:
    """The platform installed on a real cluster: the images, kubectl, the gateway's NodePort."""

    cluster: Cluster
    kubectl: Kubectl
    images: dict[str, PushedImage] = field(default_factory=dict)
    gateway: str = ""
    namespace: str = PLATFORM_NAMESPACE

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """The pods of a namespace (optionally by label selector), as the API server has them."""
        args = ["get", "pods", "-n", namespace]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = self.kubectl.json(*args)["items"]
        return items

    def service_pods(self, service: str) -> list[dict[str, Any]]:
        """The pods of one service release."""
        return self.pods(self.namespace, f"app.kubernetes.io/name={service}")

    def psql(self, database: str, query: str, **variables: str) -> str:
        """One query as the database superuser inside the PostgreSQL pod (unaligned output);
        ``variables`` are psql variables, quoted by psql where the query says ``:'name'``."""
        settings = [f"--set={name}={value}" for name, value in variables.items()]
        return self.kubectl.run(
            "exec", "-i", "-n", "postgres", "postgres-0", "--",
            "psql", "-h", "/tmp", "-d", database, "-tA", "-v", "ON_ERROR_STOP=1", *settings,
            stdin=query,
        ).stdout.strip()  # fmt: skip


def install_platform(real: RealCluster, helm_home: Path, log: Callable[[str], None]) -> Platform:
    """Build and push every image, install NATS and PostgreSQL, then each service (the gateway
    with a NodePort on 127.0.0.1), each waited for until its pods are ready."""
    cluster = Cluster(
        kubeconfig=real.kubeconfig,
        kubectl=built_tool("kubectl"),
        helm=built_tool("helm"),
        helm_home=helm_home,
        registry=real.registry,
    )
    platform = Platform(cluster, Kubectl(cluster.kubectl, cluster.kubeconfig))
    install_dependencies(REPO_ROOT, cluster, log)
    for service in SERVICES:
        pushed = ensure_image(REPO_ROOT, service, cluster.registry, progress=log)
        platform.images[service] = pushed
        extra = ["--set", "service.type=NodePort"] if service == "gateway" else []
        log(f"==> helm upgrade --install {service}")
        install_release(
            REPO_ROOT, cluster, service, pushed.image.reference,
            namespace=platform.namespace, extra=extra,
        )  # fmt: skip
    service = platform.kubectl.json("get", "service", "gateway", "-n", platform.namespace)
    platform.gateway = f"http://127.0.0.1:{service['spec']['ports'][0]['nodePort']}"
    return platform


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, every: float = 1) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def pod_ready(pod: dict[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of ``text`` that are JSON objects."""
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found
