"""Waiting for the deploy outcome against a real nats-server, with a stand-in for the deployer."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deploy_contract.drift import DriftedField, DriftMode, DriftReport, report_json
from deploy_contract.events import (
    DRIFTED_TYPE,
    DeployEventData,
    DeployPhase,
    RolloutProgress,
    deploy_event_type,
    deploy_subject,
    drift_subject,
)
from deploy_contract.promotions import (
    PROMOTION_TYPE,
    PromotionEventData,
    PromotionState,
    promotion_subject,
)
from devkit.localstack.nats import NatsServer
from kit.events import CloudEvent, EventBus
from kit.events.streams import DEPLOY, PIPELINE
from kit.settings import NatsSettings
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.publish import deployment_id
from pipelines_cli.testing import CliRun
from pipelines_cli.wait import exit_code, wait_for_outcome

LOCAL_PASSWORDS = {"ci": "ci-local-only", "deployer": "deployer-local-only"}


class FakeDeployer:
    """Publishes deploy.<service>.<phase> CloudEvents the way the deployer reports a rollout."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def report(
        self, service: str, deployment: str, phase: DeployPhase, **fields: Any
    ) -> None:
        data = DeployEventData(deployment_id=deployment, service=service, phase=phase, **fields)
        event = CloudEvent.new(
            deploy_event_type(phase),
            source="/flotilla/deployer",
            subject=service,
            data=data.model_dump(mode="json", exclude_none=True),
        )
        await self.bus.publish(deploy_subject(service, phase), event)

    async def drifted(self, service: str) -> None:
        """A drift report on deploy.<service>.drifted (not a deployment's event)."""
        report = DriftReport(
            service=service,
            mode=DriftMode.WARN,
            checked_at=datetime.now(UTC),
            fields=[DriftedField(object=f"Deployment/{service}", path="spec.replicas")],
        )
        event = CloudEvent.new(
            DRIFTED_TYPE, source="/flotilla/deployer", subject=service, data=report_json(report)
        )
        await self.bus.publish(drift_subject(service), event)

    async def promoting(self, service: str) -> None:
        """A promotion on deploy.<service>.promotion (not a deployment's event)."""
        data = PromotionEventData(
            promotion_id=f"{service}-3f2a9c1b7d4e.staging", release_id=f"{service}-3f2a9c1b7d4e",
            service=service, source="dev", environment="staging",
            image=f"registry.local/{service}-service:1.0.0-a1b2c3d", commit="a1b2c3d",
            state=PromotionState.WAITING, reason="at the soak gate", gates=[],
        )  # fmt: skip
        event = CloudEvent.new(
            PROMOTION_TYPE, source="/flotilla/deployer", subject=service,
            data=data.model_dump(mode="json"),
        )  # fmt: skip
        await self.bus.publish(promotion_subject(service), event)

    async def rollout(self, service: str, deployment: str, outcome: DeployPhase) -> None:
        """queued, started, two progress reports, then ``outcome``."""
        await self.report(service, deployment, DeployPhase.QUEUED)
        await self.report(service, deployment, DeployPhase.STARTED, revision=4)
        for ready in (1, 2):
            progress = RolloutProgress(
                desired=2, updated=ready, ready=ready, available=ready,
                replica_sets={"order-new": ready, "order-old": 2 - ready},
            )  # fmt: skip
            await self.report(service, deployment, DeployPhase.PROGRESSING, progress=progress)
        reason = None if outcome is DeployPhase.SUCCEEDED else f"the rollout ended {outcome}"
        await self.report(service, deployment, outcome, reason=reason)


@pytest.fixture
async def deployer(fresh_nats_server: NatsServer) -> AsyncIterator[FakeDeployer]:
    bus = EventBus(NatsSettings(url=fresh_nats_server.url), client_name="fake-deployer")
    await bus.connect()
    await bus.ensure_streams([DEPLOY])
    yield FakeDeployer(bus)
    await bus.drain()


def new_id() -> str:
    return str(uuid.uuid4())


async def wait_in_process(
    server_url: str, service: str, deployment: str, timeout: float = 10.0
) -> tuple[DeployEventData | None, list[DeployEventData], list[str]]:
    events: list[DeployEventData] = []
    notes: list[str] = []
    outcome = await wait_for_outcome(
        NatsSettings(url=server_url), service, deployment, timeout, events.append, notes.append
    )
    return outcome, events, notes


