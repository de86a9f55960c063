"""Waiting for the deploy outcome against a real nats-server, with a stand-in for the deployer."""

from __future__ import annotations

import asyncio
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
    Gate,
    GateResult,
    GateVerdict,
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
from pipelines_cli.wait import Arrival, ReleaseWatch, exit_code, wait_for_outcome

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


# ---- wait --environment: the release on to a later environment ---------------------------------

RELEASE = "order-3f2a9c1b7d4e"
IMAGE = "registry.local/order-service:1.4.2-a8f3d21"


REASONS = {
    Gate.SOAK: "soaking in dev until 2026-03-04 10:05:42 UTC (300 s)",
    Gate.ANALYSIS: "order in dev over 300 s: success rate 97.10% < 99.50%",
    Gate.APPROVAL: "waiting for a person's approval "
    f"(deployer promotions approve {RELEASE}.staging)",
}


def gates(stuck: Gate | None, verdict: GateVerdict = GateVerdict.WAITING) -> list[GateResult]:
    """The gates of a promotion into staging, passed up to ``stuck`` (None: all passed)."""
    order = list(Gate)
    at = order.index(stuck) if stuck is not None else len(order)
    now = datetime.now(UTC)

    def result(gate: Gate) -> GateResult:
        if order.index(gate) < at:
            return GateResult(gate=gate, verdict=GateVerdict.PASSED, reason="ok", decided_at=now)
        if gate is stuck:
            return GateResult(gate=gate, verdict=verdict, reason=REASONS[gate], decided_at=now)
        why = f"waits for the {stuck} gate"
        return GateResult(gate=gate, verdict=GateVerdict.NOT_REACHED, reason=why, decided_at=now)

    return [result(gate) for gate in order]


def promoted(
    state: PromotionState,
    stuck: Gate | None = None,
    verdict: GateVerdict = GateVerdict.WAITING,
    release: str = RELEASE,
    reason: str = "",
) -> PromotionEventData:
    """A promotion event of ``release`` from dev into staging."""
    if not reason:
        reason = f"at the {stuck} gate: {REASONS[stuck]}" if stuck else "every gate passed"
    return PromotionEventData(
        promotion_id=f"{release}.staging",
        release_id=release,
        service="order",
        source="dev",
        environment="staging",
        image=IMAGE,
        commit="a8f3d21",
        state=state,
        reason=reason,
        gates=gates(stuck, verdict),
    )


async def publish_promotion(bus: EventBus, data: PromotionEventData) -> None:
    """A ``deploy.<service>.promotion`` event, as the deployer publishes it."""
    event = CloudEvent.new(
        PROMOTION_TYPE, source="/platform/deployer", subject=data.service,
        data=data.model_dump(mode="json", exclude_none=True),
    )  # fmt: skip
    await bus.publish(promotion_subject(data.service), event)


def deployed(
    deployment: str,
    environment: str,
    phase: DeployPhase,
    release: str | None = RELEASE,
    image: str = IMAGE,
) -> DeployEventData:
    """A deploy event of ``release`` in ``environment``."""
    return DeployEventData(
        deployment_id=deployment, service="order", environment=environment, release_id=release,
        phase=phase, image=image,
    )  # fmt: skip


def watch_all(
    deployment: str, events: list[DeployEventData | PromotionEventData]
) -> tuple[list[str], Arrival | None]:
    """What a ReleaseWatch into staging shows of ``events``, and the end it reaches."""
    watch = ReleaseWatch(deployment, "staging")
    shown = []
    for data in events:
        show, arrival = watch.take(data)
        if show:
            phase = data.phase if isinstance(data, DeployEventData) else f"promotion {data.state}"
            shown.append(f"{data.environment} {phase}")
        if arrival is not None:
            return shown, arrival
    return shown, None


def test_release_watch_follows_the_release_into_the_environment() -> None:
    shown, arrival = watch_all(
        "dep-1",
        [
            deployed("dep-0", "staging", DeployPhase.SUCCEEDED, release="order-000000000000"),
            deployed("dep-1", "dev", DeployPhase.QUEUED),
            deployed("dep-1", "dev", DeployPhase.SUCCEEDED),
            promoted(PromotionState.WAITING, Gate.SOAK),
            promoted(PromotionState.WAITING, Gate.SOAK, release="order-111111111111"),
            promoted(PromotionState.PROMOTING),
            deployed("dep-x", "staging", DeployPhase.FAILED, release="order-111111111111"),
            deployed("dep-2", "staging", DeployPhase.STARTED),
            deployed("dep-2", "staging", DeployPhase.SUCCEEDED),
            promoted(PromotionState.PROMOTED),
        ],
    )
    assert shown == [
        "dev queued", "dev succeeded", "staging promotion waiting", "staging promotion promoting",
        "staging started", "staging succeeded",
    ]  # fmt: skip
    assert arrival == Arrival(
        ExitCode.SUCCEEDED, "deployment dep-2 of order in staging ended succeeded"
    )


