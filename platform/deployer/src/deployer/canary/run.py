"""One canary, step by step: set weights, pause, analyse; then promote or abort.

Every change of the split is one ``helm upgrade --wait`` of the release (see
:mod:`deployer.canary.replicas` for the moves and their bounds), so Helm's history holds each
step and the Deployment controller does the pod work. Between steps the run waits, measures and
listens: to a person's commands (:mod:`deployer.canary.control`) and to a newer deployment of
the service, which supersedes this one (abort, then the newer one starts its own canary).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from deploy_contract.events import (
    CanaryState,
    CanaryStatus,
    DeployPhase,
)
from deploy_contract.images import ImageRef
from deployer.canary.analysis import Measurement, Thresholds, Verdict
from deployer.canary.control import CanaryControl, Command, Order
from deployer.canary.replicas import Bounds, Split, canary_pods, moves
from deployer.canary.status import measurement_json, thresholds_json
from deployer.canary.strategy import CanaryStrategy, Step
from deployer.intake.chartvalues import merge
from deployer.reconcile.state import Outcome

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


class CanaryHost(Protocol):
    """What a canary needs from the deployer."""

    async def move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        """``helm upgrade --install --wait`` with ``values``; SUCCEEDED or how it failed (never
        raises for helm or the API). ``watch``: stop early once new canary pods cannot run."""

    async def measure(self, window_seconds: float, thresholds: Thresholds) -> Measurement:
        """The canary against the stable pods over the last ``window_seconds``."""

    async def report(self, status: CanaryStatus) -> None:
        """Publish a ``canary`` event with ``status`` (and keep it on the record)."""

    def newer(self) -> str | None:
        """The id of a newer deployment of the service waiting to run, if any."""


@dataclass
class CanaryPlan:
    """What a canary starts from: the stable release's values, the new values and image."""

    strategy: CanaryStrategy
    stable_values: dict[str, Any]
    new_values: dict[str, Any]
    image: ImageRef
    stable_image: str | None
    bounds: Bounds
    start: Split
    deployment_id: str
    service: str
    # A canary cut short by a restart of the deployer: how it was, as last recorded.
    resumed: CanaryStatus | None = None


@dataclass
class CanaryResult:
    """How the canary ended: the deployment's outcome, its last status, and the newer
    deployment that superseded it (when one did)."""

    outcome: Outcome
    status: CanaryStatus
    superseded_by: str | None = None


class _InterruptedError(Exception):
    """A command or a newer deployment cut a wait short."""

    def __init__(self, order: Order | None, newer: str | None = None) -> None:
        super().__init__(order.command.value if order else f"superseded by {newer}")
        self.order = order
        self.newer = newer


