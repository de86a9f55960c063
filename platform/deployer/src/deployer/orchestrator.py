"""The deployer's top-level object: it wires the parts of the reconcile loop and passes the
API's commands to them. It runs no helm, builds no events and keeps no state of its own.

    pipeline event -> Admission (intake checks) -> Lanes (one per target) -> Reconciler:
        observe (ReleaseObserver) -> decide (pure) -> act (acts/, through the ports)
    -> Reporter / Outcomes (records, deploy events, service state, metrics)
"""

from __future__ import annotations

from pathlib import Path

from deploy_contract.events import ArtifactPublished
from deployer.canary.registry import Canaries
from deployer.drift.config import DriftConfig
from deployer.drift.watch import DriftWatch
from deployer.intake.checks import Intake
from deployer.intake.policy import DeployPolicy
from deployer.plan import Plan
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
        environment: str = "development",
        drift: DriftConfig | None = None,
        charts: dict[str, Path] | None = None,
    ) -> None:
        self.environment = environment
        self.namespace = settings.namespace
        self.charts = charts if charts is not None else settings.service_charts()
        self.intake = Intake(
            self.charts, settings.values_dir, policy or DeployPolicy(), environment
        )
        self.reporter = Reporter(ports.store, ports.publisher)
        outcomes = Outcomes(self.reporter)
        self.observer = ReleaseObserver(ports.releases)
        self.canaries = Canaries(ports.store.get)
        self.lanes = Lanes(self._run, outcomes.superseded, settings.max_concurrent)
        self.approvals = Approvals(self.reporter, outcomes, self._submit)
        self.admission = Admission(
            environment, self.intake, self._submit, self.approvals, self.reporter, outcomes
        )
        self.planner = Planner(ports.releases, ports.objects, self.intake, self.charts)
        crew = Crew(
            settings,
            self.charts,
            ports,
            self.observer,
            self.intake,
            self.reporter,
            outcomes,
            self.approvals,
            self.canaries,
            self.lanes.queued,
        )
        self.reconciler = Reconciler(crew, self.planner, self._gauges)
        self.drift = DriftWatch(
            drift or DriftConfig(), ports.objects, self.observer, self.lanes, self.reporter
        )
        self.views = ReleaseViews(ports.releases, ports.store, self.lanes, self.drift)

    @property
    def services(self) -> list[str]:
        """The deployable services (one chart each)."""
        return self.intake.services

    def target(self, service: str) -> Target:
        """The target of ``service`` in this deployer's environment (RejectedError: unknown)."""
        return Target(self.environment, self.intake.known(service))

    def targets(self) -> list[Target]:
        """Every target this deployer serves."""
        return [Target(self.environment, service) for service in self.services]

    async def plan(self, request: ArtifactPublished) -> Plan:
        """What ``request`` would change, asked of the API server; changes nothing."""
        checked = await self.admission.check(request)
        return await self.planner.preview(self.target(checked.service), checked)

    async def resume(self) -> int:
        """After a restart: the unfinished deployments back in their lanes."""
        resumed = await self.admission.resume()
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
        await self.lanes.submit(record)
        self._gauges()

    def _gauges(self) -> None:
        QUEUE_DEPTH.set(self.lanes.queue_depth())
        BUSY_LANES.set(self.lanes.busy())
