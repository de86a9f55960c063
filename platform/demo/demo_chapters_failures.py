"""Chapters 5 to 7 and 9 of the demo: a broken image and a memory limit that is too low are
rolled back while traffic flows, the traffic verdict, and the summary (8 is the canary's)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence

import httpx
from demo_common import REGISTRY, SERVICES, DemoError
from demo_render import (
    order_sets_table,
    short,
    titled_table,
)
from demo_replicasets import ReplicaSet, serving
from demo_stage import BROKEN_COMMAND_JSON, OOM_LIMIT, RUN_ID_PREFIX, Demo
from demo_traffic import RATE
from rich import box
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from deploy_contract.events import DeployPhase


async def broken_image(demo: Demo, sha: str, good: Mapping[str, Sequence[ReplicaSet]]) -> None:
    """A broken order image: failed, rolled back, the previous ReplicaSet still serving."""
    demo.chapter(5, "A broken order image is rolled back")
    image = f"{REGISTRY}/order-service:1.2.0-{sha[:7]}"
    demo.say("[dim]a build whose process exits at start (never Ready):[/]")
    began = time.monotonic()
    digest = await demo.ci.push_broken(demo.good_order_image, image)
    demo.shell(
        f"buildah from {demo.good_order_image}; buildah config --cmd '{BROKEN_COMMAND_JSON}'; "
        "buildah commit; buildah push",
        f"{digest[:19]}… [dim]({time.monotonic() - began:.1f} s)[/]",
    )
    demo.say(f"IMAGE={escape(image)}")
    run_id = f"{RUN_ID_PREFIX}-order-1.2.0"
    if demo.traffic:
        demo.traffic.mark("broken image")
    deployment_id = await demo.ci.publish("order", run_id, image)
    demo.shell(
        f"pipelines publish order --image $IMAGE --run-id {run_id}",
        f"deployment {short(deployment_id)}",
    )
    began = time.monotonic()
    events, verdict = await demo.follow("order", deployment_id, good)
    took = time.monotonic() - began
    phases = [e.phase for e in events]
    if phases[-1] is not DeployPhase.ROLLED_BACK:
        raise DemoError(
            "the broken image should have been rolled back, but its events were "
            + " -> ".join(p.value for p in phases)
        )
    if verdict.code != 3:
        raise DemoError(f"pipelines wait should exit 3 (failed), not: {verdict.explain()}")
    demo.say(
        f"[dim]pipelines wait exited 3 (failed or rolled back): the CI job is red[/]"
        f"  [dim]({took:.1f} s)[/]"
    )
    now = await demo.platform.replica_sets()
    previous, current = serving(good.get("order", ())), serving(now.get("order", ()))
    demo.console.print()
    demo.console.print(Padding(order_sets_table(now.get("order", []), previous), (0, 0, 0, 1)))
    if previous is None or current is None or current.uid != previous.uid:
        raise DemoError("after the rollback another ReplicaSet serves order than before")
    if current.ready < current.desired:
        raise DemoError(f"{current.name} has {current.ready}/{current.desired} ready")
    lowest = min((e.progress.ready for e in events if e.progress is not None), default=0)
    if lowest < current.desired:
        raise DemoError(f"order had only {lowest} ready pods during the broken rollout")
    demo.console.print()
    demo.say(
        f"[bold magenta]Rolled back:[/] {current.name} ({current.tag}) kept serving, "
        f"never fewer than {lowest} ready pods."
    )
    demo.steps["broken"] = took


async def memory_limit_lowered(demo: Demo, good: Mapping[str, Sequence[ReplicaSet]]) -> None:
    """order's memory limit lowered below its working set: the plan warns, the kubelet
    OOM-kills the new pods, the deployer says so and helm's rollback restores the limit."""
    demo.chapter(6, "A memory limit lowered below the working set")
    lowered = {"requests": {"memory": OOM_LIMIT}, "limits": {"memory": OOM_LIMIT}}
    run_id = f"{RUN_ID_PREFIX}-order-1.1.0-memory"
    if demo.traffic:
        demo.traffic.mark("memory limit")
    deployment_id = await demo.ci.publish(
        "order", run_id, demo.good_order_image, {"resources": lowered}
    )
    demo.shell(
        f"pipelines publish order --image $IMAGE --run-id {run_id} "
        f"--value 'resources={json.dumps(lowered)}'",
        f"deployment {short(deployment_id)}",
    )
    began = time.monotonic()
    events, _ = await demo.follow("order", deployment_id, good)
    took = time.monotonic() - began
    outcome = events[-1]
    killed = [p for p in outcome.pod_problems or [] if p.reason == "OOMKilled"]
    if outcome.phase is not DeployPhase.ROLLED_BACK or not killed:
        raise DemoError(
            f"the lowered memory limit should end rolled back with OOMKilled pods, but it "
            f"ended {outcome.phase.value}: {outcome.reason}"
        )
    result = await demo.platform.kubectl(
        "get", "deployment", "order", "-n", demo.namespace, "-o",
        "jsonpath={.spec.template.spec.containers[0].resources.limits.memory}",
    )  # fmt: skip
    limit = result.stdout.strip()
    if limit == OOM_LIMIT:
        raise DemoError(f"after the rollback order still has the {OOM_LIMIT} limit")
    demo.console.print()
    demo.say(
        f"[bold magenta]Caught:[/] the plan warned first; the kubelet OOM-killed container "
        f"{killed[0].container} of {len(killed)} new pod(s); the rollback restored the "
        f"{limit} limit  [dim]({took:.1f} s)[/]"
    )
    demo.steps["memory"] = took


