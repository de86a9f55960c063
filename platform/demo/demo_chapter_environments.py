"""Chapter 9 of the demo: environments. The deployer now serves dev, staging and prod; order's
next release rolls in dev under traffic, flows to staging by itself once it has soaked and
Prometheus found dev's pods healthy, is held at prod by a freeze that says until when, and is
approved into prod as an exception with a reason. The closing tables show each environment's
release and the DORA figures the deployer computes from its ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from demo_common import REGISTRY, DemoError
from demo_environments import (
    FREEZE_ZONE,
    STAGING_SOAK_SECONDS,
    environments_config,
    prepare_environments,
    serve_environments,
)
from demo_render import short, titled_table
from demo_replicasets import ReplicaSet
from demo_stage import RUN_ID_PREFIX, Demo
from demo_traffic import RATE, Traffic
from rich.markup import escape
from rich.padding import Padding

from deploy_contract.events import DeployPhase

Json = dict[str, Any]
APPROVAL_REASON = "a demo exception: the change is verified in staging"


async def api(demo: Demo, method: str, path: str, body: Json | None = None) -> Any:
    """One call to the deployer's API with the admin token; its JSON (DemoError otherwise)."""
    deployer = demo.platform.deployer
    assert deployer is not None
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.request(
            method,
            f"{deployer.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {demo.platform.api_token}"},
        )
    if response.status_code >= 300:
        raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
    return response.json()


def blocking(promotion: Json) -> Json | None:
    """The first gate that has not passed."""
    return next((g for g in promotion["gates"] if g["verdict"] != "passed"), None)


async def watch_promotion(
    demo: Demo, promotion_id: str, done: Callable[[Json], bool], timeout: float = 180
) -> Json:
    """Print each change of the promotion (its state, the gate it waits at and why) until
    ``done``; DemoError when it ends otherwise or takes too long."""
    began = time.monotonic()
    shown: tuple[str, str] | None = None
    while time.monotonic() - began < timeout:
        try:
            promotion: Json = await api(demo, "GET", f"/api/promotions/{promotion_id}")
        except DemoError:
            await asyncio.sleep(0.5)  # not offered yet
            continue
        gate = blocking(promotion)
        seen = (promotion["state"], gate["reason"] if gate else "")
        if seen != shown:
            shown = seen
            where = f"at the [bold]{gate['gate']}[/] gate: {escape(gate['reason'])}" if gate else ""
            demo.say(
                f"[dim]+{time.monotonic() - began:.1f}s[/] {promotion['environment']}: "
                f"[bold]{promotion['state']}[/] {where}"
            )
        if done(promotion):
            return promotion
        if promotion["state"] in ("promoted", "failed", "superseded", "cancelled"):
            raise DemoError(
                f"the promotion {promotion_id} ended {promotion['state']}: {promotion['reason']}"
            )
        await asyncio.sleep(0.5)
    raise DemoError(f"the promotion {promotion_id} did not get there in {timeout:.0f} s: {shown}")


def evidence_line(promotion: Json) -> str:
    """Each gate in a few words, as its evidence says."""
    parts = []
    for gate in promotion["gates"]:
        reason = gate["reason"]
        if gate["gate"] == "analysis" and "healthy" in reason:
            reason = reason.split(": ", 1)[-1]
        parts.append(f"{gate['gate']} ✓ [dim]{escape(reason)}[/]")
    return "; ".join(parts)


