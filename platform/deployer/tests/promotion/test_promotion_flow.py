"""Promotion end to end over in-memory ports: a release flows dev -> staging -> prod through its
gates, with an injected clock and an in-memory metric source.

The same promoter runs in the real deployer process, with NATS, helm and the local control plane
(no metric analysis there: no Prometheus), in tests/deployer/test_deployer_environments.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.promotions import Gate, GateVerdict, PromotionState
from deployer.canary.analysis import TrackNumbers
from deployer.intake.checks import RejectedError
from deployer.orchestrator import Orchestrator
from deployer.promotion.environments import Environments
from deployer.promotion.model import Promotion
from deployer.promotion.requests import NotFoundError
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

CHARTS = Path(__file__).resolve().parents[4] / "charts"
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


@pytest.fixture
async def three() -> AsyncIterator[Flow]:
    made = flow()
    yield made
    await made.orchestrator.stop(1)


def gate(promotion: Promotion, which: Gate) -> tuple[GateVerdict, str]:
    """One gate's verdict and reason."""
    found = next(g for g in promotion.gates if g.gate is which)
    return found.verdict, found.reason


async def test_a_release_flows_dev_staging_prod_with_every_gate_recorded(three: Flow) -> None:
    three.metrics.numbers = {"flotilla-dev": HEALTHY, "flotilla-staging": HEALTHY}
    entered = await three.publish("1.1.0-bbbbbbb")
    assert entered.phase is DeployPhase.SUCCEEDED
    assert entered.environment == "dev"
    release = entered.release_id
    assert release is not None
    assert release.startswith("order-")

    into_staging = three.promotion(release, "staging")
    assert into_staging.state is PromotionState.WAITING
    assert gate(into_staging, Gate.VERIFIED)[0] is GateVerdict.PASSED
    verdict, reason = gate(into_staging, Gate.SOAK)
    assert verdict is GateVerdict.WAITING
    assert "soaking in dev until" in reason
    assert gate(into_staging, Gate.ANALYSIS)[0] is GateVerdict.NOT_REACHED

    three.clock.advance(61)
    await three.settle()
    into_staging = three.promotion(release, "staging")
    assert into_staging.state is PromotionState.PROMOTED, into_staging.reason
    verdict, reason = gate(into_staging, Gate.ANALYSIS)
    assert verdict is GateVerdict.PASSED
    assert "500 requests" in reason
    assert into_staging.analysis is not None
    assert into_staging.analysis.evidence["numbers"]["requests"] == 500
    [(namespace, window)] = three.metrics.asked
    assert namespace == "flotilla-dev"
    assert window == pytest.approx(61, abs=2)
    assert three.serving("staging") == "1.1.0-bbbbbbb"
    deployed = three.store.records[into_staging.deployment_id or ""]
    assert deployed.origin is Origin.PROMOTION
    assert deployed.release_id == release
    assert deployed.request is not None
    assert deployed.request.image.endswith("1.1.0-bbbbbbb")

    into_prod = three.promotion(release, "prod")
    three.clock.advance(121)
    await three.settle()
    into_prod = three.promotion(release, "prod")
    assert into_prod.state is PromotionState.WAITING
    verdict, reason = gate(into_prod, Gate.APPROVAL)
    assert verdict is GateVerdict.WAITING
    assert "approve" in reason
    await three.orchestrator.promotions.approve(into_prod.id, "ops", "release train 12")
    await three.settle()
    into_prod = three.promotion(release, "prod")
    assert into_prod.state is PromotionState.PROMOTED
    assert gate(into_prod, Gate.APPROVAL) == (
        GateVerdict.PASSED,
        "approved by ops: release train 12",
    )
    assert three.serving("prod") == "1.1.0-bbbbbbb"
    # Never rebuilt: the same image, commit and values in every environment.
    requests = [r.request for r in three.store.records.values() if r.release_id == release]
    assert len(requests) == 3
    assert len({(r.image, r.commit) for r in requests if r is not None}) == 1
    # Every decision went out as an event, the environment in every deploy event.
    promotion_events = [e for s, e in three.events.events if s == "deploy.order.promotion"]
    assert {e.data["environment"] for e in promotion_events if isinstance(e.data, dict)} == {
        "staging",
        "prod",
    }
    deploy_events = [e for s, e in three.events.events if s.startswith("deploy.order.")]
    environments = [e.data.get("environment") for e in deploy_events if isinstance(e.data, dict)]
    assert len(environments) == len(deploy_events)
    assert all(environments)


