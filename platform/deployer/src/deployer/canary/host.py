"""The deployer's side of a canary: each move is the upgrade act (retried on transient errors,
stopped early once the canary's pods cannot run), each measurement a query of the metrics, each
status a ``canary`` event."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from deploy_contract.events import CanaryStatus, DeployPhase
from deployer.adapters.prometheus import PrometheusError
from deployer.canary.analysis import Measurement, Thresholds, TrackNumbers, Verdict, measure
from deployer.reconcile.acts.upgrade import upgrade
from deployer.reconcile.context import Crew
from deployer.reconcile.decide import kept_failing
from deployer.reconcile.retry import GaveUpError, retried
from deployer.reconcile.state import Outcome
from deployer.reconcile.watch import PodWatch
from deployer.records import DeploymentRecord


@dataclass
class ReleaseCanaryHost:
    """Moves, measures and reports one deployment's canary."""

    crew: Crew
    record: DeploymentRecord
    publish: Callable[[CanaryStatus], Awaitable[None]]
    newer_deployment: Callable[[], str | None]

    async def move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        """One ``helm upgrade --wait``, tried again on transient errors; ``watch``: stopped early
        (helm rolls back) once the new canary pods cannot run. Never raises for helm or the API:
        a canary must always get to restore the stable pods."""
        try:
            return await retried(
                lambda: self._move(values, description, watch),
                delay_seconds=self.crew.settings.retry_seconds,
                what="a canary move",
                context={"deployment_id": self.record.id},
            )
        except GaveUpError as gave_up:
            return Outcome(DeployPhase.FAILED, kept_failing(gave_up.error, gave_up.attempts))

    async def _move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        crew = self.crew
        observed = await crew.observer.status(self.record.target)
        pods = PodWatch(
            crew.ports.at(self.record.environment).rollouts if watch else None,
            self.record.target.release,
            crew.settings.fail_fast_restarts,
            pods="the canary's pods",
            track="canary",
            deployment_id=self.record.id,
        )
        return await upgrade(
            crew, self.record, values, observed, pods, description=description or None
        )

    async def measure(self, window_seconds: float, thresholds: Thresholds) -> Measurement:
        """The canary against the stable pods; without metrics, or when they cannot be asked,
        inconclusive (never a pass) with the reason."""
        source = self.crew.ports.metrics
        if source is None:
            return self._inconclusive(
                window_seconds,
                thresholds,
                "no Prometheus to measure the canary with: set DEPLOYER_PROMETHEUS_URL",
            )
        namespace = self.crew.ports.at(self.record.environment).namespace
        try:
            return await measure(source, namespace, self.record.service, window_seconds, thresholds)
        except (PrometheusError, ValueError) as exc:
            return self._inconclusive(
                window_seconds, thresholds, f"Prometheus could not be asked: {exc}"
            )

    @staticmethod
    def _inconclusive(window_seconds: float, thresholds: Thresholds, reason: str) -> Measurement:
        return Measurement(
            verdict=Verdict.INCONCLUSIVE, canary=TrackNumbers(), stable=TrackNumbers(),
            window_seconds=window_seconds, broken=(), reason=reason, thresholds=thresholds,
        )  # fmt: skip

    async def report(self, status: CanaryStatus) -> None:
        """A ``canary`` event; a failure to publish never stops the canary."""
        with contextlib.suppress(Exception):
            await self.publish(status)

    def newer(self) -> str | None:
        """The newer deployment of the service that waits, if any."""
        return self.newer_deployment()
