"""What stops or interrupts promotion, over in-memory ports: a hold after a rollback, a freeze
calendar (across a daylight-saving change, and an approval that overrides it), and a deployer
that restarts before it took in an outcome. The in-memory deployer is
tests/deployer/promotion_world.py; the flow through the gates is in test_promotion_flow.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.promotions import Gate, GateVerdict, PromotionState
from deployer.orchestrator import Orchestrator
from deployer.promotion.environments import Environments
from deployer.promotion.requests import NotFoundError
from deployer.records import Origin
from deployer.settings import DeployerSettings
from deployer.targets import Target
from tests.deployer.memory_ports import memory_ports
from tests.deployer.promotion_world import (
    CHARTS,
    ENVIRONMENTS,
    REPOSITORY,
    Flow,
    dev_to_prod,
    flow,
    gate,
)


async def test_a_rollback_in_prod_holds_automatic_promotion_until_cleared() -> None:
    made = flow(dev_to_prod())
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


def at(instant: str) -> timedelta:
    """The clock offset that makes the promoter's now ``instant`` (UTC)."""
    return datetime.fromisoformat(instant) - datetime.now(UTC)


async def test_a_weekend_freeze_blocks_and_lifts_at_the_right_instants_across_dst() -> None:
    # Every Friday 18:00 to Monday 08:00 in Berlin; clocks spring forward on Sunday 2027-03-28,
    # so the weekend of 2027-03-26 starts at 17:00Z (CET) and lifts at 06:00Z (CEST).
    weekend = {
        "name": "weekend",
        "reason": "nobody on call",
        "timezone": "Europe/Berlin",
        "start": "2027-01-01T18:00",
        "end": "2027-01-04T08:00",
        "rrule": "FREQ=WEEKLY;BYDAY=FR",
    }
    made = flow(dev_to_prod(freeze=[weekend]))
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
    year_end = {
        "name": "year-end",
        "timezone": "America/New_York",
        "start": "2026-12-24T00:00",
        "end": "2027-01-02T00:00",
        "rrule": "FREQ=YEARLY",
    }
    made = flow(dev_to_prod(freeze=[year_end]))
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
