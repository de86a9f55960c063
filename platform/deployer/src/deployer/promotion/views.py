"""Where each release stands in each environment, for the API and the dashboard."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from deploy_contract.events import DeployPhase
from deploy_contract.promotions import GateResult, PromotionState
from deployer.promotion.dora import DoraFigures, dora_figures
from deployer.promotion.environments import Environments
from deployer.promotion.model import Hold, Promotion
from deployer.promotion.ports import PromotionStore
from deployer.promotion.releases import Release
from deployer.records import DeploymentRecord, ServiceState
from deployer.report.ports import RecordStore
from deployer.targets import Target


class Standing(BaseModel):
    """A release in one environment."""

    environment: str
    status: str = Field(
        description="serving | replaced (it served, a later deployment replaced it) | deploying "
        "| failed | rolled_back | waiting (a promotion at a gate) | promoting | "
        "promotion_failed | not_reached"
    )
    reason: str = ""
    deployment_id: str | None = None
    promotion_id: str | None = None
    gates: list[GateResult] = Field(default_factory=list)


class ReleaseView(BaseModel):
    """A release and where it stands, environment by environment in promotion order."""

    release: Release
    environments: list[Standing]


def _standing(
    environment: str,
    release: Release,
    records: list[DeploymentRecord],
    promotion: Promotion | None,
    serving: ServiceState | None,
) -> Standing:
    mine = [r for r in records if r.release_id == release.id and r.environment == environment]
    last = mine[-1] if mine else None
    promotion_id = promotion.id if promotion else None
    gates = promotion.gates if promotion else []
    if last is not None and (promotion is None or promotion.state is not PromotionState.WAITING):
        if not last.phase.terminal:
            status = "deploying"
        elif last.phase is DeployPhase.SUCCEEDED or last.phase is DeployPhase.UNCHANGED:
            status = "serving" if serving and serving.image == release.image else "replaced"
        else:
            status = last.phase.value
        return Standing(
            environment=environment, status=status, reason=last.reason or "",
            deployment_id=last.id, promotion_id=promotion_id, gates=gates,
        )  # fmt: skip
    if promotion is not None:
        status = {
            PromotionState.WAITING: "waiting",
            PromotionState.PROMOTING: "promoting",
        }.get(promotion.state, f"promotion_{promotion.state.value}")
        return Standing(
            environment=environment, status=status, reason=promotion.reason,
            deployment_id=promotion.deployment_id, promotion_id=promotion.id, gates=gates,
        )  # fmt: skip
    return Standing(environment=environment, status="not_reached")


def release_views(
    environments: Environments,
    releases: list[Release],
    records: list[DeploymentRecord],
    promotions: list[Promotion],
    states: dict[Target, ServiceState],
) -> list[ReleaseView]:
    """Each release (newest first) with its standing in every environment."""
    by_id = {p.id: p for p in promotions}
    views = []
    for release in sorted(releases, key=lambda r: r.created_at, reverse=True):
        standings = [
            _standing(
                name,
                release,
                records,
                by_id.get(Promotion.id_of(release.id, name)),
                states.get(Target(name, release.service)),
            )
            for name in environments.names
        ]
        views.append(ReleaseView(release=release, environments=standings))
    return views


class Cell(BaseModel):
    """One service in one environment: what serves, the promotion coming in, any hold."""

    environment: str
    image: str | None = None
    release_id: str | None = None
    phase: DeployPhase | None = None
    deployment_id: str | None = None
    incoming: Promotion | None = Field(
        default=None, description="The promotion waiting or promoting into it, if any"
    )
    hold: Hold | None = None


class ServiceRow(BaseModel):
    """A service across the environments, in promotion order."""

    service: str
    environments: list[Cell]


def board(
    environments: Environments,
    services: list[str],
    states: dict[Target, ServiceState],
    records: dict[str, DeploymentRecord],
    promotions: list[Promotion],
    holds: list[Hold],
) -> list[ServiceRow]:
    """Per service, each environment's release and the state of the gates coming into it."""
    open_ = {p.target: p for p in promotions if not p.state.final}
    held = {h.target: h for h in holds}
    rows = []
    for service in services:
        cells = []
        for name in environments.names:
            target = Target(name, service)
            state = states.get(target)
            last = records.get(state.deployment_id) if state and state.deployment_id else None
            if last is not None and state is not None and last.image != state.image:
                last = None  # a rollback: the release that serves is an earlier one
            cells.append(
                Cell(
                    environment=name,
                    image=state.image if state else None,
                    release_id=last.release_id if last else None,
                    phase=state.phase if state else None,
                    deployment_id=state.deployment_id if state else None,
                    incoming=open_.get(target),
                    hold=held.get(target),
                )
            )
        rows.append(ServiceRow(service=service, environments=cells))
    return rows


class PromotionViews:
    """Read-only views over releases, promotions, holds and the deployment ledger."""

    def __init__(
        self,
        environments: Environments,
        services: list[str],
        records: RecordStore,
        promotions: PromotionStore,
    ) -> None:
        self._environments = environments
        self._services = services
        self._records = records
        self._promotions = promotions

    async def _states(self) -> dict[Target, ServiceState]:
        targets = [Target(e, s) for e in self._environments.names for s in self._services]
        found = [await self._records.service(target) for target in targets]
        return {state.target: state for state in found if state is not None}

    async def releases(self) -> list[ReleaseView]:
        """Every release, newest first, with its standing in each environment."""
        return release_views(
            self._environments,
            await self._promotions.releases(),
            await self._records.all(),
            await self._promotions.promotions(),
            await self._states(),
        )

    async def board(self) -> list[ServiceRow]:
        """Per service, each environment's release and the gates coming into it."""
        records = {r.id: r for r in await self._records.all()}
        return board(
            self._environments,
            self._services,
            await self._states(),
            records,
            await self._promotions.promotions(),
            await self._promotions.holds(),
        )

    async def dora(self, since: datetime, until: datetime) -> list[DoraFigures]:
        """The DORA figures of the ledger over [since, until)."""
        return dora_figures(await self._records.all(), since=since, until=until)
