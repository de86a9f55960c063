"""Promotion end to end over in-memory ports: a release flows dev -> staging -> prod through its
gates, with an injected clock and an in-memory metric source (tests/deployer/promotion_world.py).
Holds, freezes and restarts are in test_promotion_interruptions.py.

The same promoter runs in the real deployer process, with NATS, helm and the local control plane
(no metric analysis there: no Prometheus), in tests/deployer/test_deployer_environments.py.
"""

from __future__ import annotations

import pytest

from deploy_contract.events import DeployPhase
from deploy_contract.promotions import Gate, GateVerdict, PromotionState
from deployer.intake.checks import RejectedError
from deployer.promotion.model import Promotion
from deployer.records import Origin
from tests.deployer.promotion_world import BROKEN, HEALTHY, Flow, dev_to_prod, flow, gate


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


async def test_an_environment_that_runs_some_services_is_offered_only_theirs() -> None:
    made = flow(dev_to_prod(services=["auth"]))
    try:
        release = (await made.publish("1.1.0-bbbbbbb")).release_id
        assert release is not None
        assert made.promotions.promoted == {}  # prod does not run order
        assert [str(t) for t in made.orchestrator.targets("prod")] == []
        with pytest.raises(RejectedError, match=r"prod does not run order \(it runs auth\)"):
            await made.orchestrator.promotions.request(release, "prod", "someone")
        with pytest.raises(RejectedError, match="prod does not run order"):
            made.orchestrator.target("order", "prod")
    finally:
        await made.orchestrator.stop(1)