@pytest.mark.parametrize(
    ("events", "code", "summary"),
    [
        (
            [deployed("dep-1", "dev", DeployPhase.ROLLED_BACK)],
            ExitCode.FAILED,
            "deployment dep-1 of order in dev ended rolled_back: its release does not reach "
            "staging",
        ),
        (
            [deployed("dep-1", "dev", DeployPhase.SUPERSEDED)],
            ExitCode.SUPERSEDED,
            "deployment dep-1 of order in dev ended superseded: its release does not reach staging",
        ),
        (
            [
                deployed("dep-1", "dev", DeployPhase.SUCCEEDED),
                promoted(PromotionState.FAILED, Gate.ANALYSIS, GateVerdict.FAILED),
            ],
            ExitCode.FAILED,
            f"promotion {RELEASE}.staging of order into staging ended failed: at the analysis "
            "gate: order in dev over 300 s: success rate 97.10% < 99.50%",
        ),
        (
            [
                deployed("dep-1", "dev", DeployPhase.SUCCEEDED),
                promoted(PromotionState.CANCELLED, reason="cancelled by alice"),
            ],
            ExitCode.REJECTED,
            f"promotion {RELEASE}.staging of order into staging ended cancelled: cancelled by "
            "alice",
        ),
        (
            [
                deployed("dep-1", "dev", DeployPhase.SUCCEEDED),
                promoted(PromotionState.SUPERSEDED, reason="superseded by the newer release x"),
            ],
            ExitCode.SUPERSEDED,
            f"promotion {RELEASE}.staging of order into staging ended superseded: superseded by "
            "the newer release x",
        ),
        (
            [
                deployed("dep-1", "dev", DeployPhase.SUCCEEDED),
                deployed("dep-2", "staging", DeployPhase.ROLLED_BACK),
            ],
            ExitCode.FAILED,
            "deployment dep-2 of order in staging ended rolled_back",
        ),
        (  # a deployer that sends no release ids: the image tells the release
            [
                deployed("dep-1", "dev", DeployPhase.SUCCEEDED, release=None),
                deployed("dep-2", "staging", DeployPhase.REJECTED, release=None, image="other"),
                deployed("dep-3", "staging", DeployPhase.SUCCEEDED, release=None),
            ],
            ExitCode.SUCCEEDED,
            "deployment dep-3 of order in staging ended succeeded",
        ),
        (  # the same release published again: it reached staging before, once
            [
                deployed("dep-0", "staging", DeployPhase.SUCCEEDED),
                deployed("dep-1", "dev", DeployPhase.UNCHANGED),
            ],
            ExitCode.SUCCEEDED,
            "deployment dep-0 of order in staging ended succeeded (before this run)",
        ),
        (  # deployed straight into the environment waited for
            [deployed("dep-1", "staging", DeployPhase.REJECTED)],
            ExitCode.REJECTED,
            "deployment dep-1 of order in staging ended rejected",
        ),
    ],
)
def test_release_watch_ends(
    events: list[DeployEventData | PromotionEventData], code: ExitCode, summary: str
) -> None:
    _, arrival = watch_all("dep-1", events)
    assert arrival == Arrival(code, summary)


def test_release_watch_waits_while_a_promotion_it_saw_end_is_tried_again() -> None:
    _, arrival = watch_all(
        "dep-1",
        [
            promoted(PromotionState.CANCELLED, reason="cancelled by alice"),
            promoted(PromotionState.WAITING, Gate.APPROVAL),  # a person asked for it again
            deployed("dep-1", "dev", DeployPhase.UNCHANGED),
        ],
    )
    assert arrival is None


async def release_into_staging(deployer: FakeDeployer, deployment: str) -> None:
    """The release of ``deployment`` succeeds in dev, waits at the soak and the approval gates
    into staging, is approved and deployed there; another release's events in between."""
    other = "order-aaaaaaaaaaaa"
    mine = {"release_id": RELEASE, "image": IMAGE}
    for phase in (DeployPhase.QUEUED, DeployPhase.SUCCEEDED):
        await deployer.report("order", deployment, phase, environment="dev", **mine)
    for promotion in (
        promoted(PromotionState.WAITING, Gate.SOAK),
        promoted(PromotionState.WAITING, Gate.SOAK, release=other),
        promoted(PromotionState.WAITING, Gate.APPROVAL),
        promoted(PromotionState.PROMOTING),
    ):
        await publish_promotion(deployer.bus, promotion)
    await deployer.report(
        "order", "promote-x", DeployPhase.FAILED, environment="staging", release_id=other
    )
    for phase in (DeployPhase.QUEUED, DeployPhase.STARTED, DeployPhase.SUCCEEDED):
        await deployer.report("order", "promote-1", phase, environment="staging", **mine)


def shown(stdout: str) -> list[str]:
    """Each printed line without its time and details: ``order succeeded in dev``."""
    return [line.split(" | ")[0].split(" ", 1)[1] for line in stdout.splitlines()]


