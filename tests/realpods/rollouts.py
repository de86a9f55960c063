"""What the rollout suites do on the real cluster: new images of a service, deployments through
the deployer, steady traffic through the gateway while they roll, and the ReplicaSets and pods
they leave."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy_contract.events import DeployEventData
from loadgen.background import LoadInBackground
from loadgen.plan import LoadPlan
from loadgen.report import LoadReport
from pipelines_cli.incluster import push_variant
from tests.deployer.deployer_stack import DeployerStack
from tests.e2e.clustersupport import REPO_ROOT
from tests.realpods.realcluster import (
    SERVICES,
    Platform,
    pod_ready,
    real_pod_values,
    wait_until,
)

# The acceptance rate of the zero-downtime claim: requests/s through the gateway.
RATE = 50.0
# What the rollout suites' deployments may set besides the image.
REAL_PODS_POLICY: dict[str, Any] = {
    "default": {
        "allow": {
            "resources": {},
            "config": {},
            "service": {},
            "podAnnotations": {},
            "replicaCount": {"min": 1, "max": 4},
            "progressDeadlineSeconds": {"min": 10, "max": 600},
        }
    }
}


def real_pods_deployer(
    platform: Platform,
    directory: Path,
    env: dict[str, str] | None = None,
    more_values: dict[str, dict[str, Any]] | None = None,
) -> DeployerStack:
    """The deployer (a local process with its own NATS in ``directory``) for the releases of
    ``platform``, with the real-pod values (plus ``more_values`` per service) and the rollout
    suites' policy; not started."""
    values = {service: real_pod_values(service) for service in SERVICES}
    for service, extra in (more_values or {}).items():
        values[service].update(extra)
    return DeployerStack(
        REPO_ROOT,
        directory,
        platform.cluster.kubeconfig,
        platform.namespace,
        policy=REAL_PODS_POLICY,
        env={"DEPLOYER_HELM_TIMEOUT_SECONDS": "180", **(env or {})},
        values=values,
    )


def new_image(
    platform: Platform,
    service: str,
    command: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """A new image of ``service`` pushed to the cluster's registry: the one the platform was
    installed with, under a new immutable tag (and another ``command``, for a broken build, or
    more ``env``, e.g. injected errors)."""
    current = platform.images[service].image.reference
    repository = current.rsplit(":", 1)[0]
    # Versions only grow (the deployer refuses an older one than it deployed): a clock in ms.
    tag = f"0.9.{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}"
    variant = f"{repository}:{tag}"
    push_variant(current, variant, platform.cluster.registry, command, env)
    return variant


def artifact(service: str, image: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """CI's artifact event data for ``image`` of ``service`` (with policy-checked ``values``)."""
    return {
        "service": service,
        "image": image,
        "commit": image.rsplit("-", 1)[-1],
        "pipeline_id": "realpods",
        "rollback": False,
        "values": values or {},
    }


async def deploy(
    deployer: DeployerStack,
    service: str,
    image: str,
    values: dict[str, Any] | None = None,
    timeout: float = 180,
) -> DeployEventData:
    """Publish CI's event for ``image`` and wait for the deployment's one outcome."""
    deployment = await deployer.publish(service, data=artifact(service, image, values))
    return await deployer.outcome(deployment, timeout=timeout)


async def planned(deployer: DeployerStack, outcome: DeployEventData) -> dict[str, Any]:
    """The plan the deployer published when the deployment of ``outcome`` started."""
    for event in await deployer.events(outcome.deployment_id):
        if event.plan is not None:
            return event.plan
    raise AssertionError(f"no plan among the events of {outcome.deployment_id}")


def replica_sets(platform: Platform, service: str) -> dict[str, tuple[int, int]]:
    """The service's ReplicaSets: name -> (Deployment revision, desired replicas)."""
    listed = platform.kubectl.json(
        "get", "replicasets", "-n", platform.namespace, "-l", f"app.kubernetes.io/name={service}"
    )
    return {
        rs["metadata"]["name"]: (
            int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
            int(rs["spec"]["replicas"]),
        )
        for rs in listed["items"]
    }


def active(sets: dict[str, tuple[int, int]]) -> set[str]:
    """The ReplicaSets that have replicas."""
    return {name for name, (_, replicas) in sets.items() if replicas}


def settled(platform: Platform, service: str, replicas: int = 2) -> None:
    """Wait until the service runs exactly ``replicas`` ready pods, none terminating (the old
    pods' drain is part of a rollout: traffic is measured until they are gone)."""

    def check() -> bool:
        pods = platform.service_pods(service)
        return len(pods) == replicas and all(
            pod_ready(p) and not p["metadata"].get("deletionTimestamp") for p in pods
        )

    wait_until(check, timeout=120, what=f"{service}: {replicas} ready pods, none terminating")


def deployment(platform: Platform, service: str) -> dict[str, Any]:
    """The service's Deployment as the API server has it."""
    found: dict[str, Any] = platform.kubectl.json(
        "get", "deployment", service, "-n", platform.namespace
    )
    return found


def container(platform: Platform, service: str) -> dict[str, Any]:
    """The service container of the Deployment's pod template."""
    containers = deployment(platform, service)["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = next(c for c in containers if c["name"] == service)
    return found


def traffic(platform: Platform, **plan: Any) -> LoadInBackground:
    """Steady traffic through the gateway (``RATE`` requests/s unless ``plan`` says otherwise),
    running until stopped."""
    settings: dict[str, Any] = {"rate": RATE, "duration": 600.0, **plan}
    return LoadInBackground(LoadPlan(target=platform.gateway, **settings))


def no_failures(report: LoadReport, what: str) -> None:
    """Fail with the failed requests (and the run's summary) when any request failed."""
    failed = report.failed
    assert not failed, (
        f"{len(failed)} requests failed during {what}:\n"
        + "\n".join(r.line() for r in failed[:20])
        + "\n"
        + report.summary()
    )


@dataclass
class PodLogs:
    """``kubectl logs -f`` of some pods, collected in threads until each container exits."""

    platform: Platform
    pods: list[str]
    lines: dict[str, list[str]] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> PodLogs:
        for pod in self.pods:
            self.lines[pod] = []
            thread = threading.Thread(target=self._follow, args=(pod,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _follow(self, pod: str) -> None:
        kubectl = self.platform.kubectl
        argv = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig)]
        argv += ["logs", "-f", "-n", self.platform.namespace, pod]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as follow:
            assert follow.stdout is not None
            for line in follow.stdout:
                self.lines[pod].append(line)

    def wait(self, timeout: float) -> None:
        """Until every followed container has exited (its log stream ended)."""
        for thread in self._threads:
            thread.join(timeout)
        alive = [p for p, t in zip(self.pods, self._threads, strict=True) if t.is_alive()]
        assert not alive, f"still running after {timeout:g} s: {alive}"

    def __exit__(self, *exc: object) -> None:
        self.wait(5)


async def in_thread(function: Any, *args: Any) -> Any:
    """Run a blocking helper off the event loop (the deployer's NATS client lives on it)."""
    return await asyncio.to_thread(function, *args)