async def test_a_failed_analysis_in_staging_never_reaches_prod(three: Flow) -> None:
    three.metrics.numbers = {"flotilla-dev": HEALTHY, "flotilla-staging": HEALTHY}
    release = (await three.publish("1.1.0-bbbbbbb")).release_id
    assert release is not None
    three.clock.advance(61)
    await three.settle()
    assert three.serving("staging") == "1.1.0-bbbbbbb"

    three.metrics.numbers["flotilla-staging"] = BROKEN
    # A person asks for prod while the analysis is still to come: the gates still apply.
    queued = await three.orchestrator.promotions.request(release, "prod", "eager")
    assert queued.state is PromotionState.WAITING
    three.clock.advance(121)
    await three.settle()
    into_prod = three.promotion(release, "prod")
    assert into_prod.state is PromotionState.FAILED
    verdict, reason = gate(into_prod, Gate.ANALYSIS)
    assert verdict is GateVerdict.FAILED
    assert "success rate 80.0% is below the threshold 99.0%" in reason
    assert gate(into_prod, Gate.APPROVAL)[0] is GateVerdict.NOT_REACHED
    assert three.serving("prod") is None
    # Approving it now changes nothing: it is over.
    with pytest.raises(RejectedError, match="failed, not waiting"):
        await three.orchestrator.promotions.approve(into_prod.id, "ops", "")


async def test_no_traffic_is_inconclusive_never_a_pass(three: Flow) -> None:
    release = (await three.publish("1.1.0-bbbbbbb")).release_id
    assert release is not None
    three.clock.advance(61)
    await three.settle()
    into_staging = three.promotion(release, "staging")
    assert into_staging.state is PromotionState.WAITING
    verdict, reason = gate(into_staging, Gate.ANALYSIS)
    assert verdict is GateVerdict.WAITING
    assert "inconclusive (never a pass)" in reason
    assert three.serving("staging") is None


async def test_a_newer_release_supersedes_the_one_waiting(three: Flow) -> None:
    first = (await three.publish("1.1.0-bbbbbbb")).release_id
    second = (await three.publish("1.2.0-ccccccc")).release_id
    assert first is not None
    assert second is not None
    assert first != second
    assert three.promotion(first, "staging").state is PromotionState.SUPERSEDED
    assert second in three.promotion(first, "staging").reason
    assert three.promotion(second, "staging").state is PromotionState.WAITING


async def test_a_rollback_in_prod_holds_automatic_promotion_until_cleared() -> None:
    environments = {
        "environments": [
            {"name": "dev", "namespace": "flotilla-dev"},
            {"name": "prod", "namespace": "flotilla-prod", "upstream": "dev"},
        ]
    }
    made = flow(environments)
    try:
        await made.publish("1.1.0-bbbbbbb")
        assert made.serving("prod") == "1.1.0-bbbbbbb"
        await made.publish("1.2.0-ccccccc")
        assert made.serving("prod") == "1.2.0-ccccccc"
        rollback = await made.orchestrator.admission.enqueue_rollback("order", None, "prod")
        await made.settle()
        assert made.store.records[rollback.id].phase is DeployPhase.SUCCEEDED
        assert made.serving("prod") == "1.1.0-bbbbbbb"
        [hold] = made.promotions.held.values()
        assert hold.environment == "prod"
        assert rollback.id in hold.reason

        newer = (await made.publish("1.3.0-ddddddd")).release_id
        assert newer is not None
        waiting = made.promotion(newer, "prod")
        assert waiting.state is PromotionState.WAITING
        verdict, reason = gate(waiting, Gate.HOLD)
        assert verdict is GateVerdict.WAITING
        assert "held since" in reason
        assert made.serving("prod") == "1.1.0-bbbbbbb"  # automation did not undo the rollback

        await made.orchestrator.promotions.clear(Target("prod", "order"))
        await made.settle()
        assert made.promotion(newer, "prod").state is PromotionState.PROMOTED
        assert made.serving("prod") == "1.3.0-ddddddd"
        with pytest.raises(NotFoundError, match="no hold on order in prod"):
            await made.orchestrator.promotions.clear(Target("prod", "order"))
    finally:
        await made.orchestrator.stop(1)