async def traffic_verdict(demo: Demo) -> None:
    """The requests sent through the gateway during chapters 4 to 6: none may have failed."""
    assert demo.traffic is not None
    demo.chapter(7, f"Traffic during the rollouts ({RATE:g} requests/s through the gateway)")
    report = await asyncio.to_thread(demo.traffic.stop)
    demo.traffic = None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), header_style="bold")
    for column in ("during", "requests", "failed", "p50", "p99"):
        table.add_column(column, justify="left" if column == "during" else "right")
    labels = [label for label, _ in report.marks]
    ends = [*labels[1:], None]
    for label, end in zip(labels, ends, strict=True):
        window = (
            report.between(label, end) if end else report.window(report.mark(label), report.elapsed)
        )
        table.add_row(
            label, str(window.count), str(window.failed),
            f"{window.p50_ms or 0:.0f} ms", f"{window.p99_ms or 0:.0f} ms",
        )  # fmt: skip
    demo.console.print(Padding(table, (0, 0, 0, 1)))
    if report.failed:
        raise DemoError(
            f"{len(report.failed)} of {len(report.results)} requests failed during the "
            "rollouts:\n" + "\n".join(r.line() for r in report.failed[:10])
        )
    demo.console.print()
    demo.say(
        f"[bold green]Zero downtime:[/] {len(report.results)} requests, none failed, while "
        "order rolled, a broken image and an OOM-killed limit were rolled back."
    )
    demo.steps["requests"] = len(report.results)


async def summary(demo: Demo) -> None:
    """The deployer's view of every release, and the timings."""
    demo.chapter(10, "Summary")
    assert demo.platform.deployer is not None
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{demo.platform.deployer.url}/api/services",
            headers={"Authorization": f"Bearer {demo.platform.api_token}"},
        )
    if response.status_code != 200:
        raise DemoError(f"GET /api/services answered {response.status_code}: {response.text}")
    table = titled_table(f" Releases in dev, {demo.namespace} (the deployer's GET /api/services)")
    for column in ("service", "release", "helm revision", "image tag", "last deployment"):
        table.add_column(column)
    # The deployer can release the dependencies' charts too; the story is the services.
    for view in (
        v for v in response.json() if v["service"] in SERVICES and v.get("environment") == "dev"
    ):
        last = (view.get("last") or {}).get("phase") or "-"
        table.add_row(
            view["service"],
            view.get("release_status") or "-",
            str(view.get("revision") or "-"),
            (view.get("image") or "-").rpartition(":")[2],
            last,
        )
    demo.console.print(Padding(table, (0, 0, 0, 1)))
    steps = demo.steps
    demo.console.print()
    demo.say(f"[green]✓[/] every service released at 1.0.0 in {steps['release']:.1f} s")
    demo.say("[green]✓[/] an order paid through the gateway")
    demo.say(
        f"[green]✓[/] order 1.1.0 rolled out in {steps['order']:.1f} s; "
        "the other services untouched"
    )
    demo.say(
        f"[green]✓[/] a broken order image failed and was rolled back in "
        f"{steps['broken']:.1f} s; 1.1.0 kept serving"
    )
    demo.say(
        f"[green]✓[/] a memory limit below the working set was OOM-killed and rolled back in "
        f"{steps['memory']:.1f} s"
    )
    demo.say(f"[green]✓[/] {steps['requests']:.0f} requests during the rollouts, none failed")
    demo.say(
        f"[green]✓[/] a canary failing a fifth of its requests was aborted at its first "
        f"analysis, {steps['canary']:.1f} s after it was published"
    )
    demo.say(
        f"[green]✓[/] order 1.4.0 went dev → staging (soak and analysis) → prod (through a "
        f"freeze, approved with a reason) in {steps['environments']:.1f} s, built once"
    )
