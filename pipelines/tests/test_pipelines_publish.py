"""Publishing the pipeline event to a real nats-server: contract, trace context, de-duplication."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from nats.aio.msg import Msg

from deploy_contract.events import ARTIFACT_PUBLISHED, ArtifactPublished
from devkit.localstack.nats import NatsServer
from kit.events import CloudEvent, EventBus
from kit.events.streams import PIPELINE
from kit.settings import NatsSettings
from pipelines_cli.publish import checked_traceparent, deployment_id, new_traceparent
from pipelines_cli.testing import CliRun, GitRepo

SHA = "a8f3d21c0ffee0123456789abcdef0123456789a"
IMAGE = "registry.example/order-service:1.4.2-a8f3d21"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def stored(server: NatsServer, subject: str) -> list[Msg]:
    """Every message on ``subject`` in the PIPELINE stream."""
    bus = EventBus(NatsSettings(url=server.url), client_name="pipelines-tests")
    await bus.connect()
    try:
        sub = await bus.js.pull_subscribe(subject, stream=PIPELINE.name)
        info = await sub.consumer_info()
        msgs = await sub.fetch(info.num_pending, timeout=5) if info.num_pending else []
        await sub.unsubscribe()
        return list(msgs)
    finally:
        await bus.drain()


def publish_args(run_id: str, *extra: str) -> tuple[str, ...]:
    return ("publish", "order", "--run-id", run_id, "--image", IMAGE, "--commit", SHA, *extra)


def test_the_deployment_id_depends_on_run_and_service_only() -> None:
    first = deployment_id("github:42", "order")
    assert first == deployment_id("github:42", "order")
    assert uuid.UUID(first).version == 5
    assert first != deployment_id("github:43", "order")
    assert first != deployment_id("github:42", "payment")


def test_traceparent_is_taken_from_the_env_or_made_new() -> None:
    assert checked_traceparent(TRACEPARENT) == TRACEPARENT
    made = checked_traceparent(None)
    assert checked_traceparent(made) == made
    assert new_traceparent() != new_traceparent()


async def test_publish_sends_the_artifact_event_with_trace_context(
    fresh_nats_server: NatsServer, run_cli: CliRun
) -> None:
    run_id = f"github:{uuid.uuid4().int % 10**10}"
    result = run_cli(
        *publish_args(run_id, "--attempt", "2", "--pipeline-url", "https://ci.example/run/1",
                      "--value", "replicaCount=3", "--value", "config.logLevel=DEBUG"),
        env={"NATS_URL": fresh_nats_server.url, "TRACEPARENT": TRACEPARENT},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    event_id = deployment_id(run_id, "order")
    assert result.stdout.splitlines() == [f"deployment_id={event_id}", f"traceparent={TRACEPARENT}"]
    assert "published registry.example/order-service:1.4.2-a8f3d21" in result.stderr

    mine = [
        m
        for m in await stored(fresh_nats_server, "pipeline.artifact.order")
        if m.headers and m.headers.get("Nats-Msg-Id") == event_id
    ]
    assert len(mine) == 1
    msg = mine[0]
    assert msg.headers is not None
    assert msg.headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    event = CloudEvent.from_bytes(msg.data)
    assert (event.id, event.type, event.subject) == (event_id, ARTIFACT_PUBLISHED, "order")
    assert event.model_extra == {"traceparent": TRACEPARENT}
    data = event.data_as(ArtifactPublished)
    assert data == ArtifactPublished(
        service="order",
        image=IMAGE,
        commit=SHA,
        pipeline_id=f"{run_id}:2",
        pipeline_url="https://ci.example/run/1",
        values={"replicaCount": 3, "config.logLevel": "DEBUG"},
    )


async def test_a_retried_job_is_stored_once(fresh_nats_server: NatsServer, run_cli: CliRun) -> None:
    env = {"NATS_URL": fresh_nats_server.url}
    first = run_cli(*publish_args("github:7", "--attempt", "1"), env=env)
    retry = run_cli(*publish_args("github:7", "--attempt", "2"), env=env)
    other = run_cli(*publish_args("github:8"), env=env)
    assert [first.returncode, retry.returncode, other.returncode] == [0, 0, 0], retry.stderr
    assert first.stdout.splitlines()[0] == retry.stdout.splitlines()[0]
    assert "already published by an earlier attempt" in retry.stderr
    assert "it is deployed once" in retry.stderr

    ids = [(m.headers or {})["Nats-Msg-Id"] for m in await stored(fresh_nats_server, "pipeline.>")]
    assert ids == [deployment_id("github:7", "order"), deployment_id("github:8", "order")]
    # A new trace per job when none is given.
    assert first.stdout.splitlines()[1] != retry.stdout.splitlines()[1]


def test_publish_refuses_what_the_deployer_would_reject(
    fresh_nats_server: NatsServer, run_cli: CliRun
) -> None:
    env = {"NATS_URL": fresh_nats_server.url}
    latest = run_cli(
        "publish", "order", "--run-id", "r1", "--image", "r.example/order-service:latest",
        "--commit", SHA, env=env,
    )  # fmt: skip
    assert latest.returncode == 1
    assert "the deployer would reject the image" in latest.stderr

    bad_commit = run_cli("publish", "order", "--run-id", "r1", "--image", IMAGE, "--commit",
                         "main", env=env)  # fmt: skip
    assert bad_commit.returncode == 1
    assert "commit:" in bad_commit.stderr

    bad_trace = run_cli(*publish_args("r1"), env={**env, "TRACEPARENT": "nonsense"})
    assert bad_trace.returncode == 1
    assert "is not a W3C traceparent" in bad_trace.stderr

    no_run = run_cli("publish", "order", "--image", IMAGE, env={**env, "PIPELINE_RUN_ID": ""})
    assert no_run.returncode != 0


def test_publish_explains_an_unreachable_nats(run_cli: CliRun) -> None:
    result = run_cli(
        *publish_args("r1"),
        env={"NATS_URL": "nats://127.0.0.1:9", "NATS_CONNECT_TIMEOUT_SECONDS": "0.2"},
    )
    assert result.returncode == 1
    assert "cannot connect to NATS at nats://127.0.0.1:9" in result.stderr
    assert "NATS_URL" in result.stderr


async def published_data(server: NatsServer, run_id: str) -> ArtifactPublished:
    """The data of the event ``publish`` stored for ``run_id`` (service order)."""
    event_id = deployment_id(run_id, "order")
    [msg] = [
        m
        for m in await stored(server, "pipeline.artifact.order")
        if m.headers and m.headers.get("Nats-Msg-Id") == event_id
    ]
    return CloudEvent.from_bytes(msg.data).data_as(ArtifactPublished)


async def test_publish_sends_the_committer_date_of_the_commit(
    fresh_nats_server: NatsServer,
    run_cli: CliRun,
    git_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = git_repo.sha()
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-05T08:00:00+02:00")
    head = git_repo.commit("second", "services/order/src/order_service/main.py")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    env = {"NATS_URL": fresh_nats_server.url}

    def committed(rev: str) -> datetime:
        return datetime.fromisoformat(git_repo.git("show", "-s", "--format=%cI", rev).strip())

    repo = ("--repo", str(git_repo.path))
    unknown = "0123456789abcdef" * 2 + "01234567"
    runs = {
        "github:101": repo,  # HEAD
        "github:102": (*repo, "--commit", first[:7]),
        "github:103": (*repo, "--commit", unknown),
        "github:104": (*repo, "--commit-time", "2026-12-07T09:30:00+01:00"),
    }
    for run_id, extra in runs.items():
        result = run_cli("publish", "order", "--run-id", run_id, "--image", IMAGE, *extra, env=env)
        assert result.returncode == 0, result.stderr

    assert (await published_data(fresh_nats_server, "github:101")).commit == head
    assert (await published_data(fresh_nats_server, "github:101")).commit_time == datetime(
        2026, 1, 5, 6, 0, tzinfo=UTC
    )
    assert (await published_data(fresh_nats_server, "github:102")).commit_time == committed(first)
    # A commit git does not have: the event leaves the time out rather than failing the job.
    assert (await published_data(fresh_nats_server, "github:103")).commit_time is None
    assert (await published_data(fresh_nats_server, "github:104")).commit_time == datetime(
        2026, 12, 7, 8, 30, tzinfo=UTC
    )


def test_publish_refuses_a_commit_time_without_an_offset(
    fresh_nats_server: NatsServer, run_cli: CliRun
) -> None:
    for value in ("2026-12-07T09:30:00", "yesterday"):
        result = run_cli(
            *publish_args("r1", "--commit-time", value), env={"NATS_URL": fresh_nats_server.url}
        )
        assert result.returncode == 1
        assert f"--commit-time {value!r} is not an ISO 8601 date-time with a UTC offset" in (
            result.stderr
        )