async def start_cli_wait(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    full_env = {**os.environ, **env}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipelines_cli", "wait", *args,
        env=full_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        (DeployPhase.SUCCEEDED, ExitCode.SUCCEEDED),
        (DeployPhase.UNCHANGED, ExitCode.SUCCEEDED),
        (DeployPhase.FAILED, ExitCode.FAILED),
        (DeployPhase.ROLLED_BACK, ExitCode.FAILED),
        (DeployPhase.REJECTED, ExitCode.REJECTED),
        (DeployPhase.SUPERSEDED, ExitCode.SUPERSEDED),
    ],
)
async def test_each_terminal_phase_has_its_exit_code(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, phase: DeployPhase, code: ExitCode
) -> None:
    deployment = new_id()
    await deployer.rollout("order", deployment, phase)
    outcome, events, _ = await wait_in_process(fresh_nats_server.url, "order", deployment)
    assert outcome is not None
    assert outcome.phase is phase
    assert exit_code(outcome) is code
    assert [e.phase for e in events] == [
        DeployPhase.QUEUED, DeployPhase.STARTED, DeployPhase.PROGRESSING, DeployPhase.PROGRESSING,
        phase,
    ]  # fmt: skip


async def test_other_deployments_and_services_are_ignored(
    fresh_nats_server: NatsServer, deployer: FakeDeployer
) -> None:
    mine, newer = new_id(), new_id()
    await deployer.rollout("payment", mine, DeployPhase.SUCCEEDED)
    await deployer.rollout("order", newer, DeployPhase.SUCCEEDED)
    await deployer.report("order", mine, DeployPhase.QUEUED)
    await deployer.drifted("order")
    await deployer.report("order", mine, DeployPhase.SUPERSEDED, superseded_by=newer)
    outcome, events, _ = await wait_in_process(fresh_nats_server.url, "order", mine)
    assert outcome is not None
    assert (outcome.phase, outcome.superseded_by) == (DeployPhase.SUPERSEDED, newer)
    assert {e.deployment_id for e in events} == {mine}
    assert len(events) == 2


async def test_promotion_events_are_skipped_without_a_warning(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, caplog: pytest.LogCaptureFixture
) -> None:
    deployment = new_id()
    await deployer.report("order", deployment, DeployPhase.QUEUED)
    await deployer.promoting("order")
    await deployer.report("order", deployment, DeployPhase.SUCCEEDED)
    with caplog.at_level(logging.WARNING, logger="pipelines_cli.wait"):
        outcome, events, _ = await wait_in_process(fresh_nats_server.url, "order", deployment)
    assert outcome is not None
    assert [e.phase for e in events] == [DeployPhase.QUEUED, DeployPhase.SUCCEEDED]
    assert not [r for r in caplog.records if r.name == "pipelines_cli.wait"], caplog.text


async def test_a_malformed_message_on_the_subjects_is_skipped(
    fresh_nats_server: NatsServer, deployer: FakeDeployer
) -> None:
    deployment = new_id()
    await deployer.bus.js.publish("deploy.order.started", b"not a CloudEvent")
    await deployer.report("order", deployment, DeployPhase.SUCCEEDED)
    outcome, events, _ = await wait_in_process(fresh_nats_server.url, "order", deployment)
    assert outcome is not None
    assert [e.phase for e in events] == [DeployPhase.SUCCEEDED]


async def test_no_outcome_within_the_timeout(
    fresh_nats_server: NatsServer, deployer: FakeDeployer
) -> None:
    deployment = new_id()
    await deployer.report("order", deployment, DeployPhase.QUEUED)
    outcome, events, _ = await wait_in_process(
        fresh_nats_server.url, "order", deployment, timeout=1.5
    )
    assert outcome is None
    assert exit_code(outcome) is ExitCode.TIMEOUT
    assert [e.phase for e in events] == [DeployPhase.QUEUED]


async def test_cli_reads_an_outcome_published_before_it_started(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, run_cli: CliRun
) -> None:
    run_id = f"github:{uuid.uuid4().int % 10**10}"
    deployment = deployment_id(run_id, "order")
    await deployer.rollout("order", deployment, DeployPhase.ROLLED_BACK)
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--run-id", run_id, env={"NATS_URL": fresh_nats_server.url}
    )
    assert result.returncode == ExitCode.FAILED
    lines = result.stdout.splitlines()
    assert [line.split(" | ")[0].split(" ", 1)[1] for line in lines] == [
        "order queued", "order started", "order progressing", "order progressing",
        "order rolled_back",
    ]  # fmt: skip
    assert "replicas 1/2 updated, 1 ready, 1 available" in lines[2]
    assert "ready by ReplicaSet: order-new: 1, order-old: 1" in lines[2]
    assert "reason: the rollout ended rolled_back" in lines[4]
    assert f"deployment {deployment} of order ended rolled_back" in result.stderr


