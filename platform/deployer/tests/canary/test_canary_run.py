"""The canary's steps as a state machine: the helm upgrades it asks for, in order, and how it ends
(promoted, aborted on a failed analysis, paused when inconclusive, superseded, commanded).

The host here records the values of each move instead of running helm; the real helm, pods and
Prometheus are exercised by tests/realpods/test_realpods_rollouts_canary.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from deploy_contract.events import CanaryState, CanaryStatus, DeployPhase
from deploy_contract.images import parse_image
from deployer.canary.analysis import Measurement, Thresholds, TrackNumbers, Verdict
from deployer.canary.control import CanaryControl, Command
from deployer.canary.replicas import Bounds, Split
from deployer.canary.run import CanaryPlan, CanaryRun
from deployer.canary.strategy import AnalysisSettings, CanaryStrategy, Step
from deployer.reconcile.state import Outcome

STABLE = {"image": {"repository": "r/order", "tag": "1.0.0-aaaaaaa"}, "replicaCount": 2}
NEW = {
    "image": {"repository": "r/order", "tag": "1.1.0-bbbbbbb"},
    "replicaCount": 2,
    "strategy": {"type": "canary"},
}
GOOD = TrackNumbers(requests=100, success_rate=1.0, p99_seconds=0.01)
BAD = TrackNumbers(requests=100, success_rate=0.8, p99_seconds=0.01)


def measurement(verdict: Verdict, canary: TrackNumbers = GOOD) -> Measurement:
    broken = ("success rate 80.0% is below the threshold 99.0%",) if verdict is Verdict.FAIL else ()
    return Measurement(
        verdict=verdict, canary=canary, stable=GOOD, window_seconds=0.0, broken=broken,
        reason=verdict.value, thresholds=Thresholds(),
    )  # fmt: skip


@dataclass
class Host:
    verdicts: list[Verdict]
    fail_moves: set[int] = field(default_factory=set)
    newer_after: int | None = None  # a newer deployment waits after this many measurements
    moves: list[tuple[str, Split | None]] = field(default_factory=list)
    statuses: list[CanaryStatus] = field(default_factory=list)
    measured: int = 0
    paused: asyncio.Event = field(default_factory=asyncio.Event)

    async def move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        canary = values.get("canary")
        # What the chart's schema holds a running canary to.
        assert canary is None or (canary["enabled"] and canary["replicas"] >= 1), canary
        assert canary is None or values["strategy"]["type"] == "canary"
        split = Split(canary["stableReplicas"], canary["replicas"]) if canary else None
        self.moves.append((values["image"]["tag"], split))
        if len(self.moves) in self.fail_moves:
            return Outcome(DeployPhase.ROLLED_BACK, "the canary's pods cannot run", 9)
        return Outcome(DeployPhase.SUCCEEDED, revision=len(self.moves) + 1)

    async def measure(self, window_seconds: float, thresholds: Thresholds) -> Measurement:
        verdict = self.verdicts[min(self.measured, len(self.verdicts) - 1)]
        self.measured += 1
        return measurement(verdict, BAD if verdict is Verdict.FAIL else GOOD)

    async def report(self, status: CanaryStatus) -> None:
        self.statuses.append(status)
        if status.state is CanaryState.PAUSED:
            self.paused.set()

    def newer(self) -> str | None:
        due = self.newer_after is not None and self.measured >= self.newer_after
        return "deployment-2" if due else None


TWO_REPLICAS, ALL_STABLE = Bounds(2, 1, 0), Split(2, 0)


def canary_run(
    host: Host,
    *steps: Step,
    control: CanaryControl | None = None,
    failure_limit: int = 1,
    bounds: Bounds = TWO_REPLICAS,
    start: Split = ALL_STABLE,
    resumed: CanaryStatus | None = None,
) -> CanaryRun:
    strategy = CanaryStrategy(
        steps=steps,
        analysis=AnalysisSettings(
            interval_seconds=0,
            count=2,
            failure_limit=failure_limit,
            inconclusive_limit=2,
            thresholds=Thresholds(),
        ),
    )
    plan = CanaryPlan(
        strategy=strategy, stable_values=STABLE, new_values=NEW,
        image=parse_image("r/order:1.1.0-bbbbbbb"), stable_image="r/order:1.0.0-aaaaaaa",
        bounds=bounds, start=start, deployment_id="deployment-1", service="order",
        resumed=resumed,
    )  # fmt: skip
    return CanaryRun(plan, host, control or CanaryControl())


WEIGHT_50 = Step("weight", weight=50)
ANALYSIS = Step("analysis")
OLD, TAG = "1.0.0-aaaaaaa", "1.1.0-bbbbbbb"


async def test_a_good_canary_goes_through_every_step_and_is_promoted() -> None:
    host = Host([Verdict.PASS])
    result = await canary_run(host, WEIGHT_50, ANALYSIS).run()
    assert result.outcome.phase is DeployPhase.SUCCEEDED
    assert result.status.state is CanaryState.PROMOTED
    assert host.moves == [
        # weight 50: one canary pod surges in, then one stable pod goes (the stable keeps 1.0.0)
        (OLD, Split(2, 1)), (OLD, Split(1, 1)),
        # the promotion: the stable (1.0.0) grows back, then the new values roll it to 1.1.0
        # and remove the canary
        (OLD, Split(2, 1)), (TAG, None),
    ]  # fmt: skip
    assert host.measured == 2
    assert [m.verdict for m in result.status.measurements] == ["pass", "pass"]


async def test_a_failed_analysis_aborts_to_the_stable_values() -> None:
    host = Host([Verdict.FAIL])
    result = await canary_run(host, WEIGHT_50, ANALYSIS).run()
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert "success rate 80.0% is below the threshold 99.0%" in (result.outcome.reason or "")
    assert host.measured == 1  # failure limit 1: the first failed measurement aborts
    assert host.moves[2:] == [(OLD, Split(2, 1)), (OLD, None)]
    assert result.status.state is CanaryState.ABORTED
    assert result.status.measurements[-1].canary.success_rate == 0.8


async def test_an_inconclusive_analysis_pauses_until_resumed() -> None:
    host = Host([Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE, Verdict.PASS])
    control = CanaryControl()
    running = asyncio.create_task(canary_run(host, WEIGHT_50, ANALYSIS, control=control).run())
    await host.paused.wait()
    assert "inconclusive" in (host.statuses[-1].reason or "")
    await asyncio.sleep(0.6)
    assert not running.done()
    assert host.measured == 2  # paused: no more measurements
    control.send(Command.RESUME, "ada")
    result = await running
    assert result.outcome.phase is DeployPhase.SUCCEEDED
    assert host.measured == 4  # the analysis started again: two passes


async def test_a_newer_deployment_supersedes_the_canary() -> None:
    host = Host([Verdict.PASS], newer_after=1)
    result = await canary_run(host, WEIGHT_50, ANALYSIS).run()
    assert result.superseded_by == "deployment-2"
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert host.moves[-1] == (OLD, None)


async def test_a_manual_promote_ends_a_pause_step() -> None:
    host = Host([Verdict.PASS])
    control = CanaryControl()
    running = asyncio.create_task(canary_run(host, WEIGHT_50, Step("pause"), control=control).run())
    await host.paused.wait()
    control.send(Command.PROMOTE, "ada")
    result = await running
    assert result.outcome.phase is DeployPhase.SUCCEEDED
    assert result.status.reason == "promoted by ada"


async def test_a_manual_abort_during_an_analysis() -> None:
    host = Host([Verdict.PASS])
    control = CanaryControl()
    control.send(Command.ABORT, "ada")
    result = await canary_run(host, WEIGHT_50, ANALYSIS, control=control).run()
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert result.outcome.reason == "canary aborted: aborted by ada"


async def test_a_canary_whose_pods_cannot_run_is_aborted() -> None:
    host = Host([Verdict.PASS], fail_moves={1})
    result = await canary_run(host, WEIGHT_50, ANALYSIS).run()
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert "cannot run" in (result.outcome.reason or "")
    assert host.moves[-1] == (OLD, None)


async def test_an_abort_whose_move_fails_still_restores_the_stable_values() -> None:
    host = Host([Verdict.FAIL], fail_moves={3})  # the abort's first move (stable back to 2)
    result = await canary_run(host, WEIGHT_50, ANALYSIS).run()
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert host.moves[-1] == (OLD, None)  # the stable values exactly, no canary


async def test_only_passes_end_an_analysis_and_failures_count_to_the_limit() -> None:
    host = Host([Verdict.FAIL, Verdict.PASS, Verdict.FAIL, Verdict.PASS])
    result = await canary_run(host, WEIGHT_50, ANALYSIS, failure_limit=3).run()
    assert result.outcome.phase is DeployPhase.SUCCEEDED  # two fails, below the limit of 3
    assert host.measured == 4  # count 2: two passes were needed


async def test_one_replica_keeps_its_stable_pod_beside_the_canary() -> None:
    host = Host([Verdict.PASS])
    bounds, start = Bounds(1, 1, 0), Split(1, 0)
    result = await canary_run(host, WEIGHT_50, ANALYSIS, bounds=bounds, start=start).run()
    assert result.outcome.phase is DeployPhase.SUCCEEDED
    assert host.moves[0] == (OLD, Split(1, 1))


async def test_a_canary_resumed_while_aborting_finishes_its_abort() -> None:
    host = Host([Verdict.PASS])
    resumed = CanaryStatus(
        state=CanaryState.ABORTING, steps=[], step=1, weight=50, stable_replicas=1,
        canary_replicas=1, reason="aborted by ada",
    )  # fmt: skip
    run = canary_run(host, WEIGHT_50, ANALYSIS, start=Split(1, 1), resumed=resumed)
    result = await run.run()
    assert result.outcome.phase is DeployPhase.ROLLED_BACK
    assert result.outcome.reason == "canary aborted: aborted by ada"
    assert host.moves == [(OLD, Split(2, 1)), (OLD, None)]
    assert host.measured == 0
