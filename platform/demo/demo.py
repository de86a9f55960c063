"""`make demo`: independent rollouts of real pods, end to end on a local cluster.

It starts its own cluster with the machine's real node (platform/cluster/cluster.sh), NATS and
PostgreSQL in it as real pods (charts/nats, charts/postgres, the Secrets of platform/secrets),
and, as local processes on 127.0.0.1, the NATS that CI and the deployer talk over (the users of
platform/nats/local.conf) and the deployer; then it plays CI with the pipelines CLI in a
throw-away clone of the repository, building every image from its Dockerfile (buildah, no Docker
engine) into the cluster's registry:

1. every service released at 1.0.0 (built, published and waited for, four lanes in parallel);
2. an order placed through the gateway pod (a NodePort on 127.0.0.1) and paid;
3. order alone bumped to 1.1.0: the deployer's plan, the live rollout of real pods, and the
   ReplicaSets of every service before and after, proving that only order rolled;
4. a really broken order image (its process exits at start) that fails and is rolled back,
   while the previous ReplicaSet keeps serving.

Everything it started is stopped at the end, also on failure and on Ctrl-C; the logs stay in
<run dir>/logs. With --cluster-run-dir it uses a cluster that is up already instead (its own
namespaces there; that cluster is not stopped).

    .venv/bin/python platform/demo/demo.py [--run-dir .run/demo] [--no-color] [--helm-timeout 45]
        [--cluster-run-dir DIR]

The pieces: demo_platform.py (cluster, NATS, PostgreSQL, deployer), demo_ci.py (the simulated
CI and the images), demo_events.py, demo_replicasets.py, demo_render.py (output), and
demo_supervisor.py (what was started, and stopping it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
from demo_ci import BROKEN_COMMAND, CI
from demo_common import REGISTRY, REPO, SERVICES, DemoError, Result, shown
from demo_events import DeployEvents
from demo_platform import Platform
from demo_render import (
    PHASE_STYLES,
    Lane,
    Narrator,
    before_after_table,
    event_row,
    lanes_table,
    make_console,
    order_sets_table,
    plan_table,
    progress_text,
    short,
)
from demo_replicasets import ReplicaSet, rolled_services, serving
from demo_supervisor import Supervisor
from demo_traffic import RATE, Traffic
from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from deployer.contract import DeployEventData, DeployPhase
from deployer.plan import Plan

# Pipeline run ids of the simulated CI (each demo has a fresh NATS, so they never collide).
RUN_ID_PREFIX = "demo"
BROKEN_COMMAND_JSON = json.dumps(list(BROKEN_COMMAND))
# Below the ~70 MiB a service process uses: the kubelet OOM-kills it at start.
OOM_LIMIT = "48Mi"

__all__ = ["Demo", "Supervisor", "main"]


class Demo(Narrator):
    """The story, one method per chapter."""

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

    async def start_platform(self) -> None:
        """CI's NATS, the cluster, NATS and PostgreSQL in the cluster, the deployer."""
        self.chapter(1, "Start the cluster (a real node), NATS and PostgreSQL in it, the deployer")
        self.supervisor.prepare()
        self.say(f"[dim]run state in {escape(shown(self.run_dir))}[/]")
        platform = Platform(self.run_dir, self.supervisor, self.helm_timeout, self.cluster_run_dir)
        self._platform = platform
        began = time.monotonic()
        await platform.start_nats()
        self.ok(
            "NATS",
            f"{platform.nats_url}  [dim](CI's and the deployer's events only; users of "
            "platform/nats/local.conf)[/]",
            time.monotonic() - began,
        )
        await self.events.connect(platform.nats_url)
        began = time.monotonic()
        if platform.shared:
            described = await platform.attach_cluster()
        else:
            described = await platform.start_cluster()
        self.ok("cluster", escape(described), time.monotonic() - began)
        self._ci = CI(self.checkout, self.logs, platform.nats_url, platform.registry)
        began = time.monotonic()
        images = await platform.start_dependencies()
        tags = ", ".join(f"{n} {i.rpartition(':')[2]}" for n, i in images.items())
        names = platform.namespaces
        self.ok(
            "in-cluster",
            f"NATS (JetStream; the services' bus) and PostgreSQL as real pods in namespaces "
            f"{names.nats} and {names.postgres} [dim]({tags}; Secrets created once with random "
            "values)[/]",
            time.monotonic() - began,
        )
        began = time.monotonic()
        deployer = await platform.start_deployer()
        self.ok(
            "deployer",
            f"{deployer.url}  [dim]→ namespace {names.services}, helm timeout "
            f"{self.helm_timeout:g} s, values/<service>.yaml = values-local.yaml (+ the gateway "
            "on a NodePort)[/]",
            time.monotonic() - began,
        )

    # -- simulated CI, as shown

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

    async def release_everything(self) -> str:
        """Every service at 1.0.0 through CI's steps, the four lanes in parallel."""
        self.chapter(2, "CI releases every service at 1.0.0")
        began = time.monotonic()
        base = await self.ci.clone()
        sha = await self.ci.commit_versions(dict.fromkeys(SERVICES, "1.0.0"), "release 1.0.0")
        self.say(
            f"[dim]CI checkout {escape(shown(self.checkout))}: HEAD {base[:7]} + commit "
            f"{sha[:7]} (every service's version → 1.0.0)[/]"
        )
        self.say(f"[dim]$[/] [bold]export PIPELINE_REGISTRY={REGISTRY}[/]")
        changed = await self.changed(base)
        if sorted(changed) != sorted(SERVICES):
            raise DemoError(f"pipelines changed listed {changed}, expected {list(SERVICES)}")
        tag = await self.ci.tags(SERVICES)
        self.shell("pipelines tag <service>", f"{tag['order']}  [dim](each service)[/]")
        images = await self.build(tag)
        run_id = f"{RUN_ID_PREFIX}-release"
        ids = await asyncio.gather(*(self.ci.publish(s, run_id, images[s]) for s in SERVICES))
        self.shell(
            f"pipelines publish <service> --run-id {run_id} --image <the image pushed>",
            "4 deployment ids",
        )
        self.shell("pipelines wait <service> --deployment-id <id>", "[dim]as the events come:[/]")
        lanes = {s: Lane(s, tag[s], i) for s, i in zip(SERVICES, ids, strict=True)}
        with Live(
            lanes_table(lanes), console=self.console, refresh_per_second=8, transient=True
        ) as live:

            def updater(lane: Lane) -> Callable[[DeployEventData], None]:
                def update(event: DeployEventData) -> None:
                    lane.phase = event.phase.value
                    if event.progress is not None:
                        p = event.progress
                        lane.replicas = f"{p.updated}/{p.desired} updated, {p.ready} ready"
                    if event.revision is not None:
                        lane.revision = str(event.revision)
                    if event.phase.terminal:
                        lane.took = time.monotonic() - lane.started
                    live.update(lanes_table(lanes))

                return update

            tracked = self.events_tracks(
                {s: (lanes[s].deployment_id, updater(lanes[s])) for s in SERVICES}
            )
            waits = asyncio.gather(*(self.ci.wait(s, lanes[s].deployment_id) for s in SERVICES))
            outcomes, verdicts = await asyncio.gather(tracked, waits)
        failed = {s: o[-1] for s, o in outcomes.items() if o[-1].phase is not DeployPhase.SUCCEEDED}
        if failed:
            self.console.print(lanes_table(lanes))
            first, outcome = next(iter(failed.items()))
            raise DemoError(
                f"the first release did not succeed ({', '.join(failed)}: "
                f"{outcome.phase.value}). {first}: {outcome.reason}"
            )
        bad = [r for r in verdicts if r.code != 0]
        if bad:
            raise DemoError(f"pipelines wait failed: {bad[0].explain()}")
        sets = await self.platform.replica_sets()
        for service, lane in lanes.items():
            rs = serving(sets.get(service, ()))
            lane.replicas = f"{rs.name}  {rs.ready}/{rs.desired} ready" if rs else "-"
        self.console.print(lanes_table(lanes))
        self.steps["release"] = time.monotonic() - began
        self.ok(
            "released",
            "every service at 1.0.0; [dim]pipelines wait exited 0 four times[/]",
            time.monotonic() - began,
        )
        return sha

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

    async def place_order(self) -> None:
        """Register, get a token, order, see it paid: through the gateway pods."""
        self.chapter(3, "An order through the gateway pod")
        gateway = await self.platform.gateway_url()
        self.say(f"[dim]gateway Service: NodePort {escape(gateway)} → the gateway pods[/]")
        email = f"ada-{secrets.token_hex(3)}@example.com"
        password = secrets.token_urlsafe(18)
        async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
            await self.wait_for_node_port(http, gateway)
            response = await http.post(
                "/api/auth/register", json={"email": email, "password": password}
            )
            self.expect(response, 201, "registering a user")
            self.http_line("POST", "/api/auth/register", response.status_code, email)
            response = await http.post(
                "/api/auth/token",
                data={"grant_type": "password", "username": email, "password": password},
            )
            self.expect(response, 200, "getting a token")
            token = response.json()["access_token"]
            self.http_line("POST", "/api/auth/token", 200, "an access token (JWT)")
            auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)}
            body = {
                "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}],
                "amount_cents": 900,
                "currency": "EUR",
                "payment_token": "tok_visa",
            }
            began = time.monotonic()
            response = await http.post("/api/orders", json=body, headers=auth)
            self.expect(response, 201, "placing an order")
            order = response.json()
            self.http_line(
                "POST",
                "/api/orders",
                201,
                f"2 x tea, 9.00 EUR → order {short(order['id'])} {order['status']}",
            )
            while order["status"] == "pending" and time.monotonic() - began < 15:
                await asyncio.sleep(0.1)
                response = await http.get(f"/api/orders/{order['id']}", headers=auth)
                self.expect(response, 200, "reading the order")
                order = response.json()
            took = time.monotonic() - began
            if order["status"] != "paid":
                raise DemoError(
                    f"order {order['id']} ended {order['status']} "
                    f"({order.get('failure_reason')}), not paid; see `kubectl logs -n "
                    f"{self.namespace} deploy/order` and deploy/payment"
                )
            response = await http.get(f"/api/payments/{order['id']}", headers=auth)
            self.expect(response, 200, "reading the payment")
            payment = response.json()["status"]
        self.http_line(
            "GET",
            f"/api/orders/{short(order['id'])}…",
            200,
            f"[bold green]paid[/] (payment {payment})",
        )
        self.ok(
            "saga",
            f"order {short(order['id'])} is paid {took:.1f} s after it was placed "
            "[dim](a saga over NATS)[/]",
        )

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

    async def roll_order(self, base: str) -> tuple[str, dict[str, list[ReplicaSet]]]:
        """order alone at 1.1.0; returns the commit and the ReplicaSets after."""
        self.chapter(4, "CI for order only: 1.1.0")
        before = await self.platform.replica_sets()
        sha = await self.ci.commit_versions({"order": "1.1.0"}, "order: 1.1.0")
        self.say(f"[dim]commit {sha[:7]} changes services/order/pyproject.toml only[/]")
        changed = await self.changed(base)
        if changed != ["order"]:
            raise DemoError(f"pipelines changed listed {changed}, expected only order")
        tag = (await self.ci.tags(["order"]))["order"]
        self.shell("pipelines tag order", tag)
        self.good_order_image = (await self.build({"order": tag}))["order"]
        self.traffic = Traffic(await self.platform.gateway_url())
        await asyncio.to_thread(self.traffic.start)
        self.say(
            f"[dim]steady traffic from now on: {RATE:g} requests/s through the gateway (GET and "
            "POST /api/orders, platform/loadgen), every outcome counted[/]"
        )
        self.traffic.mark("order 1.1.0")
        run_id = f"{RUN_ID_PREFIX}-order-1.1.0"
        deployment_id = await self.ci.publish("order", run_id, self.good_order_image)
        self.shell(
            f"pipelines publish order --run-id {run_id} --image {self.good_order_image}",
            f"deployment {short(deployment_id)}",
        )
        began = time.monotonic()
        events, verdict = await self.follow("order", deployment_id, before)
        took = time.monotonic() - began
        outcome = events[-1]
        if outcome.phase is not DeployPhase.SUCCEEDED or verdict.code != 0:
            raise DemoError(
                f"order 1.1.0 ended {outcome.phase.value} ({outcome.reason}); pipelines wait "
                f"exited {verdict.code}; see logs/deployer.log"
            )
        self.ok("rolled", f"order {tag} in {took:.1f} s; [dim]pipelines wait exited 0[/]")
        after = await self.platform.replica_sets()
        self.console.print()
        self.console.print(Padding(before_after_table(before, after), (0, 0, 0, 1)))
        rolled = rolled_services(before, after)
        unexpected = [s for s, did in rolled.items() if did != (s == "order")]
        if unexpected:
            raise DemoError(
                "expected only order to get a new ReplicaSet, but these did not match: "
                + ", ".join(unexpected)
            )
        others = [s for s in SERVICES if s != "order"]
        self.console.print()
        self.say(
            f"[bold green]Only order rolled:[/] {', '.join(others[:-1])} and {others[-1]} "
            "kept their ReplicaSets (same uid, same revision)."
        )
        self.steps["order"] = took
        return sha, after

    async def follow(
        self, service: str, deployment_id: str, before: Mapping[str, Sequence[ReplicaSet]]
    ) -> tuple[list[DeployEventData], Result]:
        """Print the deployment's events as they come (the plan first), with `pipelines wait`
        running alongside, as a CI job would."""
        old_sets = {rs.name for rs in before.get(service, ())}
        began = time.monotonic()
        rolling = False
        latest = "waiting for the deployer"

        def show(event: DeployEventData) -> None:
            nonlocal rolling, latest
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
            elif event.progress is not None:
                detail = progress_text(event, old_sets)
            elif event.phase is DeployPhase.SUCCEEDED:
                detail = Text(f"helm revision {event.revision}")
            elif event.phase is DeployPhase.ROLLED_BACK and event.reason:
                # "the rollout failed and was rolled back ... (now revision N): <helm's error>"
                headline, _, rest = event.reason.partition("): ")
                detail = Text(headline + ")")
                detail.append("\n" + " ".join(rest.split()), style="dim")
            elif event.reason:
                headline, _, rest = event.reason.partition(": ")
                detail = Text(headline, style="red")
                detail.append("\n" + " ".join(rest.split()), style="dim")
            self.console.print(event_row(stamp, label, detail))
            if plan is not None:
                self.console.print(Padding(plan_table(plan), (0, 0, 0, 6)))
            latest = event.phase.value
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

    async def broken_image(self, sha: str, good: Mapping[str, Sequence[ReplicaSet]]) -> None:
        """A broken order image: failed, rolled back, the previous ReplicaSet still serving."""
        self.chapter(5, "A broken order image is rolled back")
        image = f"{REGISTRY}/order-service:1.2.0-{sha[:7]}"
        self.say("[dim]a build whose process exits at start (never Ready):[/]")
        began = time.monotonic()
        digest = await self.ci.push_broken(self.good_order_image, image)
        self.shell(
            f"buildah from {self.good_order_image}; buildah config --cmd '{BROKEN_COMMAND_JSON}'; "
            "buildah commit; buildah push",
            f"{digest[:19]}… [dim]({time.monotonic() - began:.1f} s)[/]",
        )
        self.say(f"IMAGE={escape(image)}")
        run_id = f"{RUN_ID_PREFIX}-order-1.2.0"
        if self.traffic:
            self.traffic.mark("broken image")
        deployment_id = await self.ci.publish("order", run_id, image)
        self.shell(
            f"pipelines publish order --image $IMAGE --run-id {run_id}",
            f"deployment {short(deployment_id)}",
        )
        began = time.monotonic()
        events, verdict = await self.follow("order", deployment_id, good)
        took = time.monotonic() - began
        phases = [e.phase for e in events]
        if phases[-1] is not DeployPhase.ROLLED_BACK:
            raise DemoError(
                "the broken image should have been rolled back, but its events were "
                + " -> ".join(p.value for p in phases)
            )
        if verdict.code != 3:
            raise DemoError(f"pipelines wait should exit 3 (failed), not: {verdict.explain()}")
        self.say(
            f"[dim]pipelines wait exited 3 (failed or rolled back): the CI job is red[/]"
            f"  [dim]({took:.1f} s)[/]"
        )
        now = await self.platform.replica_sets()
        previous, current = serving(good.get("order", ())), serving(now.get("order", ()))
        self.console.print()
        self.console.print(Padding(order_sets_table(now.get("order", []), previous), (0, 0, 0, 1)))
        if previous is None or current is None or current.uid != previous.uid:
            raise DemoError("after the rollback another ReplicaSet serves order than before")
        if current.ready < current.desired:
            raise DemoError(f"{current.name} has {current.ready}/{current.desired} ready")
        lowest = min((e.progress.ready for e in events if e.progress is not None), default=0)
        if lowest < current.desired:
            raise DemoError(f"order had only {lowest} ready pods during the broken rollout")
        self.console.print()
        self.say(
            f"[bold magenta]Rolled back:[/] {current.name} ({current.tag}) kept serving, "
            f"never fewer than {lowest} ready pods."
        )
        self.steps["broken"] = took

    # -- chapter 6

    async def memory_limit_lowered(self, good: Mapping[str, Sequence[ReplicaSet]]) -> None:
        """order's memory limit lowered below its working set: the plan warns, the kubelet
        OOM-kills the new pods, the deployer says so and helm's rollback restores the limit."""
        self.chapter(6, "A memory limit lowered below the working set")
        lowered = {"requests": {"memory": OOM_LIMIT}, "limits": {"memory": OOM_LIMIT}}
        run_id = f"{RUN_ID_PREFIX}-order-1.1.0-memory"
        if self.traffic:
            self.traffic.mark("memory limit")
        deployment_id = await self.ci.publish(
            "order", run_id, self.good_order_image, {"resources": lowered}
        )
        self.shell(
            f"pipelines publish order --image $IMAGE --run-id {run_id} "
            f"--value 'resources={json.dumps(lowered)}'",
            f"deployment {short(deployment_id)}",
        )
        began = time.monotonic()
        events, _ = await self.follow("order", deployment_id, good)
        took = time.monotonic() - began
        outcome = events[-1]
        killed = [p for p in outcome.pod_problems or [] if p.reason == "OOMKilled"]
        if outcome.phase is not DeployPhase.ROLLED_BACK or not killed:
            raise DemoError(
                f"the lowered memory limit should end rolled back with OOMKilled pods, but it "
                f"ended {outcome.phase.value}: {outcome.reason}"
            )
        result = await self.platform.kubectl(
            "get", "deployment", "order", "-n", self.namespace, "-o",
            "jsonpath={.spec.template.spec.containers[0].resources.limits.memory}",
        )  # fmt: skip
        limit = result.stdout.strip()
        if limit == OOM_LIMIT:
            raise DemoError(f"after the rollback order still has the {OOM_LIMIT} limit")
        self.console.print()
        self.say(
            f"[bold magenta]Caught:[/] the plan warned first; the kubelet OOM-killed container "
            f"{killed[0].container} of {len(killed)} new pod(s); the rollback restored the "
            f"{limit} limit  [dim]({took:.1f} s)[/]"
        )
        self.steps["memory"] = took

    # -- chapter 7

    async def traffic_verdict(self) -> None:
        """The requests sent through the gateway during chapters 4 to 6: none may have failed."""
        assert self.traffic is not None
        self.chapter(7, f"Traffic during the rollouts ({RATE:g} requests/s through the gateway)")
        report = await asyncio.to_thread(self.traffic.stop)
        self.traffic = None
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), header_style="bold")
        for column in ("during", "requests", "failed", "p50", "p99"):
            table.add_column(column, justify="left" if column == "during" else "right")
        labels = [label for label, _ in report.marks]
        ends = [*labels[1:], None]
        for label, end in zip(labels, ends, strict=True):
            window = (
                report.between(label, end)
                if end
                else report.window(report.mark(label), report.elapsed)
            )
            table.add_row(
                label, str(window.count), str(window.failed),
                f"{window.p50_ms or 0:.0f} ms", f"{window.p99_ms or 0:.0f} ms",
            )  # fmt: skip
        self.console.print(Padding(table, (0, 0, 0, 1)))
        if report.failed:
            raise DemoError(
                f"{len(report.failed)} of {len(report.results)} requests failed during the "
                "rollouts:\n" + "\n".join(r.line() for r in report.failed[:10])
            )
        self.console.print()
        self.say(
            f"[bold green]Zero downtime:[/] {len(report.results)} requests, none failed, while "
            "order rolled, a broken image and an OOM-killed limit were rolled back."
        )
        self.steps["requests"] = len(report.results)

    # -- chapter 8

    async def summary(self) -> None:
        """The deployer's view of every release, and the timings."""
        self.chapter(8, "Summary")
        assert self.platform.deployer is not None
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(
                f"{self.platform.deployer.url}/api/services",
                headers={"Authorization": f"Bearer {self.platform.api_token}"},
            )
        if response.status_code != 200:
            raise DemoError(f"GET /api/services answered {response.status_code}: {response.text}")
        table = Table(
            title=f" Releases in {self.namespace} (the deployer's GET /api/services)",
            title_justify="left",
            title_style="bold",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1),
        )
        for column in ("service", "release", "helm revision", "image tag", "last deployment"):
            table.add_column(column)
        # The deployer can release the dependencies' charts too; the story is the services.
        for view in (v for v in response.json() if v["service"] in SERVICES):
            last = (view.get("last") or {}).get("phase") or "-"
            table.add_row(
                view["service"],
                view.get("release_status") or "-",
                str(view.get("revision") or "-"),
                (view.get("image") or "-").rpartition(":")[2],
                last,
            )
        self.console.print(Padding(table, (0, 0, 0, 1)))
        steps = self.steps
        self.console.print()
        self.say(f"[green]✓[/] every service released at 1.0.0 in {steps['release']:.1f} s")
        self.say("[green]✓[/] an order paid through the gateway")
        self.say(
            f"[green]✓[/] order 1.1.0 rolled out in {steps['order']:.1f} s; "
            "the other services untouched"
        )
        self.say(
            f"[green]✓[/] a broken order image failed and was rolled back in "
            f"{steps['broken']:.1f} s; 1.1.0 kept serving"
        )
        self.say(
            f"[green]✓[/] a memory limit below the working set was OOM-killed and rolled back in "
            f"{steps['memory']:.1f} s"
        )
        self.say(f"[green]✓[/] {steps['requests']:.0f} requests during the rollouts, none failed")

    async def play(self) -> None:
        """The whole story."""
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await self.start_platform()
            base = await self.release_everything()
            await self.place_order()
            sha, after = await self.roll_order(base)
            await self.broken_image(sha, after)
            await self.memory_limit_lowered(after)
            await self.traffic_verdict()
            await self.summary()
        finally:
            if self.traffic is not None:
                await asyncio.to_thread(self.traffic.stop)
            await self.events.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Play the demo; exit 0 when every step worked, 1 (with the reason) otherwise."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / ".run" / "demo",
        help="where its state and logs go (default: .run/demo)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain output")
    parser.add_argument(
        "--helm-timeout",
        type=float,
        default=45.0,
        help="seconds helm waits for a rollout before rolling back (default 45)",
    )
    parser.add_argument(
        "--cluster-run-dir",
        type=Path,
        help="run on the cluster that is up in DIR (DIR/kubeconfig, DIR/registry; it must have "
        "its real node) instead of starting one: the demo's releases go to namespaces "
        "flotilla-demo, flotilla-demo-nats and flotilla-demo-postgres there, and only "
        "flotilla-demo is deleted at the end; that cluster is not stopped",
    )
    args = parser.parse_args(argv)
    # Ctrl-C must stop the demo (and so everything it started) even when the shell that started
    # it ignores SIGINT, as shells do for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = make_console(args.no_color or bool(os.environ.get("NO_COLOR")))
    run_dir = args.run_dir.resolve()
    cluster_run_dir = args.cluster_run_dir.resolve() if args.cluster_run_dir else None
    demo = Demo(console, run_dir, args.helm_timeout, cluster_run_dir)
    console.print(
        "[bold]Flotilla demo:[/] independent rollouts of real pods, end to end on a local cluster"
    )
    code = 0
    try:
        asyncio.run(demo.play())
    except DemoError as exc:
        console.print(f"\n[bold red]✗ the demo failed:[/] {escape(str(exc))}")
        code = 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("\n[yellow]interrupted[/]")
        code = 130
    except Exception as exc:
        console.print(f"\n[bold red]✗ the demo failed unexpectedly:[/] {escape(repr(exc))}")
        code = 1
    finally:
        # A second Ctrl-C must not leave processes behind: finish the teardown first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if code != 0:
            demo.supervisor.keep_cluster_logs()
        began = time.monotonic()
        with console.status("[dim]stopping everything…[/]"):
            stopped = demo.supervisor.stop_all()
        if stopped:
            console.print(
                f"\n  [dim]stopped {', '.join(stopped)} ({time.monotonic() - began:.1f} s)[/]"
            )
        if demo.supervisor.owns_run_dir:
            console.print(f"  [dim]logs kept in {escape(shown(demo.logs))}[/]")
    if code == 0:
        console.print(f"\n[bold green]demo finished in {time.monotonic() - demo.began:.0f} s[/]")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
