"""Deploy events are stored once per transition by a real DEPLOY stream, whichever replica
publishes them and however often: their ids come from what they report, not from a clock."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy_contract.drift import DriftedField, DriftMode, DriftReport
from deploy_contract.events import CanaryState, CanaryStatus, DeployPhase, RolloutProgress
from deploy_contract.promotions import (
    Gate,
    GateResult,
    GateVerdict,
    PromotionEventData,
    PromotionState,
)
from deployer.adapters.store import Store
from deployer.records import DeploymentRecord
from deployer.report.events import Reporter
from devkit.localstack.nats import NatsServer
from kit.events import EventBus
from kit.events.streams import DEPLOY
from kit.settings import NatsSettings


@dataclass
class Replicas:
    """Two deployer replicas over one NATS: each its own connection and Reporter, one store."""

    store: Store
    one: Reporter
    two: Reporter
    bus: EventBus

    async def stored(self, service: str) -> int:
        """How many events of ``service`` the DEPLOY stream holds."""
        info = await self.bus.js.stream_info(DEPLOY.name, subjects_filter=f"deploy.{service}.>")
        return sum((info.state.subjects or {}).values())

    async def last(self, service: str, phase: str) -> dict[str, Any]:
        """The data of the last ``deploy.<service>.<phase>`` event stored."""
        message = await self.bus.js.get_msg(DEPLOY.name, subject=f"deploy.{service}.{phase}")
        data: dict[str, Any] = json.loads(message.data or b"")["data"]
        return data


@pytest.fixture(scope="module")
def deploy_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of this module's own: the DEPLOY stream is one per server."""
    server = NatsServer(Path(tmp_path_factory.mktemp("deploy-events")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def replicas(deploy_nats: NatsServer) -> AsyncIterator[Replicas]:
    buses = [
        EventBus(NatsSettings(url=deploy_nats.url), client_name=f"deployer-{n}") for n in (1, 2)
    ]
    for bus in buses:
        await bus.connect()
        await bus.ensure_streams([DEPLOY])
    store = await Store.open(buses[0].js, replicas=1)
    yield Replicas(store, Reporter(store, buses[0]), Reporter(store, buses[1]), buses[0])
    for bus in buses:
        await bus.drain()


def a_service() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


def started(service: str) -> DeploymentRecord:
    received = DeploymentRecord(
        id=f"run-{uuid.uuid4().hex[:8]}",
        service=service,
        environment="dev",
        phase=DeployPhase.QUEUED,
        received_at=datetime.now(UTC),
    )
    return received.moved_to(DeployPhase.QUEUED).moved_to(DeployPhase.STARTED)


async def test_a_transition_published_by_two_replicas_is_stored_once(replicas: Replicas) -> None:
    service = a_service()
    record = started(service)

    await replicas.one.record(record)
    await replicas.two.record(record)

    assert await replicas.stored(service) == 1
    await replicas.two.record(record.moved_to(DeployPhase.SUCCEEDED))
    assert await replicas.stored(service) == 2


async def test_republishing_a_published_transition_stores_nothing_new(
    replicas: Replicas,
) -> None:
    service = a_service()
    record = started(service)
    await replicas.one.record(record)

    await replicas.two.republish(record)
    await replicas.one.republish(record)

    assert await replicas.stored(service) == 1


async def test_republishing_a_saved_but_unpublished_transition_stores_it_once(
    replicas: Replicas,
) -> None:
    service = a_service()
    record = started(service)
    ended = record.moved_to(DeployPhase.SUPERSEDED, "superseded by run-new").model_copy(
        update={"superseded_by": "run-new"}
    )
    await replicas.store.put(ended)  # replica one saved it, then died before publishing

    saved = await replicas.store.get(ended.id)
    assert saved is not None
    await replicas.two.republish(saved)
    await replicas.two.republish(saved)

    assert await replicas.stored(service) == 1
    data = await replicas.last(service, "superseded")
    assert data["superseded_by"] == "run-new"
    assert data["deployment_id"] == ended.id


async def test_a_superseded_records_newer_deployment_is_saved_with_it(
    replicas: Replicas,
) -> None:
    record = started(a_service()).moved_to(DeployPhase.SUPERSEDED)

    await replicas.one.record(record, superseded_by="run-newer")

    saved = await replicas.store.get(record.id)
    assert saved is not None
    assert saved.superseded_by == "run-newer"
    assert (await replicas.last(record.service, "superseded"))["superseded_by"] == "run-newer"


async def test_each_progress_state_is_one_event(replicas: Replicas) -> None:
    service = a_service()
    record = started(service)
    rolling = RolloutProgress(desired=3, updated=1, ready=2, available=2)
    further = RolloutProgress(desired=3, updated=2, ready=2, available=2)

    for reporter in (replicas.one, replicas.two):
        await reporter.publish(record, DeployPhase.PROGRESSING, progress=rolling)
    assert await replicas.stored(service) == 1

    await replicas.two.publish(record, DeployPhase.PROGRESSING, progress=further)
    assert await replicas.stored(service) == 2
    # The same counts in a later rollout of the deployment (after a retry) are news.
    again = record.moved_to(DeployPhase.STARTED)
    await replicas.one.publish(again, DeployPhase.PROGRESSING, progress=rolling)
    assert await replicas.stored(service) == 3


async def test_each_canary_status_is_one_event(replicas: Replicas) -> None:
    service = a_service()
    analysing = CanaryStatus(
        state=CanaryState.ANALYSING,
        steps=["setWeight 20", "analysis 1m", "setWeight 50"],
        step=1,
        weight=20,
        stable_replicas=4,
        canary_replicas=1,
    )
    # The canary reports each status on the record it started with, as the canary act does.
    record = started(service)

    async def report(reporter: Reporter, status: CanaryStatus) -> None:
        await reporter.canary(record.model_copy(update={"canary": status}))

    await report(replicas.one, analysing)
    await report(replicas.one, analysing)  # published again: its answer was lost
    await report(replicas.two, analysing)  # the replica that took the canary over
    assert await replicas.stored(service) == 1

    paused = analysing.model_copy(update={"state": CanaryState.PAUSED, "reason": "paused by ann"})
    await report(replicas.two, paused)
    await report(replicas.two, analysing)  # resumed: where it was before the pause
    assert await replicas.stored(service) == 3
    scaled = analysing.model_copy(update={"step": 2, "weight": 50, "state": CanaryState.SCALING})
    await report(replicas.two, scaled)
    assert await replicas.stored(service) == 4
    saved = await replicas.store.get(record.id)
    assert saved is not None
    assert saved.canary == scaled
    assert saved.canary_reports == 4


def promotion(
    service: str, state: PromotionState, decided_at: datetime, created_at: datetime
) -> PromotionEventData:
    return PromotionEventData(
        promotion_id=f"rel-1.{service}.prod",
        release_id="rel-1",
        service=service,
        source="staging",
        environment="prod",
        image=f"registry.local/{service}:1",
        commit="abc123",
        state=state,
        reason="waiting for its gates",
        created_at=created_at,
        gates=[
            GateResult(
                gate=Gate.SOAK,
                verdict=GateVerdict.WAITING,
                reason="soaking for 10m",
                evidence={"soaked_seconds": decided_at.timestamp() % 600},
                decided_at=decided_at,
            )
        ],
    )


async def test_a_promotion_event_is_one_per_state_and_gate_outcomes(replicas: Replicas) -> None:
    service = a_service()
    asked = datetime.now(UTC)
    now = asked + timedelta(seconds=1)

    await replicas.one.promotion(promotion(service, PromotionState.WAITING, now, asked))
    # Another replica decides the same gates a moment later: the same news.
    later = now + timedelta(seconds=7)
    await replicas.two.promotion(promotion(service, PromotionState.WAITING, later, asked))
    assert await replicas.stored(service) == 1

    await replicas.two.promotion(promotion(service, PromotionState.CANCELLED, later, asked))
    assert await replicas.stored(service) == 2
    # Asked for again after it ended: a new promotion of the same id, waiting as the first did.
    again = later + timedelta(minutes=1)
    await replicas.one.promotion(promotion(service, PromotionState.WAITING, again, again))
    assert await replicas.stored(service) == 3


def drift(service: str, image: str, checked_at: datetime, corrected: bool = False) -> DriftReport:
    return DriftReport(
        service=service,
        environment="dev",
        mode=DriftMode.CORRECT if corrected else DriftMode.WARN,
        checked_at=checked_at,
        revision=4,
        fields=[
            DriftedField(
                object=f"Deployment/{service}",
                path=f"containers[{service}].image",
                before=image,
                after=f"{service}:1",
            )
        ],
        corrected=corrected,
    )


async def test_a_drift_is_one_event_until_it_changes(replicas: Replicas) -> None:
    service = a_service()
    now = datetime.now(UTC)

    await replicas.one.drift(drift(service, "hand-edited:1", now))
    # A replica that restarted (or took the target over) finds the same drift again.
    await replicas.two.drift(drift(service, "hand-edited:1", now + timedelta(minutes=1)))
    assert await replicas.stored(service) == 1

    await replicas.two.drift(drift(service, "hand-edited:2", now + timedelta(minutes=2)))
    assert await replicas.stored(service) == 2


async def test_each_correction_of_a_drift_is_an_event(replicas: Replicas) -> None:
    service = a_service()
    now = datetime.now(UTC)
    first = drift(service, "hand-edited:1", now, corrected=True)

    await replicas.one.drift(first)
    await replicas.one.drift(first)  # the same correction, published again
    await replicas.one.drift(drift(service, "hand-edited:1", now + timedelta(minutes=5), True))

    assert await replicas.stored(service) == 2


async def test_the_deploy_stream_remembers_event_ids_for_a_day(replicas: Replicas) -> None:
    info = await replicas.bus.js.stream_info(DEPLOY.name)

    assert info.config.duplicate_window == 24 * 3600
    assert (info.config.max_age or 0) >= 24 * 3600