async def test_cli_waits_for_the_release_in_staging(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, run_cli: CliRun
) -> None:
    run_id = f"github:{uuid.uuid4().int % 10**10}"
    deployment = deployment_id(run_id, "order")
    await release_into_staging(deployer, deployment)
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--run-id", run_id, "--environment", "staging",
        env={"NATS_URL": fresh_nats_server.url},
    )  # fmt: skip

    assert result.returncode == ExitCode.SUCCEEDED, result.stderr
    assert shown(result.stdout) == [
        "order queued in dev", "order succeeded in dev",
        "order promotion dev -> staging waiting", "order promotion dev -> staging waiting",
        "order promotion dev -> staging promoting",
        "order queued in staging", "order started in staging", "order succeeded in staging",
    ]  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[2].split(" | ")[1:] == [
        "soak gate waiting: soaking in dev until 2026-03-04 10:05:42 UTC (300 s)",
        f"promotion {RELEASE}.staging",
    ]
    assert lines[3].split(" | ")[1] == (
        f"approval gate waiting: waiting for a person's approval (deployer promotions approve "
        f"{RELEASE}.staging)"
    )
    assert lines[4].split(" | ")[1] == "every gate passed"
    assert "to reach staging" in result.stderr
    assert "deployment promote-1 of order in staging ended succeeded" in result.stderr
    assert "error" not in result.stderr


async def verified_in_dev(deployer: FakeDeployer, deployment: str) -> None:
    """The deployment CI started, of RELEASE, succeeds in dev."""
    await deployer.report(
        "order", deployment, DeployPhase.SUCCEEDED, environment="dev", release_id=RELEASE,
        image=IMAGE,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("end", "code"),
    [
        (promoted(PromotionState.FAILED, Gate.ANALYSIS, GateVerdict.FAILED), ExitCode.FAILED),
        (promoted(PromotionState.CANCELLED, reason="cancelled by alice"), ExitCode.REJECTED),
    ],
)
async def test_cli_ends_when_the_promotion_fails_or_is_cancelled(
    fresh_nats_server: NatsServer,
    deployer: FakeDeployer,
    run_cli: CliRun,
    end: PromotionEventData,
    code: ExitCode,
) -> None:
    deployment = new_id()
    await verified_in_dev(deployer, deployment)
    await publish_promotion(deployer.bus, promoted(PromotionState.WAITING, Gate.APPROVAL))
    await publish_promotion(deployer.bus, end)
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--deployment-id", deployment, "--environment", "staging",
        "--timeout", "20", env={"NATS_URL": fresh_nats_server.url},
    )  # fmt: skip

    assert result.returncode == code, result.stderr
    assert shown(result.stdout)[-1] == f"order promotion dev -> staging {end.state}"
    assert result.stderr.splitlines()[-1] == (
        f"error: promotion {RELEASE}.staging of order into staging ended {end.state}: {end.reason}"
    )


async def test_cli_follows_a_release_published_while_it_waits(
    fresh_nats_server: NatsServer, deployer: FakeDeployer
) -> None:
    deployment = new_id()
    process = await start_cli_wait(
        {"NATS_URL": fresh_nats_server.url}, "order", "--deployment-id", deployment,
        "--environment", "staging", "--timeout", "30",
    )  # fmt: skip
    await asyncio.sleep(1.0)
    await release_into_staging(deployer, deployment)
    code, stdout, stderr = await finish(process)
    assert code == ExitCode.SUCCEEDED, stderr
    assert shown(stdout)[-1] == "order succeeded in staging"


async def test_cli_times_out_when_the_release_stays_at_a_gate(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, run_cli: CliRun
) -> None:
    deployment = new_id()
    await verified_in_dev(deployer, deployment)
    await publish_promotion(deployer.bus, promoted(PromotionState.WAITING, Gate.APPROVAL))
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--deployment-id", deployment, "--environment", "staging",
        "--timeout", "2", env={"NATS_URL": fresh_nats_server.url},
    )  # fmt: skip

    assert result.returncode == ExitCode.TIMEOUT
    assert shown(result.stdout)[-1] == "order promotion dev -> staging waiting"
    assert (
        f"the release of deployment {deployment} of order did not reach staging within 2 s"
        in result.stderr
    )


async def test_wait_without_environment_ignores_promotion_events_quietly(
    fresh_nats_server: NatsServer, deployer: FakeDeployer, run_cli: CliRun
) -> None:
    deployment = new_id()
    await publish_promotion(deployer.bus, promoted(PromotionState.WAITING, Gate.SOAK))
    await deployer.rollout("order", deployment, DeployPhase.SUCCEEDED)
    result = await asyncio.to_thread(
        run_cli, "wait", "order", "--deployment-id", deployment,
        env={"NATS_URL": fresh_nats_server.url},
    )  # fmt: skip
    assert result.returncode == ExitCode.SUCCEEDED
    assert "malformed" not in result.stderr
    assert "promotion" not in result.stdout
