"""Chapter 1's machinery: the cluster with its real node (started, or one already up), NATS and
PostgreSQL in it as real pods, CI's NATS on 127.0.0.1, and the deployer as a local process with
helm against the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from demo_common import (
    CLUSTER_SH,
    NAMESPACE,
    NATS_CONFIG,
    REPO,
    SECRETS_SCRIPT,
    SERVICES,
    DemoError,
    Result,
    run,
    tail,
)
from demo_replicasets import ReplicaSet, parse_replica_sets
from demo_supervisor import Managed, Supervisor

from devkit.localstack.environment import deployer_environment, nats_command
from devkit.localstack.poddiscovery import PodDiscovery
from devkit.localstack.ports import free_port
from devkit.localstack.prometheus import PrometheusServer
from devkit.localstack.tools import built_tool, nats_server_binary
from pipelines_cli.buildah import BUILD_LOG_ENV, Progress
from pipelines_cli.imagebuild import ensure_image
from pipelines_cli.incluster import (
    Cluster,
    ensure_sandbox_image,
    install_dependencies,
    install_release,
    local_values,
)


@dataclass(frozen=True)
class Namespaces:
    """Where the releases go: the services, and the nats and postgres dependencies."""

    services: str
    nats: str
    postgres: str

    @property
    def default_dependencies(self) -> bool:
        """True when NATS and PostgreSQL are the platform's own namespaces (nats, postgres)."""
        return (self.nats, self.postgres) == ("nats", "postgres")


# What CI's events may set besides the image: the OOM chapter lowers a memory limit, the canary
# chapter gives its deployment the canary strategy.
DEMO_POLICY: dict[str, Any] = {"default": {"allow": {"resources": {}, "strategy": {}}}}
# In the demo's own cluster: the dependencies where values-local.yaml expects them. On a cluster
# someone else uses (--cluster-run-dir): NATS and PostgreSQL of its own, so its services never
# share a stream, a consumer or a database with theirs.
OWN_CLUSTER = Namespaces(NAMESPACE, "nats", "postgres")
SHARED_CLUSTER = Namespaces(NAMESPACE, f"{NAMESPACE}-nats", f"{NAMESPACE}-postgres")


def service_values(chart: str, namespaces: Namespaces) -> dict[str, Any]:
    """``charts/<chart>/values-local.yaml`` (production settings, every secret by reference);
    the gateway's Service a NodePort; NATS and PostgreSQL in ``namespaces``."""
    values = local_values(REPO, chart, node_port=chart == "gateway")
    if namespaces.default_dependencies:
        return values

    def pods_of(namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            }
        ]

    values.setdefault("nats", {})["url"] = nats_members_url(namespaces.nats)
    policy = values.setdefault("networkPolicy", {})
    policy["natsTo"] = pods_of(namespaces.nats, "nats")
    if "databaseTo" in policy:
        policy["databaseTo"] = pods_of(namespaces.postgres, "postgres")
    return values


def nats_members_url(namespace: str) -> str:
    """NATS_URL for the members of the nats release in ``namespace``, as many as its
    values-local.yaml runs (each through the headless Service's DNS name)."""
    members = int(local_values(REPO, "nats").get("cluster", {}).get("replicas", 3))
    return ",".join(
        f"nats://nats-{i}.nats-headless.{namespace}.svc.cluster.local:4222" for i in range(members)
    )


