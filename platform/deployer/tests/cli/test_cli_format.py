"""``deployer plan | status | history``: readable tables by default, the API's body with
``--output json``. Payloads are built from the deployer's own models (plans by ``plan_release``
from hand-made manifests) and served over HTTP as the API serialises them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from typer.testing import CliRunner

from deploy_contract.drift import DriftedField, DriftMode, DriftReport
from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.cli.app import app
from deployer.cli.format import duration, render_history, render_plan, render_status, table
from deployer.plan import Plan, plan_release
from deployer.records import DeploymentRecord, ServiceState
from deployer.report.views import ServiceView
from tests.deployer.fake_api import FakeApi, serving
from tests.deployer.sample_manifests import config, manifest

OLD, NEW = "registry.local/app-service:1.0.0-a1b2c3d", "registry.local/app-service:1.1.0-b2c3d4e"
AT = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)
TOKEN = "t" * 20


def workload(
    name: str = "app", image: str = OLD, replicas: int = 2, memory: str = "1Gi", probes: bool = True
) -> dict[str, Any]:
    """A Deployment whose pods read ConfigMap app-config."""
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "envFrom": [{"configMapRef": {"name": "app-config"}}],
        "resources": {"limits": {"cpu": "1", "memory": memory}},
    }
    if probes:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            container[probe] = {"httpGet": {"path": "/healthz", "port": 8000}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


def plan_body(plan: Plan) -> dict[str, Any]:
    """What ``POST /api/plan`` answers."""
    return {"summary": plan.summary(), "plan": plan.model_dump(mode="json")}


@pytest.fixture
def risky_plan() -> Plan:
    """A new image with a lower memory limit and three times the replicas, a changed ConfigMap,
    a workload removed and one added without probes."""
    return plan_release(
        "app",
        manifest(config("INFO"), workload(), workload("old")),
        manifest(
            config("DEBUG"),
            workload(image=NEW, replicas=6, memory="512Mi"),
            workload("worker", image=NEW, probes=False),
        ),
    )


def test_plan_table_shows_each_workload_its_fields_before_and_after_and_the_warnings(
    risky_plan: Plan,
) -> None:
    text = render_plan(plan_body(risky_plan))

    assert text.startswith(risky_plan.summary() + "\naction: upgrade\n")
    assert "Deployment/app: rollout (image, resources)" in text
    assert f"containers[app].image                    {OLD} -> {NEW}" in text
    assert "containers[app].resources.limits.memory  1Gi -> 512Mi" in text
    assert "spec.replicas                            2 -> 6" in text
    assert "reads changed ConfigMap/app-config (the pods roll)" in text
    assert "Deployment/old: delete\n  the workload and its pods are removed" in text
    assert "Deployment/worker: install\n  FIELD                     BEFORE -> AFTER\n" in text
    assert f"containers[worker].image  unset -> {NEW}" in text
    assert "ConfigMap/app-config  changed  data.LOG_LEVEL" in text
    assert "replicas-changed  Deployment/app  replicas 2 -> 6 (x3)" in text
    assert risky_plan.warnings, "the plan warns about the memory, the replicas and the probes"
    assert f"warnings ({len(risky_plan.warnings)})" in text
    for warning in risky_plan.warnings:
        assert f"  ! {warning}" in text
    assert not any(line.endswith(" ") for line in text.splitlines())


def test_plan_that_changes_nothing_says_so() -> None:
    same = manifest(config("INFO"), workload())
    text = render_plan(plan_body(plan_release("app", same, same)))

    assert text == (
        "app: no-op\naction: no-op\n\nDeployment/app: no-op\n  nothing changes\n\nwarnings: none"
    )


def record(number: int, phase: DeployPhase, **changes: Any) -> DeploymentRecord:
    """A deployment of NEW to app in staging, received ``number`` minutes after AT."""
    request = ArtifactPublished(
        service="app", image=NEW, commit="b2c3d4e", pipeline_id=f"github:1:{number}"
    )
    received = AT + timedelta(minutes=number)
    fields = {
        "id": f"dep-{number}", "service": "app", "environment": "staging", "request": request,
        "phase": phase,
    }  # fmt: skip
    return DeploymentRecord.model_validate({"received_at": received, **fields, **changes})


def history_records() -> list[DeploymentRecord]:
    """Newest first, as ``GET /api/deployments`` orders them."""
    start = AT + timedelta(minutes=2, seconds=5)
    failed = record(
        2,
        DeployPhase.ROLLED_BACK,
        started_at=start,
        finished_at=start + timedelta(minutes=2, seconds=7),
        reason="rollout failed: 1 pod(s) not ready: container app CrashLoopBackOff "
        "(exit code 3) and more text than a column should hold",
    )
    back = DeploymentRecord(
        id="dep-3",
        service="app",
        environment="prod",
        phase=DeployPhase.QUEUED,
        rollback_to_revision=4,
        received_at=AT + timedelta(minutes=3),
    )
    done = record(
        1,
        DeployPhase.SUCCEEDED,
        started_at=AT + timedelta(minutes=1),
        finished_at=AT + timedelta(minutes=1, seconds=42),
        plan_summary="app: rollout (image 1.0.0-a1b2c3d -> 1.1.0-b2c3d4e)",
    )
    return [back, failed, done]


def test_history_table_has_one_row_per_deployment() -> None:
    body = TypeAdapter(list[DeploymentRecord]).dump_python(history_records(), mode="json")
    lines = render_history(body).splitlines()

    assert lines[0].split() == [
        "ID", "SERVICE", "ENVIRONMENT", "IMAGE", "PHASE", "STARTED", "DURATION", "REASON"
    ]  # fmt: skip
    assert lines[1].split() == [
        "dep-3", "app", "prod", "rollback", "to", "rev", "4", "queued", "2026-03-04", "10:03:00",
        "-", "-",
    ]  # fmt: skip
    assert lines[2].split()[:8] == [
        "dep-2", "app", "staging", NEW, "rolled_back", "2026-03-04", "10:02:05", "2m07s"
    ]  # fmt: skip
    cut = "rollout failed: 1 pod(s) not ready: container app CrashLo..."  # 60 characters
    assert lines[2].endswith(f"2m07s     {cut}")
    assert lines[3].endswith("42s       app: rollout (image 1.0.0-a1b2c3d -> 1.1.0-b2c3d4e)")
    assert len(lines) == 4
    assert render_history([]) == "no deployments"


def service_views() -> list[ServiceView]:
    drift = DriftReport(
        service="order",
        mode=DriftMode.WARN,
        checked_at=AT,
        fields=[
            DriftedField(
                object="Deployment/order", path="containers[order].image", before="x", after="y"
            )
        ],
    )
    last = ServiceState(
        service="order",
        image=NEW,
        revision=5,
        phase=DeployPhase.SUCCEEDED,
        deployment_id="dep-1",
        updated_at=AT,
    )
    return [
        ServiceView(
            service="order",
            environment="staging",
            release_status="deployed",
            revision=5,
            image=NEW,
            last=last,
            running="dep-9",
            drift=drift,
        ),
        ServiceView(
            service="payment", release_status=None, revision=None, image=None, last=None,
            running=None,
        ),
    ]  # fmt: skip


def test_status_table_has_one_row_per_service() -> None:
    body = TypeAdapter(list[ServiceView]).dump_python(service_views(), mode="json")

    assert render_status(body).splitlines() == [
        "SERVICE  ENVIRONMENT  RELEASE        REV  IMAGE                                     "
        "LAST       WHEN                 NOTE",
        f"order    staging      deployed       5    {NEW}  succeeded  2026-03-04 10:00:00  "
        "running dep-9, 1 field drifted",
        "payment  -            not installed  -    -                                         "
        "-          -                    -",
    ]


def test_table_helpers() -> None:
    assert table(("A", "LONGER"), [("value\nnext", "x")]) == "A            LONGER\nvalue\\nnext  x"
    assert duration("2026-03-04T10:00:00Z", "2026-03-04T11:02:30Z") == "1h02m"
    assert duration("2026-03-04T10:00:00Z", None) == "-"


# ---- the CLI against an HTTP server answering as the deployer's API ---------------------------


@pytest.fixture
def api(risky_plan: Plan) -> Iterator[FakeApi]:
    fake = FakeApi(
        {
            # As FastAPI serialises them: the models' own JSON.
            ("POST", "/api/plan"): json.dumps(plan_body(risky_plan)).encode(),
            ("GET", "/api/services"): TypeAdapter(list[ServiceView]).dump_json(service_views()),
            ("GET", "/api/deployments"): TypeAdapter(list[DeploymentRecord]).dump_json(
                history_records()
            ),
            ("POST", "/api/deployments/dep-9/canary/abort"): b"{}",
        }
    )
    with serving(fake):
        yield fake


COMMANDS = {
    "plan": (["plan", "app", NEW, "--commit", "b2c3d4e"], ("POST", "/api/plan")),
    "status": (["status"], ("GET", "/api/services")),
    "history": (["history", "--limit", "3"], ("GET", "/api/deployments")),
}


def run(api: FakeApi, *args: str) -> Any:
    env = {"DEPLOYER_URL": api.url, "DEPLOYER_API_TOKEN": TOKEN}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_output_json_prints_the_api_body_unchanged(api: FakeApi, command: str) -> None:
    args, route = COMMANDS[command]
    result = run(api, *args, "--output", "json")

    assert result.exit_code == 0, result.output
    assert result.stdout == api.bodies[route].decode() + "\n"
    assert json.loads(result.stdout) == json.loads(api.bodies[route])
    assert api.asked[-1][2] == f"Bearer {TOKEN}"


def test_tables_are_the_default(api: FakeApi, risky_plan: Plan) -> None:
    plan = run(api, *COMMANDS["plan"][0])
    assert plan.exit_code == 0, plan.output
    assert plan.stdout == render_plan(plan_body(risky_plan)) + "\n"
    assert "spec.replicas" in plan.stdout
    assert "2 -> 6" in plan.stdout
    method, path, _, sent = api.asked[-1]
    assert (method, path, sent["service"], sent["image"]) == ("POST", "/api/plan", "app", NEW)

    status = run(api, "status", "-o", "TABLE")
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith("SERVICE  ENVIRONMENT  RELEASE")
    assert "running dep-9, 1 field drifted" in status.stdout

    history = run(api, *COMMANDS["history"][0])
    assert history.exit_code == 0, history.output
    assert history.stdout.splitlines()[0].startswith("ID     SERVICE  ENVIRONMENT  IMAGE")
    assert api.asked[-1][1] == "/api/deployments?limit=3"


def test_a_bad_output_names_the_allowed_values(api: FakeApi) -> None:
    result = run(api, "status", "--output", "yaml")

    assert result.exit_code == 2
    message = " ".join(result.stderr.replace("│", " ").split())  # typer's error panel
    assert "Invalid value for '--output' / '-o'" in message
    assert "'yaml' is not one of 'table', 'json'." in message
    assert api.asked == []


def test_canary_commands_go_to_the_api_with_the_note(api: FakeApi) -> None:
    result = run(api, "canary", "abort", "dep-9", "--note", "p99 looks off")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "dep-9: abort sent (back to the stable pods now; the deployment ends rolled_back)\n"
    )
    method, path, token, sent = api.asked[-1]
    assert (method, path, sent) == (
        "POST",
        "/api/deployments/dep-9/canary/abort",
        {"note": "p99 looks off"},
    )
    assert token == f"Bearer {TOKEN}"


def test_an_unknown_canary_command_names_the_known_ones(api: FakeApi) -> None:
    result = run(api, "canary", "rollback", "dep-9")
    assert result.exit_code == 2
    assert "unknown canary command 'rollback'; known are promote:" in result.stderr
    assert api.asked == []
