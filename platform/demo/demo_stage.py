"""The demo's stage: what every chapter uses (the console, the platform, the simulated CI,
the deploy events, following a deployment live)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
from demo_ci import BROKEN_COMMAND, CI
from demo_common import DemoError, Result
from demo_events import DeployEvents
from demo_platform import Platform
from demo_render import (
    PHASE_STYLES,
    Narrator,
    canary_text,
    event_row,
    plan_table,
    progress_text,
)
from demo_replicasets import ReplicaSet
from demo_supervisor import Supervisor
from demo_traffic import Traffic
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from deploy_contract.events import DeployEventData, DeployPhase
from deployer.plan import Plan

# Pipeline run ids of the simulated CI (each demo has a fresh NATS, so they never collide).
RUN_ID_PREFIX = "demo"
BROKEN_COMMAND_JSON = json.dumps(list(BROKEN_COMMAND))
# Below the ~70 MiB a service process uses: the kubelet OOM-kills it at start.
OOM_LIMIT = "48Mi"


class Demo(Narrator):
    """What the chapters share: the console, the platform, CI, the events and the figures."""

    def __init__(
        self,
        console: Console,
        run_dir: Path,
        helm_timeout: float,
        cluster_run_dir: Path | None = None,
    ) -> None:
        super().__init__(console)
        self.run_dir = run_dir
        self.helm_timeout = helm_timeout
        self.cluster_run_dir = cluster_run_dir
        self.supervisor = Supervisor(run_dir)
        self.logs = self.supervisor.logs
        self.events = DeployEvents()
        self.steps: dict[str, float] = {}
        self.began = time.monotonic()
        self.checkout = run_dir / "checkout"
        self.good_order_image = ""
        self.traffic: Traffic | None = None
        self._platform: Platform | None = None
        self._ci: CI | None = None

    @property
    def platform(self) -> Platform:
        """The cluster, NATS and the deployer (once chapter 1 started)."""
        assert self._platform is not None, "chapter 1 has not run"
        return self._platform

    def stop_discovery(self) -> None:
        """Stop the pod discovery thread of Prometheus, if chapter 1 started it."""
        if self._platform is not None:
            self._platform.stop_discovery()

    @property
    def ci(self) -> CI:
        """The simulated CI (once chapter 1 started)."""
        assert self._ci is not None, "chapter 1 has not run"
        return self._ci

    @property
    def namespace(self) -> str:
        """The services' namespace."""
        return self.platform.namespaces.services

    # -- chapter 1

    async def changed(self, base: str) -> list[str]:
        """`pipelines changed` from ``base`` to HEAD, shown."""
        names = await self.ci.changed(base)
        self.shell(f"pipelines changed --base {base[:7]} --head HEAD", " ".join(names))
        return names

    async def build(self, tags: Mapping[str, str]) -> dict[str, str]:
        """The images of ``tags`` built from the CI checkout and pushed, shown; returns service
        -> the image reference pushed."""
        began = time.monotonic()
        images = await self.ci.build(tags, self.platform.build_log)
        names = ", ".join(sorted(tags))
        self.shell(
            f"ensure_image <{names}> --tag <its tag> --push-to {self.platform.registry}",
            f"{len(images)} image(s) built from their Dockerfiles (buildah) and pushed "
            f"[dim]({time.monotonic() - began:.0f} s; logs/build.log)[/]",
        )
        return images

    # -- chapter 2

    async def events_tracks(
        self, deployments: Mapping[str, tuple[str, Callable[[DeployEventData], None]]]
    ) -> dict[str, list[DeployEventData]]:
        """Track several deployments at once; service -> its events."""
        names = list(deployments)
        results = await asyncio.gather(
            *(self.events.track(i, cb) for i, cb in deployments.values())
        )
        return dict(zip(names, results, strict=True))

    # -- chapter 3

    async def wait_for_node_port(self, http: httpx.AsyncClient, gateway: str) -> None:
        """Wait until the NodePort answers (kube-proxy programs it a moment after the Service
        exists, and a connection may be refused until then)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                await http.get("/readyz")
                return
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"the gateway's NodePort {gateway} did not answer within 30 s ({exc!r}): "
                        f"see `kubectl get pods,svc -n {self.namespace}` and the node's "
                        "kube-proxy log (cluster/kwok/clusters/<name>/node/logs)"
                    ) from None
                await asyncio.sleep(0.5)

    def expect(self, response: httpx.Response, status: int, what: str) -> None:
        """Raise DemoError unless ``response`` has ``status``."""
        if response.status_code != status:
            raise DemoError(
                f"{what} through the gateway answered {response.status_code}, not {status}: "
                f"{response.text[:500]} (logs: kubectl logs -n {self.namespace} deploy/gateway)"
            )

    # -- chapter 4

    async def follow(
        self, service: str, deployment_id: str, before: Mapping[str, Sequence[ReplicaSet]]
    ) -> tuple[list[DeployEventData], Result]:
        """Print the deployment's events as they come (the plan first), with `pipelines wait`
        running alongside, as a CI job would."""
        old_sets = {rs.name for rs in before.get(service, ())}
        began = time.monotonic()
        rolling = False
        latest = "waiting for the deployer"

        shown_canary: tuple[object, ...] | None = None

        def show(event: DeployEventData) -> None:
            nonlocal rolling, latest, shown_canary
            if event.canary is not None and event.phase is DeployPhase.CANARY:
                c = event.canary
                seen = (c.state, c.stable_replicas, c.canary_replicas, len(c.measurements))
                if seen == shown_canary:
                    return  # one line per change of state, split or measurement
                shown_canary = seen
            if event.progress is not None:
                # Until a new ReplicaSet appears the counts describe the release before this one.
                rolling = rolling or any(n not in old_sets for n in event.progress.replica_sets)
                if not rolling:
                    return
            stamp = Text(f"+{time.monotonic() - began:.1f}s", style="dim")
            label = Text(event.phase.value, style=PHASE_STYLES[event.phase])
            plan = Plan.model_validate(event.plan) if event.plan is not None else None
            detail: Text | Table = Text("")
            if plan is not None:
                detail = Text(plan.summary())
            elif event.canary is not None and event.phase is DeployPhase.CANARY:
                detail = canary_text(event.canary)
            elif event.progress is not None:
                detail = progress_text(event, old_sets)
            elif event.phase is DeployPhase.SUCCEEDED:
                detail = Text(f"helm revision {event.revision}")
            elif event.phase is DeployPhase.ROLLED_BACK and event.reason:
                # "the rollout failed and was rolled back ... (now revision N): <helm's error>"
                headline, found, rest = event.reason.partition("): ")
                detail = Text(headline + (")" if found else ""))
                if rest:
                    detail.append("\n" + " ".join(rest.split()), style="dim")
            elif event.reason:
                headline, _, rest = event.reason.partition(": ")
                detail = Text(headline, style="red")
                detail.append("\n" + " ".join(rest.split()), style="dim")
            self.console.print(event_row(stamp, label, detail))
            if plan is not None:
                self.console.print(Padding(plan_table(plan), (0, 0, 0, 6)))
            latest = event.phase.value
            if event.canary is not None:
                latest = f"canary {event.canary.state.value}"
            if event.progress is not None:
                p = event.progress
                latest = f"{p.updated}/{p.desired} updated, {p.ready} ready"

        with self.console.status("", spinner="dots") as status:

            async def tick() -> None:
                while True:
                    counter = f" · {self.traffic.line()}" if self.traffic else ""
                    status.update(
                        f"[dim]rolling out {service}: {escape(latest)} "
                        f"({time.monotonic() - began:.0f} s; helm gives up after "
                        f"{self.helm_timeout:g} s, the deployer as soon as new containers "
                        f"keep crashing)[/]{counter}"
                    )
                    await asyncio.sleep(0.5)

            ticker = asyncio.create_task(tick())
            try:
                events, verdict = await asyncio.gather(
                    self.events.track(deployment_id, show), self.ci.wait(service, deployment_id)
                )
            finally:
                ticker.cancel()
        return events, verdict

    # -- chapter 5
