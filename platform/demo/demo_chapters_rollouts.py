"""Chapters 1 to 4 of the demo: the platform starts, every service is released, an order is paid
through the gateway, and order alone rolls to 1.1.0."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import httpx
from demo_ci import CI
from demo_common import REGISTRY, SERVICES, DemoError, shown
from demo_platform import Platform
from demo_render import (
    Lane,
    before_after_table,
    lanes_table,
    short,
)
from demo_replicasets import ReplicaSet, rolled_services, serving
from demo_stage import RUN_ID_PREFIX, Demo
from demo_traffic import RATE, Traffic
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding

from deploy_contract.events import DeployEventData, DeployPhase


async def start_platform(demo: Demo) -> None:
    """CI's NATS, the cluster, NATS and PostgreSQL in the cluster, the deployer."""
    demo.chapter(1, "Start the cluster (a real node), NATS and PostgreSQL in it, the deployer")
    demo.supervisor.prepare()
    demo.say(f"[dim]run state in {escape(shown(demo.run_dir))}[/]")
    platform = Platform(demo.run_dir, demo.supervisor, demo.helm_timeout, demo.cluster_run_dir)
    demo._platform = platform
    began = time.monotonic()
    await platform.start_nats()
    demo.ok(
        "NATS",
        f"{platform.nats_url}  [dim](CI's and the deployer's events only; users of "
        "platform/nats/local.conf)[/]",
        time.monotonic() - began,
    )
    await demo.events.connect(platform.nats_url)
    began = time.monotonic()
    if platform.shared:
        described = await platform.attach_cluster()
    else:
        described = await platform.start_cluster()
    demo.ok("cluster", escape(described), time.monotonic() - began)
    demo._ci = CI(demo.checkout, demo.logs, platform.nats_url, platform.registry)
    began = time.monotonic()
    images = await platform.start_dependencies()
    tags = ", ".join(f"{n} {i.rpartition(':')[2]}" for n, i in images.items())
    names = platform.namespaces
    demo.ok(
        "in-cluster",
        f"NATS (JetStream; the services' bus) and PostgreSQL as real pods in namespaces "
        f"{names.nats} and {names.postgres} [dim]({tags}; Secrets created once with random "
        "values)[/]",
        time.monotonic() - began,
    )
    began = time.monotonic()
    prometheus = await platform.start_prometheus()
    demo.ok(
        "Prometheus",
        f"{prometheus.url}  [dim](Debian's package; scrapes the pods of {names.services} every "
        "second, for the canary's analysis)[/]",
        time.monotonic() - began,
    )
    began = time.monotonic()
    deployer = await platform.start_deployer()
    demo.ok(
        "deployer",
        f"{deployer.url}  [dim]→ namespace {names.services}, helm timeout "
        f"{demo.helm_timeout:g} s, values/<service>.yaml = values-local.yaml (+ the gateway "
        "on a NodePort)[/]",
        time.monotonic() - began,
    )


