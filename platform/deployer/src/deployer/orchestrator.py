"""The deployer's top-level object: it wires the parts of the reconcile loop and passes the
API's commands to them. It runs no helm, builds no events and keeps no state of its own.

    pipeline event -> Admission (intake checks) -> Lanes (one per target) -> Reconciler:
        observe (ReleaseObserver) -> decide (pure) -> act (acts/, through the ports)
    -> Reporter / Outcomes (records, deploy events, service state, metrics)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from deploy_contract.events import ArtifactPublished
from deployer.canary.registry import Canaries
from deployer.drift.config import DriftConfig
from deployer.drift.watch import DriftWatch
from deployer.intake.checks import Intake, RejectedError
from deployer.intake.policy import DeployPolicy
from deployer.plan import Plan
from deployer.promotion.environments import Environments, EnvironmentSpec
from deployer.promotion.promoter import Promoter
from deployer.promotion.requests import PromotionRequests
from deployer.promotion.views import PromotionViews
from deployer.queue.admission import Admission
from deployer.queue.approvals import Approvals
from deployer.queue.lanes import Lanes
from deployer.reconcile.context import Crew
from deployer.reconcile.loop import Reconciler
from deployer.reconcile.observe import ReleaseObserver
from deployer.reconcile.planner import Planner
from deployer.reconcile.ports import Ports
from deployer.records import DeploymentRecord
from deployer.report.events import Reporter
from deployer.report.metrics import BUSY_LANES, QUEUE_DEPTH
from deployer.report.outcomes import Outcomes
from deployer.report.views import ReleaseViews
from deployer.settings import DeployerSettings
from deployer.targets import Target


class Orchestrator:
    """Turns accepted deployments into releases, one lane per target."""

    def __init__(
        self,
        settings: DeployerSettings,
        ports: Ports,
        policy: DeployPolicy | None = None,
        environments: Environments | None = None,
        drift: DriftConfig | None = None,
        charts: dict[str, Path] | None = None,
        clock: Callable[[], datetime] | None = None,
        holds: Callable[[Target], bool] | None = None,
    ) -> None:
        self.environments = environments or Environments(
            environments=[EnvironmentSpec(name="development", namespace=settings.namespace)]
        )
        self.environment = self.environments.entry.name
        # Whether this replica holds a target's lane (one replica alone: always).
        self._holds = holds or (lambda _target: True)
        self.charts = charts if charts is not None else settings.service_charts()
        self.intakes = {
            spec.name: Intake(
                self.charts, spec.values_dir or settings.values_dir, policy or DeployPolicy(),
                spec.name,
            )
            for spec in self.environments.environments
        }  # fmt: skip
        self.intake = self.intakes[self.environment]
        self.reporter = Reporter(ports.store, ports.publisher)
        outcomes = Outcomes(self.reporter)
        self.observer = ReleaseObserver(ports)
        self.canaries = Canaries(ports.store.get)
        self.lanes = Lanes(self._run, outcomes.superseded, settings.max_concurrent)
        self.approvals = Approvals(self.reporter, outcomes, self._submit)
        scrape = settings.prometheus_scrape_interval_seconds
        self.promoter = Promoter(
            self.environments,
            {spec.name: spec.namespace for spec in self.environments.environments},
            ports.metrics,
            ports.promotions,
            ports.store,
            lambda promotion: self.reporter.promotion(promotion.event()),
            self.charts,
            min_window_seconds=2 * scrape,
            measure_every_seconds=scrape,
            **({"clock": clock} if clock else {}),
        )
        self.admission = Admission(
            self.environments, self.intakes, self._submit, self.approvals, self.reporter,
            outcomes, release_of=self.promoter.release_of,
        )  # fmt: skip
        self.promoter.connect(self.admission.promote)
        outcomes.listeners.append(self.promoter.concluded)
        self.promotions = PromotionRequests(self.promoter)
        self.promotion_views = PromotionViews(
            self.environments, self.services, ports.store, ports.promotions
        )
        self.planner = Planner(ports, self.intakes, self.charts)
        crew = Crew(
            settings,
            self.charts,
            ports,
            self.observer,
            self.intakes,
            self.reporter,
            outcomes,
            self.approvals,
            self.canaries,
            self.lanes.queued,
        )
        self.reconciler = Reconciler(crew, self.planner, self._gauges)
        self.drift = DriftWatch(
            drift or DriftConfig(), ports, self.observer, self.lanes, self.reporter
        )
        self.views = ReleaseViews(ports, ports.store, self.lanes, self.drift)

    @property
    def services(self) -> list[str]:
        """The deployable services (one chart each)."""
        return self.intake.services

    def target(self, service: str, environment: str | None = None) -> Target:
        """The target of ``service`` in ``environment`` (default: where CI's releases enter);
        RejectedError for an unknown service or environment."""
        spec = self.environments.get(environment) if environment else self.environments.entry
        known = self.intake.known(service)
        if not spec.runs(known):
            raise RejectedError(
                f"{spec.name} does not run {known} (it runs {', '.join(spec.services or [])})"
            )
        return Target(spec.name, known)

    def targets(self, environment: str | None = None) -> list[Target]:
        """Every target this deployer serves (in ``environment``, when given)."""
        specs = [self.environments.get(environment)] if environment else None
        return [
            Target(spec.name, service)
            for spec in specs or self.environments.ordered()
            for service in self.services
            if spec.runs(service)
        ]

    async def plan(self, request: ArtifactPublished, environment: str | None = None) -> Plan:
        """What ``request`` would change, asked of the API server; changes nothing."""
        target = self.target(request.service, environment)
        checked = await self.admission.check(request, target.environment)
        return await self.planner.preview(target, checked)

    async def resume(self) -> int:
        """After a restart: the unfinished deployments back in their lanes."""
        resumed = await self.admission.resume()
        await self.promoter.resume()
        self._gauges()
        return resumed

    async def resume_lanes(self, targets: list[Target]) -> int:
        """This replica has just claimed ``targets``' lanes: their unfinished deployments back
        in them (a release a previous holder left pending is recovered by the first pass)."""
        resumed = await self.admission.resume(set(targets))
        self._gauges()
        return resumed

    async def wait_idle(self) -> None:
        """Wait for every lane to finish (tests and benchmarks)."""
        await self.lanes.wait_idle()

    async def stop(self, timeout: float) -> None:
        """Shutdown: finish or cancel the running deployments."""
        await self.lanes.stop(timeout)

    async def _run(self, record: DeploymentRecord) -> None:
        await self.reconciler.run(record)

    async def _submit(self, record: DeploymentRecord) -> None:
        if not self._holds(record.target):
            # Recorded as queued: the lane's holder (this replica, once it claims the lane)
            # resumes it from the records.
            return
        await self.lanes.submit(record)
        self._gauges()

    def _gauges(self) -> None:
        QUEUE_DEPTH.set(self.lanes.queue_depth())
        BUSY_LANES.set(self.lanes.busy())
