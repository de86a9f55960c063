"""The promoter: offers each release verified in an environment to the environments after it,
passes its promotions through their gates, and starts the deployment once every gate passed.

    deployment succeeded in E (a release) -> a promotion into each automatic downstream of E
    every few seconds, and on every outcome: each waiting promotion's gates decided again
        -> waiting (the gate says why and until when) | failed (a gate that cannot pass)
        -> promoting (its deployment queued in the environment's lane) -> promoted | failed
    a rollback in an environment -> a hold: automatic promotions into it wait until cleared

Every decision is saved with its evidence and published as a ``deploy.<service>.promotion``
event when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.promotions import Gate, GateResult, GateVerdict, PromotionState
from deployer.canary.analysis import TrackSource
from deployer.intake.checks import RejectedError
from deployer.promotion.analysis import analyse_upstream
from deployer.promotion.dora import is_rollback
from deployer.promotion.dorametrics import export_dora
from deployer.promotion.environments import Environments
from deployer.promotion.gates import Facts, Upstream, blocking, decide_gates, wants_measurement
from deployer.promotion.model import Hold, Promotion
from deployer.promotion.ports import PromotionStore
from deployer.promotion.releases import Release, chart_version
from deployer.records import DeploymentRecord
from deployer.report.metrics import PROMOTIONS
from deployer.report.ports import RecordStore
from deployer.targets import Target

log = logging.getLogger(__name__)
# (deployment id, the release's request, environment, release id, promotion id) -> the record
Enqueue = Callable[[str, ArtifactPublished, str, str, str], Awaitable[DeploymentRecord]]
PublishPromotion = Callable[[Promotion], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


def _rolled_back(record: DeploymentRecord) -> bool:
    """A rollback happened: helm restored the release, or a rollback was deployed."""
    if record.phase is DeployPhase.ROLLED_BACK:
        return True
    return record.phase is DeployPhase.SUCCEEDED and is_rollback(record)


def _ending(record: DeploymentRecord) -> str:
    """How a deployment ended, in one line: its id, its phase, its reason."""
    said = f": {record.reason}" if record.reason else ""
    return f"{record.id} ended {record.phase.value}{said}"


_ENDED = {
    DeployPhase.SUCCEEDED: PromotionState.PROMOTED,
    DeployPhase.UNCHANGED: PromotionState.PROMOTED,
    DeployPhase.SUPERSEDED: PromotionState.SUPERSEDED,
}


class Promoter:
    """Runs every promotion of the deployer's environments.

    What people ask for (a promotion by hand, an approval, a hold) is
    :class:`~deployer.promotion.requests.PromotionRequests`, which changes promotions through
    this promoter's ``store``, ``records``, ``clock``, ``lock``, :meth:`save` and :meth:`wake`.
    """

    def __init__(
        self,
        environments: Environments,
        namespaces: Mapping[str, str],
        metrics: TrackSource | None,
        store: PromotionStore,
        records: RecordStore,
        publish: PublishPromotion,
        charts: Mapping[str, Path],
        *,
        clock: Callable[[], datetime] = _now,
        min_window_seconds: float = 30.0,
        measure_every_seconds: float = 15.0,
    ) -> None:
        self.environments = environments
        self._namespaces = namespaces
        self._metrics = metrics
        self.store = store
        self.records = records
        self._publish = publish
        self._charts = charts
        self.clock = clock
        self._min_window = min_window_seconds
        self._measure_every = measure_every_seconds
        self._enqueue: Enqueue | None = None
        self.lock = asyncio.Lock()  # one pass, or one person's change to a promotion, at a time
        self._wake = asyncio.Event()
        self._measured: dict[str, GateResult] = {}  # the last inconclusive measurement
        self._ended: list[DeploymentRecord] = []

    def connect(self, enqueue: Enqueue) -> None:
        """Where promotions queue their deployments (the admission of the deployer)."""
        self._enqueue = enqueue

    async def release_of(self, request: ArtifactPublished) -> Release:
        """The release CI's ``request`` publishes (saved the first time it is seen)."""
        release = Release.of(request, chart_version(self._charts[request.service]), self.clock())
        known = await self.store.release(release.id)
        if known is not None:
            return known
        await self.store.put_release(release)
        return release

    async def resume(self) -> None:
        """After a restart: what the deployer may have missed while it was down. Promotions whose
        deployment ended are ended, and every release that succeeded and still serves is
        offered downstream (an offer made before is not made again)."""
        records = await self.records.all()
        by_id = {record.id: record for record in records}
        for promotion in await self.store.promotions():
            ended = by_id.get(promotion.deployment_id or "")
            if promotion.state is PromotionState.PROMOTING and ended and ended.phase.terminal:
                self._ended.append(ended)
        for record in records:
            if record.phase is not DeployPhase.SUCCEEDED or not record.release_id:
                continue
            if is_rollback(record):  # its hold was set then, and may have been cleared since
                continue
            state = await self.records.service(record.target)
            if state is not None and state.deployment_id == record.id:
                self._ended.append(record)
        self.wake()

    async def concluded(self, record: DeploymentRecord) -> None:
        """A deployment ended: taken in by the next pass (never waits: a lane calls it)."""
        self._ended.append(record)
        self.wake()

    async def _take_in(self, record: DeploymentRecord) -> None:
        """End ``record``'s promotion, hold after a rollback, offer a verified release
        downstream."""
        now = self.clock()
        if record.promotion_id is not None:
            await self._promotion_ended(record, now)
        spec = self.environments.get(record.environment)
        if _rolled_back(record) and spec.upstream is not None:
            await self.store.put_hold(
                Hold(
                    environment=record.environment, service=record.service,
                    reason=_ending(record),
                    deployment_id=record.id, since=now,
                )
            )  # fmt: skip
        if record.phase is DeployPhase.SUCCEEDED and record.release_id and not is_rollback(record):
            await self._offer(record, now)

    async def _promotion_ended(self, record: DeploymentRecord, now: datetime) -> None:
        assert record.promotion_id is not None
        promotion = await self.store.promotion(record.promotion_id)
        if promotion is None or promotion.deployment_id != record.id or promotion.state.final:
            return
        state = _ENDED.get(record.phase, PromotionState.FAILED)
        await self.save(promotion, promotion.moved(now, state=state, reason=_ending(record)))

    async def _offer(self, record: DeploymentRecord, now: datetime) -> None:
        """``record``'s release is verified in its environment: a promotion into each automatic
        downstream environment (a newer release supersedes the older ones waiting there)."""
        assert record.release_id is not None
        release = await self.store.release(record.release_id)
        if release is None:
            return
        for spec in self.environments.downstream(record.environment):
            if not spec.promotion.automatic or not spec.runs(release.service):
                continue
            promotion_id = Promotion.id_of(release.id, spec.name)
            if await self.store.promotion(promotion_id) is not None:
                continue
            await self.supersede_waiting(Target(spec.name, release.service), release, now)
            await self.save(
                None,
                Promotion(
                    id=promotion_id, release=release, source=record.environment,
                    environment=spec.name, automatic=True, upstream_deployment_id=record.id,
                    verified_at=record.finished_at or now, created_at=now, updated_at=now,
                ),
            )  # fmt: skip

    async def supersede_waiting(self, target: Target, newer: Release, now: datetime) -> None:
        """Supersede the promotions waiting into ``target``: the ``newer`` release replaces them."""
        for waiting in await self.store.promotions():
            if waiting.target == target and waiting.state is PromotionState.WAITING:
                reason = f"superseded by the newer release {newer.id} ({newer.image})"
                await self.save(
                    waiting, waiting.moved(now, state=PromotionState.SUPERSEDED, reason=reason)
                )

    async def evaluate(self) -> None:
        """Take in the deployments that ended, then decide every waiting promotion's gates."""
        async with self.lock:
            took_in = bool(self._ended)
            while self._ended:
                record = self._ended.pop(0)
                try:
                    await self._take_in(record)
                except Exception:
                    log.exception(
                        "a deployment's outcome was not taken in", extra={"id": record.id}
                    )
            if took_in:
                export_dora(await self.records.all(), self.clock())
            for promotion in await self.store.promotions():
                if promotion.state is PromotionState.WAITING:
                    try:
                        await self._step(promotion)
                    except Exception:  # one promotion's trouble must not stop the others
                        log.exception("promotion step failed", extra={"promotion": promotion.id})

    async def _step(self, promotion: Promotion) -> None:
        now = self.clock()
        rules = self.environments.get(promotion.environment).promotion
        serving = await self.records.service(Target(promotion.source, promotion.service))
        facts = Facts(
            Upstream.of(promotion, serving.image if serving else None),
            await self.store.hold(promotion.target),
            self._measured.get(promotion.id),
            now,
        )
        results = decide_gates(rules, promotion, facts)
        if wants_measurement(rules, promotion, results) and self._due(promotion.id, now):
            measured = await self._measure(promotion, now)
            results = decide_gates(rules, promotion, replace(facts, analysis=measured))
            if measured.verdict is GateVerdict.WAITING:
                self._measured[promotion.id] = measured
            else:
                self._measured.pop(promotion.id, None)
                promotion = promotion.model_copy(update={"analysis": measured})
        await self._decided(promotion, results, now)

    def _due(self, promotion_id: str, now: datetime) -> bool:
        last = self._measured.get(promotion_id)
        return last is None or (now - last.decided_at).total_seconds() >= self._measure_every

    async def _measure(self, promotion: Promotion, now: datetime) -> GateResult:
        analysis = self.environments.get(promotion.environment).promotion.analysis
        assert analysis is not None
        window = (now - promotion.verified_at).total_seconds()
        if window < self._min_window:
            return GateResult(
                gate=Gate.ANALYSIS,
                verdict=GateVerdict.WAITING,
                reason=f"the soak so far ({window:.0f} s) spans fewer than two scrapes: "
                f"measuring once it is {self._min_window:g} s long",
                decided_at=now,
            )
        return await analyse_upstream(
            self._metrics, self._namespaces[promotion.source], promotion.source,
            promotion.service, window, analysis, now,
        )  # fmt: skip

    async def _decided(
        self, promotion: Promotion, results: list[GateResult], now: datetime
    ) -> None:
        first = blocking(results)
        if first is None:
            await self._start(promotion, results, now)
            return
        if first.verdict is GateVerdict.FAILED:
            state, reason = PromotionState.FAILED, f"the {first.gate} gate failed: {first.reason}"
        else:
            state, reason = PromotionState.WAITING, f"at the {first.gate} gate: {first.reason}"
        await self.save(promotion, promotion.moved(now, state=state, reason=reason, gates=results))

    async def _start(self, promotion: Promotion, results: list[GateResult], now: datetime) -> None:
        """Every gate passed: queue the release's deployment in the environment's lane."""
        assert self._enqueue is not None, "the promoter is not connected to the admission"
        deployment_id = f"promote-{promotion.id}-{int(now.timestamp() * 1000)}"
        try:
            record = await self._enqueue(
                deployment_id, promotion.release.request(), promotion.environment,
                promotion.release.id, promotion.id,
            )  # fmt: skip
        except RejectedError as exc:
            failed = promotion.moved(
                now, state=PromotionState.FAILED, gates=results,
                reason=f"every gate passed, but {promotion.environment} refused it: {exc}",
            )  # fmt: skip
            await self.save(promotion, failed)
            return
        started = promotion.moved(
            now, state=PromotionState.PROMOTING, gates=results, deployment_id=record.id,
            reason=f"every gate passed: deploying as {record.id}",
        )  # fmt: skip
        await self.save(promotion, started)

    async def save(self, before: Promotion | None, after: Promotion) -> None:
        """Save ``after``; publish it when anything but the decision times changed."""
        if before is not None and _same(before, after):
            return
        await self.store.put_promotion(after)
        if after.state.final and (before is None or not before.state.final):
            PROMOTIONS.labels(after.service, after.environment, after.state.value).inc()
        try:
            await self._publish(after)
        except Exception as exc:  # the store is the truth; a lost event is logged
            log.warning("promotion event not published", extra={"error": repr(exc)})

    def wake(self) -> None:
        """Decide the waiting promotions now rather than at the next interval."""
        self._wake.set()

    async def loop(self, interval_seconds: float) -> None:
        """Decide the waiting promotions every ``interval_seconds`` and after each outcome,
        until cancelled."""
        while True:
            try:
                await self.evaluate()
            except Exception as exc:
                log.warning("promotion pass failed", extra={"error": repr(exc)})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_seconds)


def _same(before: Promotion, after: Promotion) -> bool:
    def shape(promotion: Promotion) -> object:
        gates = [(g.gate, g.verdict, g.reason) for g in promotion.gates]
        return (
            promotion.state, promotion.reason, gates, promotion.approval, promotion.analysis,
            promotion.deployment_id,
        )  # fmt: skip

    return shape(before) == shape(after)
