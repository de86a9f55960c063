"""Drift checks of every release, on an interval and on demand, reported as events and metrics.

A check only observes. In ``correct`` mode a drifted release is corrected by an act queued in
its lane, behind any deployment of it, which looks again before it applies: one writer per
release, no second lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deploy_contract.drift import DriftMode, DriftReport
from deployer.drift.check import Drift, check_drift
from deployer.drift.config import DriftConfig, DriftRules
from deployer.queue.lanes import Lanes
from deployer.reconcile.acts.correct_drift import correct_drift
from deployer.reconcile.errors import StepError
from deployer.reconcile.observe import ReleaseObserver
from deployer.reconcile.ports import LiveObjects, Ports
from deployer.report.events import Reporter
from deployer.report.metrics import DRIFT_CORRECTIONS, DRIFTED_FIELDS
from deployer.targets import Target

log = logging.getLogger(__name__)


def unchecked(service: str, mode: DriftMode, why: str) -> DriftReport:
    """The report of a check that could not compare anything, saying why."""
    return DriftReport(service=service, mode=mode, checked_at=datetime.now(UTC), error=why)


@dataclass
class DriftWatch:
    """Checks releases for drift and keeps each one's last report."""

    config: DriftConfig
    ports: Ports
    observer: ReleaseObserver
    lanes: Lanes
    reporter: Reporter
    _last: dict[Target, DriftReport] = field(default_factory=dict)

    def mode(self, service: str) -> DriftMode:
        """What the deployer does about ``service``'s drift."""
        return self.config.rules(service).mode

    def reports(self) -> dict[Target, DriftReport]:
        """The last drift check of each release."""
        return dict(self._last)

    async def check(self, target: Target) -> DriftReport:
        """Check ``target`` now; report drift (an event when it is new or different, and a
        metric) and, in ``correct`` mode, correct it through the release's lane."""
        service = target.service
        rules = self.config.rules(service)
        objects = self.ports.at(target.environment).objects
        if rules.mode is DriftMode.OFF:
            report = unchecked(service, rules.mode, "drift detection is off for this service")
        elif objects is None:
            report = unchecked(service, rules.mode, "the deployer has no Kubernetes API")
        elif self.lanes.running(target) is not None:
            report = unchecked(service, rules.mode, "a deployment is running")
        else:
            found = await self._observe(target, rules, objects)
            report = found.report if isinstance(found, Drift) else found
            # Flux corrects a gitops environment's drift: the deployer only reports it there.
            flux_owns = self.ports.at(target.environment).mode == "gitops"
            if report.drifted and rules.mode is DriftMode.CORRECT and not flux_owns:
                report = await self.lanes.after_deployments(
                    target, lambda: self._correct(target, rules, objects)
                )
        report = report.model_copy(update={"environment": target.environment or None})
        await self._note(target, report)
        return report

    async def _observe(
        self, target: Target, rules: DriftRules, objects: LiveObjects
    ) -> Drift | DriftReport:
        observed = await self.observer.observe(target)
        if observed.status is None:
            return unchecked(target.service, rules.mode, "the service is not installed")
        if observed.status != "deployed":
            return unchecked(target.service, rules.mode, f"its release is {observed.status}")
        try:
            return await check_drift(
                target.service, objects, observed.manifest or "", rules, observed.revision
            )
        except StepError as exc:
            return unchecked(target.service, rules.mode, str(exc))

    async def _correct(
        self, target: Target, rules: DriftRules, objects: LiveObjects
    ) -> DriftReport:
        """The correction act, in the lane: look again (a deployment may have run meanwhile),
        then apply what is still drifted."""
        found = await self._observe(target, rules, objects)
        if not isinstance(found, Drift) or not found.report.drifted:
            return found if isinstance(found, DriftReport) else found.report
        try:
            return await correct_drift(objects, found)
        except StepError as exc:
            return unchecked(target.service, rules.mode, f"the correction failed: {exc}")

    async def _note(self, target: Target, report: DriftReport) -> None:
        service = report.service
        previous = self._last.get(target)
        if report.error is None or previous is None:
            self._last[target] = report
        DRIFTED_FIELDS.labels(service, target.environment).set(len(report.fields))
        if report.drifted:
            log.warning("drift", extra={"service": service, "summary": report.summary()})
            # An event when the drift is new or different (a lasting drift is not repeated every
            # interval); each correction is one.
            if report.corrected:
                DRIFT_CORRECTIONS.labels(service, target.environment).inc()
            if report.corrected or previous is None or previous.fields != report.fields:
                await self.reporter.drift(report)

    async def loop(self, targets: Callable[[], list[Target]], interval: float) -> None:
        """Check every target every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            for target in targets():
                try:
                    await self.check(target)
                except Exception as exc:  # a failed check must not stop the loop
                    log.warning(
                        "drift check failed", extra={"service": target.service, "error": repr(exc)}
                    )