async def release_everything(demo: Demo) -> str:
    """Every service at 1.0.0 through CI's steps, the four lanes in parallel."""
    demo.chapter(2, "CI releases every service at 1.0.0")
    began = time.monotonic()
    base = await demo.ci.clone()
    sha = await demo.ci.commit_versions(dict.fromkeys(SERVICES, "1.0.0"), "release 1.0.0")
    demo.say(
        f"[dim]CI checkout {escape(shown(demo.checkout))}: HEAD {base[:7]} + commit "
        f"{sha[:7]} (every service's version → 1.0.0)[/]"
    )
    demo.say(f"[dim]$[/] [bold]export PIPELINE_REGISTRY={REGISTRY}[/]")
    changed = await demo.changed(base)
    if sorted(changed) != sorted(SERVICES):
        raise DemoError(f"pipelines changed listed {changed}, expected {list(SERVICES)}")
    tag = await demo.ci.tags(SERVICES)
    demo.shell("pipelines tag <service>", f"{tag['order']}  [dim](each service)[/]")
    images = await demo.build(tag)
    run_id = f"{RUN_ID_PREFIX}-release"
    ids = await asyncio.gather(*(demo.ci.publish(s, run_id, images[s]) for s in SERVICES))
    demo.shell(
        f"pipelines publish <service> --run-id {run_id} --image <the image pushed>",
        "4 deployment ids",
    )
    demo.shell("pipelines wait <service> --deployment-id <id>", "[dim]as the events come:[/]")
    lanes = {s: Lane(s, tag[s], i) for s, i in zip(SERVICES, ids, strict=True)}
    with Live(
        lanes_table(lanes), console=demo.console, refresh_per_second=8, transient=True
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

        tracked = demo.events_tracks(
            {s: (lanes[s].deployment_id, updater(lanes[s])) for s in SERVICES}
        )
        waits = asyncio.gather(*(demo.ci.wait(s, lanes[s].deployment_id) for s in SERVICES))
        outcomes, verdicts = await asyncio.gather(tracked, waits)
    failed = {s: o[-1] for s, o in outcomes.items() if o[-1].phase is not DeployPhase.SUCCEEDED}
    if failed:
        demo.console.print(lanes_table(lanes))
        first, outcome = next(iter(failed.items()))
        raise DemoError(
            f"the first release did not succeed ({', '.join(failed)}: "
            f"{outcome.phase.value}). {first}: {outcome.reason}"
        )
    bad = [r for r in verdicts if r.code != 0]
    if bad:
        raise DemoError(f"pipelines wait failed: {bad[0].explain()}")
    sets = await demo.platform.replica_sets()
    for service, lane in lanes.items():
        rs = serving(sets.get(service, ()))
        lane.replicas = f"{rs.name}  {rs.ready}/{rs.desired} ready" if rs else "-"
    demo.console.print(lanes_table(lanes))
    demo.steps["release"] = time.monotonic() - began
    demo.ok(
        "released",
        "every service at 1.0.0; [dim]pipelines wait exited 0 four times[/]",
        time.monotonic() - began,
    )
    return sha


async def place_order(demo: Demo) -> None:
    """Register, get a token, order, see it paid: through the gateway pods."""
    demo.chapter(3, "An order through the gateway pod")
    gateway = await demo.platform.gateway_url()
    demo.say(f"[dim]gateway Service: NodePort {escape(gateway)} → the gateway pods[/]")
    email = f"ada-{secrets.token_hex(3)}@example.com"
    password = secrets.token_urlsafe(18)
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
        await demo.wait_for_node_port(http, gateway)
        response = await http.post(
            "/api/auth/register", json={"email": email, "password": password}
        )
        demo.expect(response, 201, "registering a user")
        demo.http_line("POST", "/api/auth/register", response.status_code, email)
        response = await http.post(
            "/api/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        demo.expect(response, 200, "getting a token")
        token = response.json()["access_token"]
        demo.http_line("POST", "/api/auth/token", 200, "an access token (JWT)")
        auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)}
        body = {
            "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}],
            "amount_cents": 900,
            "currency": "EUR",
            "payment_token": "tok_visa",
        }
        began = time.monotonic()
        response = await http.post("/api/orders", json=body, headers=auth)
        demo.expect(response, 201, "placing an order")
        order = response.json()
        demo.http_line(
            "POST",
            "/api/orders",
            201,
            f"2 x tea, 9.00 EUR → order {short(order['id'])} {order['status']}",
        )
        while order["status"] == "pending" and time.monotonic() - began < 15:
            await asyncio.sleep(0.1)
            response = await http.get(f"/api/orders/{order['id']}", headers=auth)
            demo.expect(response, 200, "reading the order")
            order = response.json()
        took = time.monotonic() - began
        if order["status"] != "paid":
            raise DemoError(
                f"order {order['id']} ended {order['status']} "
                f"({order.get('failure_reason')}), not paid; see `kubectl logs -n "
                f"{demo.namespace} deploy/order` and deploy/payment"
            )
        response = await http.get(f"/api/payments/{order['id']}", headers=auth)
        demo.expect(response, 200, "reading the payment")
        payment = response.json()["status"]
    demo.http_line(
        "GET",
        f"/api/orders/{short(order['id'])}…",
        200,
        f"[bold green]paid[/] (payment {payment})",
    )
    demo.ok(
        "saga",
        f"order {short(order['id'])} is paid {took:.1f} s after it was placed "
        "[dim](a saga over NATS)[/]",
    )


async def roll_order(demo: Demo, base: str) -> tuple[str, dict[str, list[ReplicaSet]]]:
    """order alone at 1.1.0; returns the commit and the ReplicaSets after."""
    demo.chapter(4, "CI for order only: 1.1.0")
    before = await demo.platform.replica_sets()
    sha = await demo.ci.commit_versions({"order": "1.1.0"}, "order: 1.1.0")
    demo.say(f"[dim]commit {sha[:7]} changes services/order/pyproject.toml only[/]")
    changed = await demo.changed(base)
    if changed != ["order"]:
        raise DemoError(f"pipelines changed listed {changed}, expected only order")
    tag = (await demo.ci.tags(["order"]))["order"]
    demo.shell("pipelines tag order", tag)
    demo.good_order_image = (await demo.build({"order": tag}))["order"]
    demo.traffic = Traffic(await demo.platform.gateway_url())
    await asyncio.to_thread(demo.traffic.start)
    demo.say(
        f"[dim]steady traffic from now on: {RATE:g} requests/s through the gateway (GET and "
        "POST /api/orders, platform/loadgen), every outcome counted[/]"
    )
    demo.traffic.mark("order 1.1.0")
    run_id = f"{RUN_ID_PREFIX}-order-1.1.0"
    deployment_id = await demo.ci.publish("order", run_id, demo.good_order_image)
    demo.shell(
        f"pipelines publish order --run-id {run_id} --image {demo.good_order_image}",
        f"deployment {short(deployment_id)}",
    )
    began = time.monotonic()
    events, verdict = await demo.follow("order", deployment_id, before)
    took = time.monotonic() - began
    outcome = events[-1]
    if outcome.phase is not DeployPhase.SUCCEEDED or verdict.code != 0:
        raise DemoError(
            f"order 1.1.0 ended {outcome.phase.value} ({outcome.reason}); pipelines wait "
            f"exited {verdict.code}; see logs/deployer.log"
        )
    demo.ok("rolled", f"order {tag} in {took:.1f} s; [dim]pipelines wait exited 0[/]")
    after = await demo.platform.replica_sets()
    demo.console.print()
    demo.console.print(Padding(before_after_table(before, after), (0, 0, 0, 1)))
    rolled = rolled_services(before, after)
    unexpected = [s for s, did in rolled.items() if did != (s == "order")]
    if unexpected:
        raise DemoError(
            "expected only order to get a new ReplicaSet, but these did not match: "
            + ", ".join(unexpected)
        )
    others = [s for s in SERVICES if s != "order"]
    demo.console.print()
    demo.say(
        f"[bold green]Only order rolled:[/] {', '.join(others[:-1])} and {others[-1]} "
        "kept their ReplicaSets (same uid, same revision)."
    )
    demo.steps["order"] = took
    return sha, after