async def test_bad_promotion_requests_are_refused_with_nothing_changed(three: Flow) -> None:
    release = (await three.publish("1.1.0-bbbbbbb")).release_id
    assert release is not None
    before = dict(three.promotions.promoted)
    promotions = three.orchestrator.promotions
    with pytest.raises(RejectedError, match="unknown environment 'qa': known environments are"):
        await promotions.request(release, "qa", "someone")
    with pytest.raises(RejectedError, match=r"never verified in staging, prod's upstream .*dev"):
        await promotions.request(release, "prod", "someone")
    with pytest.raises(RejectedError, match="where CI's releases enter"):
        await promotions.request(release, "dev", "someone")
    with pytest.raises(RejectedError, match="unknown release 'order-nope'"):
        await promotions.request("order-nope", "staging", "someone")
    with pytest.raises(RejectedError, match="overriding a freeze needs a reason"):
        await promotions.approve(
            Promotion.id_of(release, "staging"), "ops", " ", override_freeze=True
        )
    assert three.promotions.promoted == before


def at(instant: str) -> timedelta:
    """The clock offset that makes the promoter's now ``instant`` (UTC)."""
    return datetime.fromisoformat(instant) - datetime.now(UTC)


async def test_a_weekend_freeze_blocks_and_lifts_at_the_right_instants_across_dst() -> None:
    # Every Friday 18:00 to Monday 08:00 in Berlin; clocks spring forward on Sunday 2027-03-28,
    # so the weekend of 2027-03-26 starts at 17:00Z (CET) and lifts at 06:00Z (CEST).
    environments = {
        "environments": [
            {"name": "dev", "namespace": "flotilla-dev"},
            {
                "name": "prod",
                "namespace": "flotilla-prod",
                "upstream": "dev",
                "promotion": {
                    "freeze": [
                        {
                            "name": "weekend",
                            "reason": "nobody on call",
                            "timezone": "Europe/Berlin",
                            "start": "2027-01-01T18:00",
                            "end": "2027-01-04T08:00",
                            "rrule": "FREQ=WEEKLY;BYDAY=FR",
                        }
                    ]
                },
            },
        ]
    }
    made = flow(environments)
    try:
        made.clock.offset = at("2027-03-26T16:59:59+00:00")
        first = (await made.publish("1.1.0-bbbbbbb")).release_id
        assert made.serving("prod") == "1.1.0-bbbbbbb"  # a second before the freeze

        made.clock.offset = at("2027-03-26T17:00:00+00:00")
        second = (await made.publish("1.2.0-ccccccc")).release_id
        assert first is not None
        assert second is not None
        waiting = made.promotion(second, "prod")
        assert waiting.state is PromotionState.WAITING
        verdict, reason = gate(waiting, Gate.FREEZE)
        assert verdict is GateVerdict.WAITING
        assert reason.startswith(
            "frozen by weekend (nobody on call) until 2027-03-29 08:00 Europe/Berlin "
            "(2027-03-29T06:00Z)"
        )
        found = next(g for g in waiting.gates if g.gate is Gate.FREEZE)
        assert found.evidence["until"] == "2027-03-29T06:00:00+00:00"

        made.clock.offset = at("2027-03-29T05:59:59+00:00")
        await made.settle()
        assert made.promotion(second, "prod").state is PromotionState.WAITING
        assert made.serving("prod") == "1.1.0-bbbbbbb"

        made.clock.offset = at("2027-03-29T06:00:00+00:00")
        await made.settle()
        assert made.promotion(second, "prod").state is PromotionState.PROMOTED
        assert made.serving("prod") == "1.2.0-ccccccc"
    finally:
        await made.orchestrator.stop(1)