class Platform:
    """What the story runs on; everything it starts is registered with the supervisor."""

    def __init__(
        self,
        run_dir: Path,
        supervisor: Supervisor,
        helm_timeout: float,
        cluster_run_dir: Path | None,
    ) -> None:
        self.run_dir = run_dir
        self.supervisor = supervisor
        self.helm_timeout = helm_timeout
        self.logs = supervisor.logs
        self.commands_log = self.logs / "commands.log"
        # --cluster-run-dir: a cluster that is up already (not started, not stopped here).
        self.shared = cluster_run_dir is not None
        self.cluster_dir = cluster_run_dir or supervisor.cluster_dir
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.namespaces = SHARED_CLUSTER if self.shared else OWN_CLUSTER
        self.registry = ""
        self.nats_url = ""
        self.deployer: Managed | None = None
        self.api_token = secrets.token_urlsafe(16)  # the deployer's admin token
        self.helm = built_tool("helm")
        self.kubectl_binary = built_tool("kubectl")
        self.cluster: Cluster | None = None
        self.prometheus: PrometheusServer | None = None
        self.discovery: PodDiscovery | None = None

    def build_log(self, line: str) -> None:
        """Image builds and installs report here: logs/build.log."""
        with (self.logs / "build.log").open("a") as out:
            out.write(line.rstrip("\n") + "\n")

    async def kubectl(self, *args: str, check: bool = True) -> Result:
        """The pinned kubectl against the cluster."""
        argv = [str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args]
        return await run(argv, log=self.commands_log, timeout=60, check=check)

    async def replica_sets(self) -> dict[str, list[ReplicaSet]]:
        """Every service's ReplicaSets now."""
        result = await self.kubectl(
            "get", "replicasets", "--namespace", self.namespaces.services, "-o", "json"
        )
        return parse_replica_sets(json.loads(result.stdout))

    async def gateway_url(self) -> str:
        """The gateway Service's NodePort, which the real node answers on 127.0.0.1."""
        result = await self.kubectl(
            "get", "service", "gateway", "--namespace", self.namespaces.services,
            "-o", "jsonpath={.spec.ports[0].nodePort}",
        )  # fmt: skip
        return f"http://127.0.0.1:{result.stdout.strip()}"

    # -- CI's NATS

    async def start_nats(self) -> None:
        """nats-server with JetStream on 127.0.0.1: pipeline and deploy events only."""
        port = free_port()
        self.nats_url = f"nats://127.0.0.1:{port}"
        argv = nats_command(nats_server_binary(), port, self.run_dir / "nats", NATS_CONFIG)
        managed = self.supervisor.start("nats", argv, os.environ, self.nats_url)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.supervisor.check(managed)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise DemoError(f"nats-server did not listen on {port} within 15 s; see {managed.log}")

    # -- the cluster

    async def start_cluster(self) -> str:
        """Start the demo's own cluster with the machine's real node; returns a description."""
        name = f"flotilla-demo-{secrets.token_hex(3)}"
        self.supervisor.set_cluster(name)
        result = await run(
            [str(CLUSTER_SH), "up", "--run-dir", str(self.cluster_dir), "--name", name],
            log=self.logs / "cluster.log",
            timeout=300,
            check=False,
        )
        if result.code != 0:
            self.supervisor.keep_cluster_logs()
            hint = (
                " The machine runs one real node at a time and another cluster holds it: wait "
                "for it to go down, or run the demo on that cluster with --cluster-run-dir "
                "<its run dir>."
                if "a real node already runs" in result.stderr
                else ""
            )
            said = [
                line
                for line in (result.stderr + result.stdout).splitlines()
                if line.startswith(("cluster.sh:", "node.sh:"))
            ]
            why = "\n".join(said[-4:]) or result.explain()
            raise DemoError(
                f"the local cluster did not start (cluster.sh up exited {result.code}):\n{why}\n"
                f"See {self.logs / 'cluster.log'}.{hint}"
            )
        match = re.search(r"https://127\.0\.0\.1:\d+", result.stderr)
        self.registry = (self.cluster_dir / "registry").read_text().strip()
        await self.create_namespace()
        server = match.group(0) if match else "?"
        return f"{name}: {server}, real node flotilla-node, registry {self.registry}"

    async def attach_cluster(self) -> str:
        """Use the cluster that is up in --cluster-run-dir; returns a description."""
        for needed in (self.kubeconfig, self.cluster_dir / "registry"):
            if not needed.is_file():
                raise DemoError(
                    f"--cluster-run-dir {self.cluster_dir}: no {needed.name} there. Give the run "
                    "directory of a cluster that is up (`platform/cluster/cluster.sh up "
                    "--run-dir DIR` writes DIR/kubeconfig and DIR/registry)."
                )
        self.registry = (self.cluster_dir / "registry").read_text().strip()
        nodes = await self.kubectl("get", "nodes", "-o", "json", check=False)
        if nodes.code != 0:
            raise DemoError(
                f"the cluster of {self.cluster_dir} does not answer ({nodes.explain()}): is it "
                f"up? `platform/cluster/cluster.sh status --run-dir {self.cluster_dir}`"
            )
        ready = [
            item["metadata"]["name"]
            for item in json.loads(nodes.stdout).get("items", [])
            if item["metadata"]["name"] == "flotilla-node"
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in item.get("status", {}).get("conditions", [])
            )
        ]
        if not ready:
            raise DemoError(
                f"the cluster of {self.cluster_dir} has no Ready real node (flotilla-node): "
                "the demo runs real pods. Start it with its real node (cluster.sh up)."
            )
        # A namespace left by an earlier demo goes first (its releases, its pods).
        self.supervisor.add_namespace(
            str(self.kubectl_binary), str(self.kubeconfig), self.namespaces.services
        )
        await self.kubectl(
            "delete", "namespace", self.namespaces.services, "--ignore-not-found",
            "--wait=true", "--timeout=120s",
        )  # fmt: skip
        await self.create_namespace()
        return (
            f"{self.cluster_dir} (up already; not stopped at the end), real node flotilla-node, "
            f"registry {self.registry}"
        )

    async def create_namespace(self) -> None:
        """The services' namespace, with restricted Pod Security."""
        namespace = self.namespaces.services
        await self.kubectl("create", "namespace", namespace)
        await self.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
        )

    # -- NATS and PostgreSQL in the cluster

    async def start_dependencies(self) -> dict[str, str]:
        """The Secrets, NATS and PostgreSQL in the cluster as real pods (images built here);
        returns each dependency's image."""
        os.environ[BUILD_LOG_ENV] = str(self.logs / "build.log")
        self.cluster = Cluster(
            kubeconfig=self.kubeconfig,
            kubectl=self.kubectl_binary,
            helm=self.helm,
            helm_home=self.run_dir / "helm",
            registry=self.registry,
        )
        if self.namespaces.default_dependencies:
            return await asyncio.to_thread(
                install_dependencies,
                REPO,
                self.cluster,
                self.build_log,
                namespace=self.namespaces.services,
            )
        return await asyncio.to_thread(
            install_isolated_dependencies, self.cluster, self.namespaces, self.build_log
        )

    # -- Prometheus

    async def start_prometheus(self) -> PrometheusServer:
        """A real Prometheus scraping the service pods every second (on their bridge addresses),
        its targets kept up to date from the pod list; what the canary analysis asks."""
        server = PrometheusServer(self.run_dir / "prometheus", scrape_interval=1.0)
        managed = self.supervisor.start("prometheus", server.command(), os.environ, server.url)
        self.prometheus = server
        self.discovery = PodDiscovery(
            server, self.kubectl_binary, self.kubeconfig, [self.namespaces.services]
        )
        await asyncio.to_thread(self.discovery.start)
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(server.ready):
            self.supervisor.check(managed)
            if time.monotonic() > deadline:
                raise DemoError(f"Prometheus was not ready in 30 s; see {managed.log}")
            await asyncio.sleep(0.2)
        return server

    def stop_discovery(self) -> None:
        """Stop listing the pods for Prometheus (the supervisor stops Prometheus itself)."""
        if self.discovery is not None:
            self.discovery.stop()
            self.discovery = None

    # -- the deployer

    async def start_deployer(self, extra_env: dict[str, str] | None = None) -> Managed:
        """``python -m deployer.main`` as the deployer NATS user, with helm against the cluster
        and values/<service>.yaml per service (and ``extra_env``); ready once its /readyz
        answers 200."""
        values = self.run_dir / "values"
        values.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            (values / f"{name}.yaml").write_text(
                json.dumps(service_values(name, self.namespaces), indent=2)
            )
        port = free_port()
        helm_home = self.run_dir / "helm"
        env = {
            **os.environ,
            **deployer_environment(
                nats_url=self.nats_url,
                charts_dir=REPO / "charts",
                namespaces=self.namespaces.services,
                helm=self.helm,
                kubeconfig=self.kubeconfig,
                values_dir=values,
                helm_timeout_seconds=self.helm_timeout,
                api_token=self.api_token,
            ),
            "SERVICE_PORT": str(port),
            "DEPLOYER_POLICY": json.dumps(DEMO_POLICY),
            **(
                {
                    "DEPLOYER_PROMETHEUS_URL": self.prometheus.url,
                    "DEPLOYER_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": "1",
                }
                if self.prometheus
                else {}
            ),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
            **(extra_env or {}),
        }
        argv = [sys.executable, "-m", "deployer.main"]
        self.deployer = self.supervisor.start("deployer", argv, env, f"http://127.0.0.1:{port}")
        await self.wait_ready(self.deployer)
        return self.deployer

    async def wait_ready(self, managed: Managed, timeout: float = 60) -> None:
        """Poll /readyz until 200 (the process must stay alive)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                self.supervisor.check(managed)
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{managed.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise DemoError(
            f"{managed.name} was not ready within {timeout:.0f} s; the end of {managed.log}:\n"
            + tail(managed.log)
        )


def install_isolated_dependencies(
    cluster: Cluster, namespaces: Namespaces, progress: Progress
) -> dict[str, str]:
    """What ``install_dependencies`` does, with NATS and PostgreSQL in namespaces of their own
    (kept between runs: a re-run only upgrades them); returns each dependency's image."""
    ensure_sandbox_image(REPO, cluster.registry, progress)
    postgres_host = f"postgres.{namespaces.postgres}.svc.cluster.local"
    progress(f"==> Secrets (cluster_secrets.py, services in namespace {namespaces.services})")
    argv = [
        sys.executable, str(SECRETS_SCRIPT),
        "--kubeconfig", str(cluster.kubeconfig), "--kubectl", str(cluster.kubectl),
        "--namespace", namespaces.services, "--nats-namespace", namespaces.nats,
        "--postgres-namespace", namespaces.postgres, "--postgres-host", postgres_host,
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoError(f"cluster_secrets.py failed: {result.stderr.strip()}")
    images: dict[str, str] = {}
    for chart, namespace in (("nats", namespaces.nats), ("postgres", namespaces.postgres)):
        pushed = ensure_image(REPO, chart, cluster.registry, progress=progress)
        images[chart] = pushed.image.reference
        progress(f"==> helm upgrade --install {chart} (namespace {namespace})")
        install_release(REPO, cluster, chart, pushed.image.reference, namespace=namespace)
    return images
