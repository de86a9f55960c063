"""Chapter 8 of the demo: an order image that answers 500 to a fifth of its requests goes out as
a canary beside the stable pods, under traffic; Prometheus measures it at the first analysis and
the deployer aborts it, the stable pods serving everything again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence

from demo_common import REGISTRY, DemoError
from demo_render import short
from demo_replicasets import ReplicaSet
from demo_stage import RUN_ID_PREFIX, Demo
from demo_traffic import RATE, Traffic
from rich.markup import escape

from deploy_contract.events import CanaryState, DeployPhase

FAULT_ENV = {"SERVICE_FAULT_ERROR_RATIO": "0.2"}
INTERVAL_SECONDS = 10
FAILURE_LIMIT = 1
# One step: half of order's two pods on the canary, then one analysis of one measurement.
CANARY_STRATEGY = {
    "type": "canary",
    "canary": {
        "steps": [{"setWeight": 50}, {"analysis": {}}],
        "analysis": {
            "intervalSeconds": INTERVAL_SECONDS,
            "count": 1,
            "failureLimit": FAILURE_LIMIT,
            "successRate": 0.99,
        },
    },
}


async def bad_canary(demo: Demo, sha: str, before: Mapping[str, Sequence[ReplicaSet]]) -> None:
    """The faulty image as a canary: aborted at its first analysis, with the numbers."""
    demo.chapter(8, "A canary of an order image that fails a fifth of its requests")
    image = f"{REGISTRY}/order-service:1.3.0-{sha[:7]}"
    began = time.monotonic()
    digest = await demo.ci.push_faulty(demo.good_order_image, image, FAULT_ENV)
    env = " ".join(f"{name}={value}" for name, value in FAULT_ENV.items())
    demo.shell(
        f"buildah from {demo.good_order_image}; buildah config --env {env}; buildah commit; "
        "buildah push",
        f"{digest[:19]}… [dim]({time.monotonic() - began:.1f} s)[/]",
    )
    demo.say(f"IMAGE={escape(image)}")
    demo.traffic = Traffic(await demo.platform.gateway_url())
    await asyncio.to_thread(demo.traffic.start)
    demo.say(f"[dim]traffic again: {RATE:g} requests/s through the gateway[/]")
    demo.traffic.mark("canary")
    run_id = f"{RUN_ID_PREFIX}-order-1.3.0-canary"
    deployment_id = await demo.ci.publish("order", run_id, image, {"strategy": CANARY_STRATEGY})
    demo.shell(
        f"pipelines publish order --image $IMAGE --run-id {run_id} "
        f"--value 'strategy={json.dumps(CANARY_STRATEGY)}'",
        f"deployment {short(deployment_id)}",
    )
    began = time.monotonic()
    events, verdict = await demo.follow("order", deployment_id, before)
    took = time.monotonic() - began
    demo.traffic.mark("aborted")
    await asyncio.sleep(3)
    report = await asyncio.to_thread(demo.traffic.stop)
    demo.traffic = None
    outcome = events[-1]
    status = outcome.canary
    if outcome.phase is not DeployPhase.ROLLED_BACK or status is None:
        raise DemoError(
            f"the faulty canary should have been aborted, but it ended {outcome.phase.value}: "
            f"{outcome.reason}"
        )
    failed = [m for m in status.measurements if m.verdict == "fail"]
    if status.state is not CanaryState.ABORTED or len(failed) != FAILURE_LIMIT:
        raise DemoError(
            f"the canary should be aborted at its first analysis, not {status.state.value} "
            f"after {len(failed)} failed measurement(s) of {len(status.measurements)}"
        )
    if verdict.code != 3:
        raise DemoError(f"pipelines wait should exit 3 (rolled back), not: {verdict.explain()}")
    measured = failed[-1]
    during = report.between("canary", "aborted")
    after = report.window(report.mark("aborted"), report.elapsed)
    if after.failed:
        raise DemoError(f"{after.failed} requests failed after the canary was aborted")
    started = next(
        (e for e in events if e.canary and e.canary.state is CanaryState.ANALYSING), outcome
    )
    demo.console.print()
    demo.say(
        f"[bold magenta]Canary aborted:[/] {'; '.join(measured.broken)} at the first analysis; "
        f"{during.failed} of {during.count} requests failed meanwhile (the canary's share: "
        f"{round(100 * (started.canary.share if started.canary else 0.5))}% of the pods, a fifth "
        f"of theirs), none after  [dim]({took:.1f} s; interval {INTERVAL_SECONDS} s x failure "
        f"limit {FAILURE_LIMIT})[/]"
    )
    demo.steps["canary"] = took