async def test_cli_follows_a_rollout_published_while_it_waits(
    fresh_nats_server: NatsServer, deployer: FakeDeployer
) -> None:
    deployment = new_id()
    process = await start_cli_wait(
        {"NATS_URL": fresh_nats_server.url},
        "order",
        "--deployment-id",
        deployment,
        "--timeout",
        "30",
    )
    await asyncio.sleep(1.0)
    await deployer.rollout("order", deployment, DeployPhase.SUCCEEDED)
    code, stdout, stderr = await finish(process)
    assert code == ExitCode.SUCCEEDED, stderr
    assert stdout.splitlines()[-1].split(" | ")[0].endswith("order succeeded")


async def test_cli_times_out_with_its_own_exit_code(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, run_cli: CliRun
) -> None:
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--deployment-id", new_id(), "--timeout", "1",
        env={"NATS_URL": fresh_nats_server.url},
    )  # fmt: skip
    assert result.returncode == ExitCode.TIMEOUT
    assert "no outcome for deployment" in result.stderr


async def test_wait_outlasts_a_missing_stream_until_the_deployer_creates_it(
    fresh_nats_server: NatsServer,
) -> None:
    deployment = new_id()
    waiting = asyncio.create_task(wait_in_process(fresh_nats_server.url, "auth", deployment))
    await asyncio.sleep(1.5)
    bus = EventBus(NatsSettings(url=fresh_nats_server.url), client_name="late-deployer")
    await bus.connect()
    await bus.ensure_streams([DEPLOY])
    await FakeDeployer(bus).report("auth", deployment, DeployPhase.SUCCEEDED)
    await bus.drain()
    outcome, _, notes = await asyncio.wait_for(waiting, 20)
    assert outcome is not None
    assert outcome.phase is DeployPhase.SUCCEEDED
    assert notes == ["stream DEPLOY does not exist yet (is the deployer running?); waiting for it"]


@pytest.fixture(scope="module")
def secured_nats(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """nats-server with the real platform/nats/local.conf users and permissions."""
    server = NatsServer(
        tmp_path_factory.mktemp("pipelines-secured-nats"),
        config_file=repo_root / "platform/nats/local.conf",
    )
    server.start()
    yield server
    server.stop()


async def test_the_ci_user_can_publish_and_wait_with_the_local_permissions(
    secured_nats: NatsServer, run_cli: CliRun
) -> None:
    deployer_bus = EventBus(
        NatsSettings(url=secured_nats.url, user="deployer", password=LOCAL_PASSWORDS["deployer"]),
        client_name="fake-deployer",
    )
    await deployer_bus.connect()
    await deployer_bus.ensure_streams([PIPELINE, DEPLOY])
    ci_env = {"NATS_URL": secured_nats.url, "NATS_USER": "ci", "NATS_PASSWORD": "ci-local-only"}
    run_id = "github:4242"
    try:
        published = await asyncio.to_thread(
            run_cli, "publish", "payment", "--run-id", run_id,
            "--image", "registry.example/payment-service:0.3.0-a8f3d21", "--commit", "a8f3d21",
            env=ci_env,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        deployment = deployment_id(run_id, "payment")
        assert f"deployment_id={deployment}" in published.stdout

        process = await start_cli_wait(ci_env, "payment", "--run-id", run_id, "--timeout", "30")
        await asyncio.sleep(0.5)
        await FakeDeployer(deployer_bus).rollout("payment", deployment, DeployPhase.FAILED)
        code, stdout, stderr = await finish(process)
        assert code == ExitCode.FAILED, stderr
        assert "payment failed" in stdout.splitlines()[-1]
        assert "note:" not in stderr
    finally:
        await deployer_bus.drain()


async def test_wait_explains_refused_credentials(secured_nats: NatsServer, run_cli: CliRun) -> None:
    wrong_password = await asyncio.to_thread(
        run_cli, "wait", "order", "--deployment-id", new_id(), "--timeout", "5",
        env={"NATS_URL": secured_nats.url, "NATS_USER": "ci", "NATS_PASSWORD": "wrong",
             "NATS_CONNECT_TIMEOUT_SECONDS": "0.5"},
    )  # fmt: skip
    assert wrong_password.returncode == ExitCode.ERROR
    assert "cannot connect to NATS" in wrong_password.stderr


def test_wait_refuses_a_subject_pattern_as_service(run_cli: CliRun) -> None:
    result = run_cli("wait", "order.>", "--deployment-id", "x", "--timeout", "1")
    assert result.returncode == ExitCode.ERROR
    assert "'order.>' is not a service name: pass one like 'order'" in result.stderr
