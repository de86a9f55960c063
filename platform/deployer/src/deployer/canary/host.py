"""The deployer's side of a canary: each move is the upgrade act (with fail-fast on pods that
cannot run), each measurement a Prometheus query, each status a ``canary`` event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deploy_contract.events import CanaryStatus, DeployPhase, PodProblem, RolloutProgress
from deployer.actions import Outcome, retry_or_final, with_pod_problems
from deployer.acts.upgrade import upgrade
from deployer.adapters.helm import Helm, HelmError
from deployer.canary.analysis import Measurement, Thresholds, TrackNumbers, Verdict, measure
from deployer.canary.prometheus import PrometheusError, PrometheusQueries
from deployer.kubeobjects import KubeApiError
from deployer.observe import observe
from deployer.podproblems import cannot_run
from deployer.progress import Cluster
from deployer.records import DeploymentRecord
from deployer.settings import DeployerSettings

log = logging.getLogger(__name__)


@dataclass
class ReleaseCanaryHost:
    """Moves, measures and reports one deployment's canary."""

    helm: Helm
    settings: DeployerSettings
    record: DeploymentRecord
    chart: Path
    cluster: Cluster | None
    queries: PrometheusQueries | None
    publish: Callable[[CanaryStatus], Awaitable[None]]
    newer_deployment: Callable[[], str | None]

    async def move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        """One ``helm upgrade --wait``, tried again on transient errors (retry_or_final);
        ``watch``: stopped early (helm rolls back) once the new canary pods cannot run. Never
        raises for helm or the API: a canary must always get to restore the stable pods."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._move(values, description, watch)
            except (HelmError, KubeApiError) as exc:
                if retry_or_final(exc, attempt) == "final":
                    return Outcome(
                        DeployPhase.FAILED, f"helm kept failing after {attempt} tries: {exc}"
                    )
                log.warning(
                    "a canary move failed transiently; retrying",
                    extra={"deployment_id": self.record.id, "attempt": attempt},
                )
                await asyncio.sleep(self.settings.retry_seconds * attempt)

    async def _move(self, values: dict[str, Any], description: str, watch: bool) -> Outcome:
        observed = await observe(self.helm, self.record.service)
        give_up = asyncio.Event()
        problems: list[PodProblem] = []
        watcher = self._watch_canary(give_up, problems) if watch else None
        try:
            outcome = await upgrade(
                self.helm, self.settings, self.record, self.chart, values, observed,
                stop=give_up, description=description or None,
            )  # fmt: skip
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        if outcome.phase is not DeployPhase.SUCCEEDED and give_up.is_set():
            outcome = replace(outcome, reason=f"the canary's pods cannot run; {outcome.reason}")
        if outcome.phase is not DeployPhase.SUCCEEDED and problems:
            outcome = with_pod_problems(outcome, problems)
        return outcome

    def _watch_canary(
        self, give_up: asyncio.Event, problems: list[PodProblem]
    ) -> asyncio.Task[None] | None:
        if self.cluster is None or not self.settings.fail_fast_restarts:
            return None
        restarts = self.settings.fail_fast_restarts

        async def seen(progress: RolloutProgress) -> None:
            if progress.problems:
                problems[:] = progress.problems
                if cannot_run(progress.problems, restarts) and not give_up.is_set():
                    log.warning(
                        "the canary's pods cannot run; stopping helm, which rolls back",
                        extra={"deployment_id": self.record.id},
                    )
                    give_up.set()

        return asyncio.create_task(self.cluster.watch(self.record.service, seen, track="canary"))

    async def measure(self, window_seconds: float, thresholds: Thresholds) -> Measurement:
        """The canary against the stable pods; without a Prometheus, or when it cannot be
        asked, inconclusive (never a pass) with the reason."""
        if self.queries is None:
            return self._inconclusive(
                window_seconds,
                thresholds,
                "no Prometheus to measure the canary with: set DEPLOYER_PROMETHEUS_URL",
            )
        try:
            return await measure(
                self.queries, self.settings.namespace, self.record.service, window_seconds,
                thresholds,
            )  # fmt: skip
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
