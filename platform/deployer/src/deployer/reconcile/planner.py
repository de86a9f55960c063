"""The plan of a deployment: its values rendered, then each object dry-run applied against the
live one (or, without a cluster, compared with the release's recorded manifest); with the
approvals the deploy policy wants for it, and the canary to run when the service has one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy_contract.events import ArtifactPublished
from deploy_contract.images import parse_image
from deployer.canary.strategy import CanaryStrategy, canary_strategy
from deployer.intake.checks import Intake
from deployer.intake.policy import approvals_needed
from deployer.plan import Plan, plan_release
from deployer.plan.live import plan_on_server, read_live
from deployer.reconcile.decide import Planned
from deployer.reconcile.ports import Ports
from deployer.reconcile.state import Observation
from deployer.records import DeploymentRecord
from deployer.targets import Target


def _no_step(_name: str) -> None:
    pass


class Planner:
    """Plans deployments; changes nothing."""

    def __init__(
        self,
        ports: Ports,
        intakes: Mapping[str, Intake],
        charts: dict[str, Path],
    ) -> None:
        self._ports = ports
        self._intakes = intakes
        self._charts = charts

    def values(self, target: Target, request: ArtifactPublished) -> dict[str, Any]:
        """The environment's values file < the request's values < its image (helm adds the
        chart's defaults). Nothing carries over from the previous release: what the plan
        renders is what gets applied."""
        return self._intakes[target.environment].release_values(request)

    async def render(
        self,
        target: Target,
        values: dict[str, Any],
        recorded: str | None,
        on_step: Callable[[str], None] = _no_step,
    ) -> tuple[Plan, str]:
        """The plan of ``values`` against the release whose manifest is ``recorded``, and the
        manifest it rendered; ``on_step`` is told when the rendering and the plan are done."""
        place = self._ports.at(target.environment)
        objects = place.objects
        # The release's objects as they are now, read while helm renders the new ones.
        reading = asyncio.ensure_future(read_live(objects, recorded)) if objects else None
        try:
            rendered = await place.releases.template(
                target.release, self._charts[target.service], values
            )
        except BaseException:
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            raise
        on_step("render")
        if objects is None or reading is None:
            plan = plan_release(target.service, recorded, rendered)
        else:
            live = await reading
            plan = await plan_on_server(target.service, objects, recorded, rendered, live)
        on_step("dry-run")
        return plan, rendered

    async def preview(self, target: Target, request: ArtifactPublished) -> Plan:
        """What ``request`` would change in ``target``'s release now (asked of Helm)."""
        releases = self._ports.at(target.environment).releases
        recorded = await releases.get_manifest(target.release)
        plan, _ = await self.render(target, self.values(target, request), recorded)
        return plan

    async def plan(
        self,
        record: DeploymentRecord,
        observed: Observation,
        on_step: Callable[[str], None] = _no_step,
    ) -> tuple[Planned, dict[str, Any], str]:
        """The plan of ``record`` against the release as ``observed``, its values and the
        manifest it rendered; ``on_step`` is told of each step done."""
        assert record.request is not None
        values = self.values(record.target, record.request)
        plan, rendered = await self.render(record.target, values, observed.manifest, on_step)
        rules = self._intakes[record.environment].rules(record.service)
        needed = approvals_needed(plan, rules) if rules.require_approval else []
        canary = self._canary(record, values, observed)
        return Planned(plan, tuple(needed), canary), values, rendered

    def _canary(
        self, record: DeploymentRecord, values: dict[str, Any], observed: Observation
    ) -> CanaryStrategy | None:
        """The canary of this deployment: its service's strategy is canary, a release serves
        already, and the image changes (a first install, or a change of values alone, rolls)."""
        if record.request is None or observed.status != "deployed" or observed.image is None:
            return None
        if self._ports.at(record.environment).mode == "gitops":
            return None  # Flux rolls a gitops environment's releases (no canary steps)
        intake = self._intakes[record.environment]
        strategy = canary_strategy(intake.merged(record.service, values))
        if strategy is None or record.canary is not None:  # resumed: finish the canary
            return strategy
        new = parse_image(record.request.image)
        # Helm's status has no digest: the repository and the tag name the image that runs.
        if (new.repository, new.tag) == (observed.image.repository, observed.image.tag):
            return None
        return strategy