async def environments_chapter(
    demo: Demo, sha: str, before: Mapping[str, Sequence[ReplicaSet]]
) -> None:
    """dev -> staging (soak, analysis) -> prod (freeze, approval) for order's next release."""
    demo.chapter(9, "Environments: order's next release from dev through staging to prod")
    platform = demo.platform
    environments = environments_config(platform, datetime.now(UTC))
    began = time.monotonic()
    await prepare_environments(platform, environments)
    await serve_environments(platform, environments)
    names = environments.namespaces
    demo.ok(
        "deployer",
        f"serves dev ({names['dev']}), staging ({names['staging']}) and prod ({names['prod']}); "
        "staging and prod run order",
        time.monotonic() - began,
    )
    demo.say(
        f"[dim]staging takes dev's releases after {STAGING_SOAK_SECONDS} s of soak and a "
        "metric analysis of dev's pods; prod takes staging's after a soak, outside its freeze "
        "calendar, with a person's approval[/]"
    )
    image = f"{REGISTRY}/order-service:1.4.0-{sha[:7]}"
    await demo.ci.push_faulty(demo.good_order_image, image, {})
    demo.traffic = Traffic(await platform.gateway_url())
    await asyncio.to_thread(demo.traffic.start)
    demo.say(f"[dim]traffic again: {RATE:g} requests/s through the gateway (dev)[/]")
    run_id = f"{RUN_ID_PREFIX}-order-1.4.0"
    deployment_id = await demo.ci.publish("order", run_id, image)
    demo.shell(
        f"pipelines publish order --run-id {run_id} --image {image}",
        f"deployment {short(deployment_id)} (enters dev)",
    )
    flowing = time.monotonic()
    events, verdict = await demo.follow("order", deployment_id, before)
    outcome = events[-1]
    if outcome.phase is not DeployPhase.SUCCEEDED or outcome.release_id is None:
        raise DemoError(f"order 1.4.0 should have succeeded in dev: {verdict.explain()}")
    release = outcome.release_id
    demo.say(f"release [bold]{release}[/]: built once, the same image in every environment")

    staged = await watch_promotion(demo, f"{release}.staging", lambda p: p["state"] == "promoted")
    demo.say(f"[green]→ staging[/] {evidence_line(staged)}")
    frozen = await watch_promotion(
        demo,
        f"{release}.prod",
        lambda p: p["state"] == "waiting" and (blocking(p) or {}).get("gate") == "freeze",
    )
    freeze = blocking(frozen) or {}
    until = freeze.get("evidence", {}).get("until", "")
    demo.say(f"[yellow]Held at prod:[/] {escape(freeze.get('reason', '').split(';')[0])}")
    demo.shell(
        f"deployer promotions approve {frozen['id']} --override-freeze "
        f"--reason '{APPROVAL_REASON}'",
        "approved",
    )
    await api(
        demo,
        "POST",
        f"/api/promotions/{frozen['id']}/approve",
        {"reason": APPROVAL_REASON, "overrideFreeze": True},
    )
    shipped = await watch_promotion(demo, f"{release}.prod", lambda p: p["state"] == "promoted")
    took = time.monotonic() - flowing
    report = await asyncio.to_thread(demo.traffic.stop)
    demo.traffic = None
    if report.failed:
        raise DemoError(f"{report.failed} requests failed while order moved through environments")
    demo.say(
        f"[bold magenta]Promoted to prod:[/] through the freeze (until {escape(until)}, "
        f"{FREEZE_ZONE}) on an approval with a reason; dev to prod in {took:.1f} s, "
        f"{len(report.results)} requests in dev meanwhile, none failed"
    )
    await closing_tables(demo, shipped)
    demo.steps["environments"] = took


async def closing_tables(demo: Demo, shipped: Json) -> None:
    """Each environment's release of order, and the DORA figures per environment."""
    board = await api(demo, "GET", "/api/environments/board")
    table = titled_table(" order per environment (the deployer's GET /api/environments/board)")
    for column in ("environment", "image tag", "release", "last deployment"):
        table.add_column(column)
    [row] = [r for r in board if r["service"] == "order"]
    for cell in row["environments"]:
        table.add_row(
            cell["environment"],
            (cell.get("image") or "-").rpartition(":")[2],
            cell.get("release_id") or "-",
            cell.get("phase") or "-",
        )
    demo.console.print(Padding(table, (0, 0, 0, 1)))
    figures = await api(demo, "GET", "/api/dora")
    dora = titled_table(" DORA per environment, from the deployer's ledger (GET /api/dora)")
    for column in ("service", "environment", "deploys", "lead time", "change failure rate",
                   "time to restore"):  # fmt: skip
        dora.add_column(column)
    for f in figures:
        rate = f.get("change_failure_rate")
        restore = f.get("time_to_restore_median_seconds")
        lead = f.get("lead_time_median_seconds")
        dora.add_row(
            f["service"],
            f["environment"],
            str(f["successful_deployments"]),
            f"{lead:.0f} s" if lead is not None else "-",
            f"{rate * 100:.0f}% ({f['failed_changes']}/{f['changes']})"
            if rate is not None
            else "-",
            f"{restore:.0f} s" if restore is not None else "-",
        )
    demo.console.print(Padding(dora, (0, 0, 0, 1)))
    if shipped["release"]["image"] != next(
        (c.get("image") for c in row["environments"] if c["environment"] == "prod"), None
    ):
        raise DemoError("prod does not serve the release that was promoted")
