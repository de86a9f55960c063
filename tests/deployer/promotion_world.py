"""The world of the in-memory promotion tests (platform/deployer/tests/promotion): a deployer of
``order`` over dev, staging and prod on memory ports, with a clock the test moves and the
metric numbers it sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deploy_contract.events import ArtifactPublished
from deploy_contract.promotions import Gate, GateVerdict
from deployer.canary.analysis import TrackNumbers
from deployer.orchestrator import Orchestrator
from deployer.promotion.environments import Environments
from deployer.promotion.model import Promotion
from deployer.records import DeploymentRecord, Origin
from deployer.settings import DeployerSettings
from deployer.targets import Target
from tests.deployer.memory_ports import (
    MemoryPromotions,
    MemoryPublisher,
    MemoryReleases,
    MemoryStore,
    memory_ports,
)

CHARTS = Path(__file__).resolve().parents[2] / "charts"
REPOSITORY = "registry.local/order-service"
ENVIRONMENTS: dict[str, Any] = {
    "environments": [
        {"name": "dev", "namespace": "flotilla-dev"},
        {
            "name": "staging",
            "namespace": "flotilla-staging",
            "upstream": "dev",
            "promotion": {"soakSeconds": 60, "analysis": {"minRequests": 10}},
        },
        {
            "name": "prod",
            "namespace": "flotilla-prod",
            "upstream": "staging",
            "promotion": {
                "soakSeconds": 120,
                "analysis": {"minSuccessRate": 0.99},
                "approval": True,
            },
        },
    ]
}


@dataclass
class Clock:
    """The promoter's clock: real time plus what the test moved it on."""

    offset: timedelta = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move the clock on."""
        self.offset += timedelta(seconds=seconds)


@dataclass
class Metrics:
    """The metric source: each namespace's numbers, as set by the test; the windows asked."""

    numbers: dict[str, TrackNumbers] = field(default_factory=dict)
    asked: list[tuple[str, float]] = field(default_factory=list)

    async def __call__(
        self, namespace: str, service: str, track: str, window: float, at: float | None
    ) -> TrackNumbers:
        self.asked.append((namespace, window))
        return self.numbers.get(namespace, TrackNumbers())


HEALTHY = TrackNumbers(requests=500, success_rate=1.0, p99_seconds=0.05)
BROKEN = TrackNumbers(requests=500, success_rate=0.8, p99_seconds=0.05)


@dataclass
class Flow:
    """An orchestrator over three environments in memory."""

    orchestrator: Orchestrator
    places: dict[str, MemoryReleases]
    store: MemoryStore
    events: MemoryPublisher
    promotions: MemoryPromotions
    clock: Clock
    metrics: Metrics

    async def publish(self, tag: str) -> DeploymentRecord:
        """CI publishes ``order`` at ``tag`` (it enters dev)."""
        request = ArtifactPublished(
            service="order",
            image=f"{REPOSITORY}:{tag}",
            commit=tag.rsplit("-", 1)[1],
            commit_time=datetime.now(UTC) - timedelta(hours=1),
            pipeline_id=f"run-{tag}",
        )
        record = await self.orchestrator.admission.enqueue(
            f"run-{tag}", request, Origin.PIPELINE, None
        )
        await self.settle()
        return self.store.records[record.id]

    async def settle(self) -> None:
        """Let the lanes finish and the promoter decide (twice: an outcome, then its gates)."""
        for _ in range(3):
            await self.orchestrator.wait_idle()
            await self.orchestrator.promoter.evaluate()
        await self.orchestrator.wait_idle()

    def promotion(self, release_id: str, environment: str) -> Promotion:
        """The promotion of a release into ``environment``."""
        return self.promotions.promoted[Promotion.id_of(release_id, environment)]

    def serving(self, environment: str) -> str | None:
        """The tag that serves in ``environment``."""
        state = self.store.states.get(Target(environment, "order"))
        return state.image.rsplit(":", 1)[1] if state and state.image else None


def flow(environments: dict[str, Any] = ENVIRONMENTS) -> Flow:
    """A deployer of ``order`` in dev, staging and prod (nothing installed yet)."""
    places = {name: MemoryReleases() for name in ("dev", "staging", "prod")}
    store, events, promotions = MemoryStore(), MemoryPublisher(), MemoryPromotions()
    metrics, clock = Metrics(), Clock()
    ports = memory_ports(places, store, events, promotions)
    ports.metrics = metrics
    settings = DeployerSettings(
        retry_seconds=0.001, fail_fast_restarts=0, prometheus_scrape_interval_seconds=5
    )
    orchestrator = Orchestrator(
        settings,
        ports,
        environments=Environments.model_validate(environments),
        charts={"order": CHARTS / "order"},
        clock=clock,
    )
    return Flow(orchestrator, places, store, events, promotions, clock, metrics)


def gate(promotion: Promotion, which: Gate) -> tuple[GateVerdict, str]:
    """One gate's verdict and reason."""
    found = next(g for g in promotion.gates if g.gate is which)
    return found.verdict, found.reason


def dev_to_prod(*, services: list[str] | None = None, **promotion: Any) -> dict[str, Any]:
    """dev -> prod, prod with ``promotion``'s rules (camelCase keys) and ``services``."""
    prod: dict[str, Any] = {"name": "prod", "namespace": "flotilla-prod", "upstream": "dev"}
    if promotion:
        prod["promotion"] = promotion
    if services is not None:
        prod["services"] = services
    return {"environments": [{"name": "dev", "namespace": "flotilla-dev"}, prod]}