async def test_an_approval_with_a_reason_overrides_a_freeze() -> None:
    environments = {
        "environments": [
            {"name": "dev", "namespace": "flotilla-dev"},
            {
                "name": "prod",
                "namespace": "flotilla-prod",
                "upstream": "dev",
                "promotion": {
                    "freeze": [
                        {
                            "name": "year-end",
                            "timezone": "America/New_York",
                            "start": "2026-12-24T00:00",
                            "end": "2027-01-02T00:00",
                            "rrule": "FREQ=YEARLY",
                        }
                    ]
                },
            },
        ]
    }
    made = flow(environments)
    try:
        made.clock.offset = at("2027-12-25T12:00:00+00:00")
        release = (await made.publish("1.1.0-bbbbbbb")).release_id
        assert release is not None
        waiting = made.promotion(release, "prod")
        assert "until 2028-01-02 00:00 America/New_York (2028-01-02T05:00Z)" in waiting.reason
        await made.orchestrator.promotions.approve(waiting.id, "ops", "")  # no override
        await made.settle()
        assert made.promotion(release, "prod").state is PromotionState.WAITING
        await made.orchestrator.promotions.approve(
            waiting.id, "ops", "payment outage fix", override_freeze=True
        )
        await made.settle()
        promoted = made.promotion(release, "prod")
        assert promoted.state is PromotionState.PROMOTED
        verdict, reason = gate(promoted, Gate.FREEZE)
        assert verdict is GateVerdict.PASSED
        assert reason.endswith("overridden by ops: payment outage fix")
    finally:
        await made.orchestrator.stop(1)


async def test_a_restarted_deployer_offers_what_it_missed(three: Flow) -> None:
    request = ArtifactPublished(
        service="order",
        image=f"{REPOSITORY}:1.1.0-bbbbbbb",
        commit="bbbbbbb",
        pipeline_id="run-1",
    )
    record = await three.orchestrator.admission.enqueue("run-1", request, Origin.PIPELINE, None)
    await three.orchestrator.wait_idle()
    three.orchestrator.promoter._ended.clear()  # the deployer stopped before it took them in
    assert three.promotions.promoted == {}

    restarted = Orchestrator(
        DeployerSettings(retry_seconds=0.001),
        memory_ports(three.places, three.store, three.events, three.promotions),
        environments=Environments.model_validate(ENVIRONMENTS),
        charts={"order": CHARTS / "order"},
        clock=three.clock,
    )
    try:
        await restarted.resume()
        await restarted.promoter.evaluate()
        release = three.store.records[record.id].release_id
        assert release is not None
        assert three.promotion(release, "staging").state is PromotionState.WAITING
    finally:
        await restarted.stop(1)


async def test_the_dora_gauges_follow_the_ledger(three: Flow) -> None:
    from prometheus_client import REGISTRY

    await three.publish("1.1.0-bbbbbbb")
    await three.publish("1.2.0-ccccccc")
    per_day = REGISTRY.get_sample_value(
        "deployer_dora_deployments_per_day", {"service": "order", "environment": "dev"}
    )
    assert per_day == pytest.approx(2 / 30)
    lead_time = REGISTRY.get_sample_value(
        "deployer_dora_lead_time_seconds", {"service": "order", "environment": "dev"}
    )
    assert lead_time == pytest.approx(3600, abs=60)  # committed an hour before it was published