@dataclass
class CanaryRun:
    """Drives one canary to its outcome; :meth:`run` returns once it is promoted, aborted or
    superseded."""

    plan: CanaryPlan
    host: CanaryHost
    control: CanaryControl = field(default_factory=CanaryControl)

    def __post_init__(self) -> None:
        strategy = self.plan.strategy
        self.split = self.plan.start
        self.status = CanaryStatus(
            state=CanaryState.SCALING,
            steps=[step.describe() for step in strategy.steps] + ["promote"],
            step=0,
            weight=0,
            stable_replicas=self.split.stable,
            canary_replicas=self.split.canary,
            stable_image=self.plan.stable_image,
            canary_image=str(self.plan.image),
            thresholds=thresholds_json(strategy.analysis.thresholds),
        )

    async def run(self) -> CanaryResult:
        """Every step, then the promotion; an abort, a failed analysis or a newer deployment
        ends it early with the stable pods serving everything. A canary resumed after a restart
        of the deployer finishes its abort or promotion, or starts again at the first step."""
        resumed = self.plan.resumed
        if resumed is not None and resumed.state in (CanaryState.ABORTING, CanaryState.ABORTED):
            return await self._abort(resumed.reason or "aborted before the deployer restarted")
        if resumed is not None and resumed.state in (CanaryState.PROMOTING, CanaryState.PROMOTED):
            return await self._promote(resumed.reason or "promoted before the deployer restarted")
        try:
            return await self._steps()
        except Exception as exc:  # whatever broke, the stable pods must serve again
            log.exception("canary failed", extra={"deployment_id": self.plan.deployment_id})
            return await self._abort(f"the canary stopped on an unexpected error: {exc!r}")

    async def _steps(self) -> CanaryResult:
        try:
            for index, step in enumerate(self.plan.strategy.steps):
                await self._listen(timeout=0)
                self.status = self.status.model_copy(update={"step": index})  # told by the step
                verdict = await self._step(step)
                if verdict is not None:
                    return await self._abort(verdict)
            await self._listen(timeout=0)
            return await self._promote("every step passed")
        except _InterruptedError as interrupted:
            return await self._interrupted(interrupted)
        except _StepFailedError as failed:
            return await self._abort(f"a step of the canary failed: {failed.outcome.reason}")

    async def _interrupted(self, interrupted: _InterruptedError) -> CanaryResult:
        if interrupted.newer is not None:
            result = await self._abort(
                f"superseded by deployment {interrupted.newer}: the canary was aborted and the "
                "newer image starts its own canary"
            )
            if result.outcome.phase is DeployPhase.ROLLED_BACK:
                result.superseded_by = interrupted.newer
            return result
        order = interrupted.order
        assert order is not None
        if order.command is Command.PROMOTE:
            return await self._promote(f"promoted by {order.by}")
        return await self._abort(f"aborted by {order.by}")

    # ---- steps --------------------------------------------------------------------------

    async def _step(self, step: Step) -> str | None:
        """Run one step; a reason to abort, or None to go on."""
        if step.kind == "weight":
            assert step.weight is not None
            await self._set_weight(step.weight)
            return None
        if step.kind == "pause":
            if step.seconds is None:
                await self._hold("paused until promoted (a pause step without seconds)")
            else:
                await self._wait(step.seconds)
            return None
        return await self._analyse(step.count or self.plan.strategy.analysis.count)

    async def _set_weight(self, weight: int) -> None:
        bounds = self.plan.bounds
        pods = canary_pods(bounds.replicas, weight)
        target = Split(bounds.replicas - pods, pods)
        if bounds.replicas == 1 and weight < 100 and bounds.surge:
            target = Split(1, 1)  # one replica: the canary runs beside it, within the surge
        await self._update(state=CanaryState.SCALING, weight=weight)
        for split in moves(self.split, target, bounds):
            outcome = await self.host.move(
                self._values(self.plan.stable_values, split),
                self._description("step"),
                watch=split.canary > self.split.canary,
            )
            if outcome.phase is not DeployPhase.SUCCEEDED:
                raise _StepFailedError(outcome)
            self.split = split
            await self._update()

    async def _analyse(self, count: int) -> str | None:
        analysis = self.plan.strategy.analysis
        failures = inconclusive = passed = 0
        await self._update(state=CanaryState.ANALYSING, reason=None)
        while passed < count:
            await self._wait(analysis.interval_seconds)
            measurement = await self.host.measure(analysis.interval_seconds, analysis.thresholds)
            self.status.measurements.append(measurement_json(measurement))
            if measurement.verdict is Verdict.FAIL:
                failures += 1
                inconclusive = 0
                if failures >= analysis.failure_limit:
                    await self._update()
                    return "the canary failed its analysis: " + "; ".join(measurement.broken)
            elif measurement.verdict is Verdict.INCONCLUSIVE:
                inconclusive += 1
                if inconclusive >= analysis.inconclusive_limit:
                    await self._hold(f"inconclusive, paused: {measurement.reason}")
                    failures = inconclusive = passed = 0  # resumed: the analysis starts again
                    await self._update(state=CanaryState.ANALYSING, reason=None)
                    continue
            else:
                passed += 1
                inconclusive = 0
            await self._update()
        return None

    # ---- waiting and listening -------------------------------------------------------------

    def _obey(self, order: Order) -> None:
        if order.command in (Command.PROMOTE, Command.ABORT):
            raise _InterruptedError(order)
        if order.command is Command.PAUSE:
            raise _PausedError(order)
        # RESUME while running: nothing to resume.

    async def _wait(self, seconds: float) -> None:
        """Wait ``seconds``, acting on commands and newer deployments meanwhile."""
        deadline = time.monotonic() + seconds
        await self._listen(timeout=0)
        while (left := deadline - time.monotonic()) > 0:
            await self._listen(timeout=min(left, POLL_SECONDS))

    async def _listen(self, timeout: float) -> None:
        """Act on a newer deployment or a command, waiting up to ``timeout`` for one."""
        newer = self.host.newer()
        if newer is not None:
            raise _InterruptedError(None, newer)
        order = await self.control.next(timeout) if timeout > 0 else self.control.poll()
        if order is None:
            return
        try:
            self._obey(order)
        except _PausedError:
            await self._hold(f"paused by {order.by}")

    async def _hold(self, reason: str) -> None:
        """Stay paused until resumed (return), promoted or aborted (raise)."""
        state, previous = self.status.state, self.status.reason
        await self._update(state=CanaryState.PAUSED, reason=reason)
        log.info("canary paused", extra={"deployment_id": self.plan.deployment_id, "why": reason})
        while True:
            newer = self.host.newer()
            if newer is not None:
                raise _InterruptedError(None, newer)
            order = await self.control.next(POLL_SECONDS)
            if order is None or order.command is Command.PAUSE:
                continue
            if order.command is Command.RESUME:
                await self._update(state=state, reason=previous)
                return
            raise _InterruptedError(order)

    # ---- endings ------------------------------------------------------------------------

    async def _promote(self, why: str) -> CanaryResult:
        """The stable grows back to full size as the canary shrinks (both keep their pod
        templates, so no pod restarts), then the new values: the stable Deployment's own rolling
        update takes it to the new image and the canary Deployment goes away. Bounded by
        construction: each move within the canary's bounds, the last within the Deployment's."""
        await self._update(
            state=CanaryState.PROMOTING, step=len(self.plan.strategy.steps), reason=why
        )
        for split in self._toward_full():
            outcome = await self.host.move(
                self._values(self.plan.stable_values, split), self._description("promote"),
                watch=False,
            )  # fmt: skip
            if outcome.phase is not DeployPhase.SUCCEEDED:
                return await self._abort(f"the promotion failed: {outcome.reason}")
            self.split = split
            await self._update()
        final = await self.host.move(self.plan.new_values, self._description("final"), watch=False)
        if final.phase is not DeployPhase.SUCCEEDED:
            return await self._abort(f"the promotion failed: {final.reason}")
        self.split = Split(self.plan.bounds.replicas, 0)
        await self._update(state=CanaryState.PROMOTED, reason=why)
        return CanaryResult(final, self.status)

    async def _abort(self, why: str) -> CanaryResult:
        """The stable grows back to full size as the canary shrinks to 0, then the release
        returns to the stable values exactly (the canary Deployment is deleted)."""
        await self._update(state=CanaryState.ABORTING, reason=why)
        stable = self.plan.stable_values
        full = Split(self.plan.bounds.replicas, 0)
        for split in self._toward_full():
            moved = await self.host.move(
                self._values(stable, split), self._description("abort"), watch=False
            )
            if moved.phase is not DeployPhase.SUCCEEDED:
                break  # helm restored the split before; the stable values restore the rest
            self.split = split
        outcome = await self.host.move(stable, self._description("aborted"), watch=False)
        if outcome.phase is DeployPhase.SUCCEEDED:
            self.split = full
            await self._update(state=CanaryState.ABORTED, reason=why)
            return CanaryResult(
                Outcome(DeployPhase.ROLLED_BACK, f"canary aborted: {why}", outcome.revision),
                self.status,
            )
        await self._update(state=CanaryState.ABORTED, reason=why)
        return CanaryResult(
            Outcome(
                DeployPhase.FAILED,
                f"canary aborted ({why}), but restoring the stable values failed: "
                f"{outcome.reason}. What to do: the canary pods may still serve; roll back "
                f"(deployer rollback {self.plan.service}) or deploy the stable image again",
                helm_stderr=outcome.helm_stderr,
            ),
            self.status,
        )

    def _toward_full(self) -> list[Split]:
        """The moves from the split now to the stable at full size, before the last upgrade
        (which leaves the canary out: the chart renders no canary Deployment of 0 pods)."""
        full = Split(self.plan.bounds.replicas, 0)
        return [split for split in moves(self.split, full, self.plan.bounds) if split.canary]

    # ---- values and status ------------------------------------------------------------------

    def _values(self, base: dict[str, Any], split: Split) -> dict[str, Any]:
        image = self.plan.image
        canary = {
            "enabled": True,
            "replicas": split.canary,
            "stableReplicas": split.stable,
            "image": {
                "repository": image.repository,
                "tag": image.tag,
                "digest": image.digest or "",
            },
        }
        # The stable release may predate the canary strategy (set by this deployment's values):
        # the chart renders a canary only for a canary service.
        strategy = self.plan.new_values.get("strategy") or {"type": "canary"}
        return merge(base, {"canary": canary, "strategy": strategy})

    def _description(self, what: str) -> str:
        if what == "final":
            return ""  # the host describes the final upgrade as the deployment's own
        return f"flotilla-canary={self.plan.deployment_id} {what}={self.status.step}"

    async def _update(self, **changes: Any) -> None:
        changes.setdefault("stable_replicas", self.split.stable)
        changes.setdefault("canary_replicas", self.split.canary)
        self.status = self.status.model_copy(update=changes)
        await self.host.report(self.status)


class _PausedError(Exception):
    def __init__(self, order: Order) -> None:
        super().__init__("pause")
        self.order = order


class _StepFailedError(Exception):
    """A move of the canary failed (its pods cannot run, helm failed): the canary aborts."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason or "a canary step failed")
        self.outcome = outcome
