"""``deployer environments | board | releases | promotions | promote | holds | dora`` and the
``--environment`` option of the older commands.

The API bodies come from the deployer's own code: the environments parsed from a configuration,
gates decided by ``decide_gates``, the board and the releases by the views' pure functions, the
DORA figures by ``dora_figures``, over one made-up ledger: order's release 1.0.0 serves in dev and
staging and waits for a person's approval to enter prod; its 1.1.0 succeeded in dev and soaks
before staging; payment was rolled back in staging, which holds automatic promotion there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter
from typer.testing import CliRunner

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.promotions import GateVerdict, PromotionState
from deployer.cli.app import app
from deployer.cli.format import span
from deployer.cli.promotion_format import (
    image_tag,
    render_board,
    render_dora,
    render_environments,
    render_holds,
    render_promotion,
    render_promotions,
    render_releases,
)
from deployer.promotion.dora import DoraFigures, dora_figures
from deployer.promotion.environments import Environments, EnvironmentSpec
from deployer.promotion.gates import Facts, Upstream, blocking, decide_gates
from deployer.promotion.model import Approval, Hold, Promotion
from deployer.promotion.releases import Release
from deployer.promotion.views import ReleaseView, ServiceRow, board, release_views
from deployer.records import DeploymentRecord, Origin, ServiceState
from deployer.targets import Target
from tests.deployer.fake_api import FakeApi, serving

AT = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)  # a Wednesday: no freeze window holds
NOW = AT + timedelta(minutes=2)
OLD = "registry.local/order-service:1.0.0-a1b2c3d"
NEW = "registry.local/order-service:1.1.0-b2c3d4e"
PAY_OLD = "registry.local/payment-service:0.2.0-d4e5f6a"
PAY_NEW = "registry.local/payment-service:0.3.0-c3d4e5f"
TOKEN = "t" * 20

ENVIRONMENTS = Environments.model_validate(
    {
        "environments": [
            {"name": "dev", "namespace": "flotilla-dev"},
            {
                "name": "staging",
                "namespace": "flotilla-staging",
                "upstream": "dev",
                "promotion": {
                    "soakSeconds": 300,
                    "analysis": {"minSuccessRate": 0.995, "minRequests": 20},
                },
            },
            {
                "name": "prod",
                "namespace": "flotilla-prod",
                "kubeContext": "prod-eu",
                "upstream": "staging",
                "promotion": {
                    "soakSeconds": 600,
                    "approval": True,
                    "freeze": [
                        {
                            "name": "year-end",
                            "reason": "change freeze for the holidays",
                            "timezone": "Europe/Berlin",
                            "start": "2026-12-24T00:00",
                            "end": "2027-01-02T00:00",
                            "rrule": "FREQ=YEARLY",
                        },
                        {
                            "name": "weekend",
                            "timezone": "Europe/Berlin",
                            "start": "2026-01-02T18:00",
                            "duration": "PT62H",
                            "rrule": "FREQ=WEEKLY;BYDAY=FR",
                        },
                    ],
                },
            },
        ]
    }
)


def release(image: str, commit: str, created: datetime, committed: datetime | None) -> Release:
    """The release of ``image`` built from ``commit``."""
    service = "payment" if "payment" in image else "order"
    request = ArtifactPublished(
        service=service, image=image, commit=commit, commit_time=committed,
        pipeline_id=f"github:{commit}",
    )  # fmt: skip
    return Release.of(request, "0.1.0", created)


ORDER_OLD = release(OLD, "a1b2c3d", AT - timedelta(days=1), AT - timedelta(days=1, hours=2))
ORDER_NEW = release(NEW, "b2c3d4e", AT, None)
PAYMENT_OLD = release(PAY_OLD, "d4e5f6a", AT - timedelta(days=3), None)
PAYMENT_NEW = release(PAY_NEW, "c3d4e5f", AT - timedelta(hours=1), None)


def deployment(
    number: int,
    environment: str,
    of: Release,
    phase: DeployPhase,
    received: datetime,
    seconds: float = 42,
    **changes: Any,
) -> DeploymentRecord:
    """Deployment ``dep-<number>`` of release ``of`` into ``environment``, ``seconds`` long."""
    return DeploymentRecord(
        id=f"dep-{number}", service=of.service, environment=environment, release_id=of.id,
        request=of.request(), phase=phase, received_at=received, started_at=received,
        finished_at=received + timedelta(seconds=seconds), **changes,
    )  # fmt: skip


RECORDS = [
    deployment(1, "dev", ORDER_OLD, DeployPhase.SUCCEEDED, AT - timedelta(days=1)),
    deployment(
        2,
        "staging",
        ORDER_OLD,
        DeployPhase.SUCCEEDED,
        AT - timedelta(hours=23),
        origin=Origin.PROMOTION,
        promotion_id=Promotion.id_of(ORDER_OLD.id, "staging"),
    ),
    deployment(3, "dev", ORDER_NEW, DeployPhase.SUCCEEDED, AT),
    deployment(4, "dev", PAYMENT_OLD, DeployPhase.SUCCEEDED, AT - timedelta(days=3)),
    deployment(6, "staging", PAYMENT_OLD, DeployPhase.SUCCEEDED, AT - timedelta(days=3)),
    deployment(7, "dev", PAYMENT_NEW, DeployPhase.SUCCEEDED, AT - timedelta(hours=1)),
    deployment(
        5,
        "staging",
        PAYMENT_NEW,
        DeployPhase.ROLLED_BACK,
        AT - timedelta(minutes=50),
        127,
        reason="rollout failed: 1 pod(s) not ready: container payment CrashLoopBackOff",
    ),
]
BY_ID = {r.id: r for r in RECORDS}

HOLD = Hold(
    environment="staging",
    service="payment",
    reason=f"dep-5 ended rolled_back: {BY_ID['dep-5'].reason}",
    deployment_id="dep-5",
    since=AT - timedelta(minutes=48),
)


def promotion(
    of: Release, environment: str, upstream: DeploymentRecord, hold: Hold | None = None
) -> Promotion:
    """The automatic promotion of ``of`` into ``environment``, its gates decided at NOW."""
    spec = ENVIRONMENTS.get(environment)
    assert spec.upstream is not None
    assert upstream.finished_at is not None
    waiting = Promotion(
        id=Promotion.id_of(of.id, environment), release=of, source=spec.upstream,
        environment=environment, automatic=True, upstream_deployment_id=upstream.id,
        verified_at=upstream.finished_at, created_at=upstream.finished_at, updated_at=NOW,
    )  # fmt: skip
    gates = decide_gates(
        spec.promotion,
        waiting,
        Facts(Upstream.of(waiting, of.image), hold, None, NOW),
    )
    first = blocking(gates)
    assert first is not None
    return waiting.moved(NOW, gates=gates, reason=f"at the {first.gate} gate: {first.reason}")


INTO_PROD = promotion(ORDER_OLD, "prod", BY_ID["dep-2"])
INTO_STAGING = promotion(ORDER_NEW, "staging", BY_ID["dep-3"])
PROMOTED = Promotion(
    id=Promotion.id_of(ORDER_OLD.id, "staging"), release=ORDER_OLD, source="dev",
    environment="staging", automatic=True, state=PromotionState.PROMOTED,
    reason="dep-2 ended succeeded", upstream_deployment_id="dep-1",
    verified_at=AT - timedelta(days=1), deployment_id="dep-2",
    created_at=AT - timedelta(days=1), updated_at=AT - timedelta(hours=23),
)  # fmt: skip
PROMOTIONS = [PROMOTED, INTO_PROD, INTO_STAGING]  # oldest first, as the store keeps them


def state(record: DeploymentRecord, image: str | None = None) -> ServiceState:
    """What serves in ``record``'s target after it (``image``: a rollback's)."""
    return ServiceState(
        service=record.service, environment=record.environment, image=image or record.image,
        phase=record.phase, deployment_id=record.id, updated_at=record.finished_at,
    )  # fmt: skip


STATES = {
    Target("dev", "order"): state(BY_ID["dep-3"]),
    Target("staging", "order"): state(BY_ID["dep-2"]),
    Target("dev", "payment"): state(BY_ID["dep-7"]),
    Target("staging", "payment"): state(BY_ID["dep-5"], image=PAY_OLD),
}


def dumped(model: type[Any], value: Any) -> bytes:
    """``value`` as FastAPI answers it: the model's JSON, by alias."""
    return TypeAdapter(model).dump_json(value, by_alias=True)


def parsed(model: type[Any], value: Any) -> Any:
    """The JSON body of ``value``, parsed (what the CLI works on)."""
    return json.loads(dumped(model, value))


def board_rows() -> list[ServiceRow]:
    """The board of order and payment."""
    return board(ENVIRONMENTS, ["order", "payment"], STATES, BY_ID, PROMOTIONS, [HOLD])


def releases() -> list[ReleaseView]:
    """Every release, newest first."""
    every = [ORDER_OLD, ORDER_NEW, PAYMENT_OLD, PAYMENT_NEW]
    return release_views(ENVIRONMENTS, every, RECORDS, PROMOTIONS, STATES)


def figures() -> list[DoraFigures]:
    """The DORA figures of the last week up to NOW."""
    return dora_figures(RECORDS, since=NOW - timedelta(days=7), until=NOW)


# ---- the tables --------------------------------------------------------------------------------


def test_a_gitops_environment_shows_its_repository_where_it_deploys() -> None:
    specs = Environments.model_validate(
        [
            {"name": "dev", "namespace": "flotilla-dev"},
            {
                "name": "prod",
                "namespace": "flotilla-prod",
                "upstream": "dev",
                "mode": "gitops",
                "gitops": {"repository": "https://git.example.com/p.git"},
            },
        ]
    ).ordered()
    lines = render_environments(parsed(list[EnvironmentSpec], specs)).splitlines()
    assert (
        re.split(r"\s{2,}", lines[2])[2] == "flotilla-prod (gitops: https://git.example.com/p.git)"
    )


def test_environments_show_each_upstream_and_the_rules_of_promotion() -> None:
    text = render_environments(parsed(list[EnvironmentSpec], ENVIRONMENTS.ordered()))
    lines = text.splitlines()

    assert lines[0].split() == [
        "ENVIRONMENT", "UPSTREAM", "NAMESPACE", "PROMOTION", "SOAK", "APPROVAL", "ANALYSIS",
        "FREEZE",
    ]  # fmt: skip
    assert re.split(r"\s{2,}", lines[1]) == [
        "dev", "-", "flotilla-dev", "entry (CI's releases)", "-", "-", "-", "-"
    ]  # fmt: skip
    assert re.split(r"\s{2,}", lines[2]) == [
        "staging", "dev", "flotilla-staging", "automatic", "5m00s", "no",
        "success >= 99.5%, p99 <= 0.5s, >= 20 requests, <= 0 handler failures, <= 0 dead letters",
        "none",
    ]  # fmt: skip
    assert re.split(r"\s{2,}", lines[3]) == [
        "prod", "staging", "prod-eu/flotilla-prod", "automatic", "10m00s", "required", "none",
        "year-end, weekend",
    ]  # fmt: skip
    assert lines[5:] == [
        "freeze windows (local times)",
        "  ENVIRONMENT  WINDOW    START                           LENGTH               "
        "RECURS                REASON",
        "  prod         year-end  2026-12-24 00:00 Europe/Berlin  to 2027-01-02 00:00  "
        "FREQ=YEARLY           change freeze for the holidays",
        "  prod         weekend   2026-01-02 18:00 Europe/Berlin  for 2d14h            "
        "FREQ=WEEKLY;BYDAY=FR  -",
    ]
    assert not any(line.endswith(" ") for line in lines)


def test_board_shows_what_serves_the_gate_coming_in_and_the_hold() -> None:
    lines = render_board(parsed(list[ServiceRow], board_rows())).splitlines()
    soak_ends = (BY_ID["dep-3"].finished_at or AT) + timedelta(seconds=300)

    assert lines == [
        "SERVICE  ENVIRONMENT  SERVING        PHASE        INCOMING",
        "order    dev          1.1.0-b2c3d4e  succeeded    -",
        "order    staging      1.0.0-a1b2c3d  succeeded    1.1.0-b2c3d4e waiting",
        f"  incoming {INTO_STAGING.id}: soak waiting: soaking in dev until "
        f"{soak_ends:%Y-%m-%d %H:%M:%S} UTC (300 s)",
        "order    prod         not deployed   -            1.0.0-a1b2c3d waiting",
        f"  incoming {INTO_PROD.id}: approval waiting: waiting for a person's approval "
        f"(deployer promotions approve {INTO_PROD.id})",
        "payment  dev          0.3.0-c3d4e5f  succeeded    -",
        "payment  staging      0.2.0-d4e5f6a  rolled_back  -",
        "  held since 2026-03-04 09:12:00 by deployer: dep-5 ended rolled_back: rollout failed: "
        "1 pod(s) not ready: container payment CrashLoopBackOff "
        "(deployer holds clear staging payment)",
        "payment  prod         not deployed   -            -",
    ]
    assert render_board([]) == "no services"


def test_releases_show_where_each_stands_in_every_environment() -> None:
    lines = render_releases(parsed(list[ReleaseView], releases())).splitlines()

    assert lines[0].split() == [
        "RELEASE", "IMAGE", "COMMIT", "CREATED", "DEV", "STAGING", "PROD"
    ]  # fmt: skip
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[1:]}
    assert rows[ORDER_NEW.id] == [
        ORDER_NEW.id, NEW, "b2c3d4e", "2026-03-04 10:00:00", "serving", "waiting (soak)",
        "not_reached",
    ]  # fmt: skip
    assert rows[ORDER_OLD.id][4:] == ["replaced", "serving", "waiting (approval)"]
    assert rows[PAYMENT_NEW.id][4:] == ["serving", "rolled_back", "not_reached"]
    assert rows[PAYMENT_OLD.id][4:] == ["replaced", "serving", "not_reached"]
    assert [line.split()[0] for line in lines[1:]] == [
        ORDER_NEW.id, PAYMENT_NEW.id, ORDER_OLD.id, PAYMENT_OLD.id
    ]  # fmt: skip
    assert render_releases([]) == "no releases"


def test_promotions_list_and_one_promotion_with_every_gate_and_its_evidence() -> None:
    listed = render_promotions(parsed(list[Promotion], list(reversed(PROMOTIONS)))).splitlines()
    assert listed[0].split() == ["ID", "SERVICE", "IMAGE", "PATH", "STATE", "UPDATED", "REASON"]
    assert re.split(r"\s{2,}", listed[1])[:6] == [
        INTO_STAGING.id, "order", "1.1.0-b2c3d4e", "dev -> staging", "waiting",
        "2026-03-04 10:02:00",
    ]  # fmt: skip
    assert listed[1].endswith("at the soak gate: soaking in dev until 2026-03-04 10:05:4...")
    assert re.split(r"\s{2,}", listed[3])[3:5] == ["dev -> staging", "promoted"]
    assert render_promotions([]) == "no promotions"

    approved = INTO_PROD.moved(
        NOW,
        approval=Approval(by="alice", reason="ship it", override_freeze=True, at=NOW),
        deployment_id="dep-9",
    )
    shown = render_promotion(parsed(Promotion, approved))
    head, facts, gates = shown.split("\n\n")
    assert head == f"promotion {INTO_PROD.id}: waiting"
    assert facts.splitlines() == [
        f"release     {ORDER_OLD.id}  {OLD}  commit a1b2c3d",
        "path        staging -> prod",
        "verified    in staging by dep-2 at 2026-03-03 11:00:42",
        "started     automatically at 2026-03-03 11:00:42",
        "updated     2026-03-04 10:02:00",
        f"reason      at the approval gate: waiting for a person's approval "
        f"(deployer promotions approve {INTO_PROD.id})",
        "deployment  dep-9",
        "approval    alice at 2026-03-04 10:02:00 (overrides a freeze): ship it",
    ]
    gate_lines = gates.splitlines()
    assert gate_lines[0].split() == ["GATE", "VERDICT", "DECIDED", "REASON"]
    assert [line.split()[:2] for line in gate_lines if not line.startswith(" ")][1:] == [
        ["hold", "passed"], ["verified", "passed"], ["soak", "passed"], ["analysis", "passed"],
        ["freeze", "passed"], ["approval", "waiting"],
    ]  # fmt: skip
    verified = gate_lines.index(next(x for x in gate_lines if x.startswith("verified")))
    assert gate_lines[verified + 1] == (
        "  evidence: verified_at=2026-03-03T11:00:42+00:00, deployment_id=dep-2, "
        "environment=staging"
    )
    assert gate_lines[verified + 2].startswith("soak      passed   2026-03-04 10:02:00  soaked 600")
    assert "  evidence: soak_seconds=600.0, since=2026-03-03T11:00:42+00:00" in gate_lines
    assert not any(line.endswith(" ") for line in shown.splitlines())


def test_holds_table_says_how_to_clear_one() -> None:
    text = render_holds(parsed(list[Hold], [HOLD]))
    lines = text.splitlines()

    assert lines[0].split() == ["ENVIRONMENT", "SERVICE", "SINCE", "BY", "DEPLOYMENT", "REASON"]
    assert re.split(r"\s{2,}", lines[1]) == [
        "staging", "payment", "2026-03-04 09:12:00", "deployer", "dep-5",
        "dep-5 ended rolled_back: rollout failed: 1 pod(s) not rea...",
    ]  # fmt: skip
    assert lines[-1] == (
        "automatic promotion resumes once cleared: deployer holds clear ENVIRONMENT SERVICE"
    )
    assert render_holds([]) == "no holds"


def test_dora_table_has_the_four_metrics_per_service_and_environment() -> None:
    found = figures()
    lines = render_dora(parsed(list[DoraFigures], found)).splitlines()

    assert lines[0] == "from 2026-02-25 10:02:00 to 2026-03-04 10:02:00 UTC (7d00h)"
    assert lines[1].split()[:4] == ["SERVICE", "ENVIRONMENT", "DEPLOYS/DAY", "LEAD"]
    rows = {tuple(line.split()[:2]): re.split(r"\s{2,}", line) for line in lines[2:-2]}
    # order in staging: one change, 3 hours after its commit (by the commit time CI sent)
    assert rows[("order", "staging")] == [
        "order", "staging", "0.14 (1)", "3h00m", "3h00m", "0% (0/1)", "-", "0"
    ]  # fmt: skip
    # payment in staging: two changes, the second rolled back and not restored yet; the lead
    # time of the first counts from when the deployer received it (*)
    assert rows[("payment", "staging")] == [
        "payment", "staging", "0.14 (1)", "42s*", "42s", "50% (1/2)", "-", "1"
    ]  # fmt: skip
    assert rows[("order", "dev")][3:5] == ["1h00m*", "2h00m"]
    assert lines[-1].startswith("* 4 lead times counted from when the deployer received")
    assert render_dora([]) == "no deployments in the window"


def test_helpers_for_tags_and_spans() -> None:
    assert image_tag(f"{NEW}@sha256:{'a' * 64}") == "1.1.0-b2c3d4e"
    assert image_tag("localhost:5000/order") == "localhost:5000/order"
    assert image_tag(None) == "-"
    assert [span(s) for s in (None, 4.4, 125, 3720, 2 * 86400 + 3 * 3600)] == [
        "-", "4s", "2m05s", "1h02m", "2d03h"
    ]  # fmt: skip


# ---- the commands against an HTTP server answering as the deployer's API ------------------------

APPROVED = INTO_PROD.moved(
    NOW, approval=Approval(by="alice", reason="release notes checked", at=NOW)
)
CANCELLED = INTO_STAGING.moved(NOW, state=PromotionState.CANCELLED, reason="cancelled by alice")
REQUESTED = Promotion(
    id=Promotion.id_of(ORDER_NEW.id, "staging"), release=ORDER_NEW, source="dev",
    environment="staging", automatic=False, requested_by="alice",
    upstream_deployment_id="dep-3", verified_at=NOW, created_at=NOW, updated_at=NOW,
)  # fmt: skip
SET = Hold(environment="prod", service="order", reason="waiting for the DBA", since=NOW, by="bob")


def body(value: BaseModel | list[Any]) -> bytes:
    """The JSON FastAPI answers with for ``value`` (by alias)."""
    return TypeAdapter(Any).dump_json(value, by_alias=True)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi(
        {
            ("GET", "/api/environments"): body(ENVIRONMENTS.ordered()),
            ("GET", "/api/environments/board"): body(board_rows()),
            ("GET", "/api/releases"): body(releases()),
            ("GET", "/api/promotions"): body(list(reversed(PROMOTIONS))),
            ("GET", f"/api/promotions/{INTO_PROD.id}"): body(INTO_PROD),
            ("POST", "/api/promotions"): body(REQUESTED),
            ("POST", f"/api/promotions/{INTO_PROD.id}/approve"): body(APPROVED),
            ("POST", f"/api/promotions/{INTO_STAGING.id}/cancel"): body(CANCELLED),
            ("GET", "/api/holds"): body([HOLD]),
            ("PUT", "/api/holds/prod/order"): body(SET),
            ("DELETE", "/api/holds/staging/payment"): body(HOLD),
            ("GET", "/api/dora"): body(figures()),
            ("POST", "/api/services/order/rollback"): body(BY_ID["dep-2"]),
            ("GET", "/api/deployments"): body(list(reversed(RECORDS))),
            ("POST", "/api/drift"): b"[]",
            ("POST", "/api/plan"): json.dumps(
                {"summary": "order: no-op", "plan": {"service": "order", "action": "no-op"}}
            ).encode(),
            ("POST", "/api/promotions/nope.prod/approve"): json.dumps(
                {"status": 404, "detail": "no promotion nope.prod (that this token may read)"}
            ).encode(),
        },
        statuses={("POST", "/api/promotions/nope.prod/approve"): 404},
    )
    with serving(fake):
        yield fake


def run(api: FakeApi, *args: str) -> Any:
    env = {"DEPLOYER_URL": api.url, "DEPLOYER_API_TOKEN": TOKEN}
    return CliRunner().invoke(app, list(args), env=env)


READS: dict[str, tuple[list[str], str, Callable[[Any], str]]] = {
    "environments": (["environments"], "/api/environments", render_environments),
    "board": (["board"], "/api/environments/board", render_board),
    "releases": (["releases"], "/api/releases", render_releases),
    "promotions": (["promotions"], "/api/promotions", render_promotions),
    "promotions show": (
        ["promotions", "show", INTO_PROD.id],
        f"/api/promotions/{INTO_PROD.id}",
        render_promotion,
    ),
    "holds": (["holds"], "/api/holds", render_holds),
    "dora": (["dora"], "/api/dora", render_dora),
}


@pytest.mark.parametrize("command", READS)
def test_each_view_prints_its_table_or_the_api_body(api: FakeApi, command: str) -> None:
    args, path, render = READS[command]

    table = run(api, *args)
    assert table.exit_code == 0, table.output
    assert table.stdout == render(json.loads(api.bodies[("GET", path)])) + "\n"

    raw = run(api, *args, "-o", "json")
    assert raw.exit_code == 0, raw.output
    assert raw.stdout == api.bodies[("GET", path)].decode() + "\n"
    assert [(m, p.split("?")[0], t) for m, p, t, _ in api.asked] == [
        ("GET", path, f"Bearer {TOKEN}")
    ] * 2


def test_filters_go_to_the_api_as_query_parameters(api: FakeApi) -> None:
    calls = [
        ["releases", "--service", "order", "--limit", "5"],
        ["promotions", "--service", "order", "--environment", "prod", "--state", "WAITING"],
        ["dora", "--since", "2026-03-01T00:00:00+01:00", "--until", "2026-03-04T00:00:00Z"],
        ["history", "--environment", "staging", "--service", "order"],
        ["rollback", "order", "--environment", "staging", "--revision", "3"],
        ["drift", "order", "--environment", "prod"],
        ["plan", "order", NEW, "--commit", "b2c3d4e", "--environment", "staging"],
    ]
    for args in calls:
        result = run(api, *args)
        assert result.exit_code == 0, (args, result.output)
    assert [path for _, path, _, _ in api.asked] == [
        "/api/releases?service=order&limit=5",
        "/api/promotions?service=order&environment=prod&state=waiting",
        "/api/dora?since=2026-03-01T00%3A00%3A00%2B01%3A00&until=2026-03-04T00%3A00%3A00%2B00%3A00",
        "/api/deployments?limit=20&service=order&environment=staging",
        "/api/services/order/rollback?environment=staging",
        "/api/drift?service=order&environment=prod",
        "/api/plan?environment=staging",
    ]
    assert api.asked[4][3] == {"revision": 3}


def test_without_environment_the_older_commands_ask_as_before(api: FakeApi) -> None:
    for args in (["rollback", "order"], ["drift"], ["history", "--limit", "3"]):
        assert run(api, *args).exit_code == 0
    assert [path for _, path, _, _ in api.asked] == [
        "/api/services/order/rollback", "/api/drift", "/api/deployments?limit=3"
    ]  # fmt: skip


def test_a_window_without_an_offset_is_refused_before_asking(api: FakeApi) -> None:
    result = run(api, "dora", "--since", "2026-03-01T00:00:00")

    assert result.exit_code == 2
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "'2026-03-01T00:00:00' is not an ISO 8601 date-time with a UTC offset" in message
    assert "--since" in message
    assert api.asked == []


def test_promote_asks_for_the_release_in_the_environment(api: FakeApi) -> None:
    result = run(api, "promote", ORDER_NEW.id, "staging")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{REQUESTED.id}: waiting (waiting for its gates)",
        f"its gates: deployer promotions show {REQUESTED.id}",
    ]
    assert api.asked[-1][:2] == ("POST", "/api/promotions")
    assert api.asked[-1][3] == {"release": ORDER_NEW.id, "environment": "staging"}


def test_the_commands_the_gate_reasons_name_work_as_written(api: FakeApi) -> None:
    """The approval gate and the hold print the command a person runs: run exactly those."""
    held = promotion(PAYMENT_NEW, "staging", BY_ID["dep-7"], hold=HOLD)
    approval, hold = INTO_PROD.gates[-1], held.gates[0]
    assert (approval.verdict, hold.verdict) == (GateVerdict.WAITING, GateVerdict.WAITING)
    approve = re.search(r"\(deployer (promotions approve [^)]+)\)", approval.reason)
    clear = re.search(r"\(deployer (holds clear [^)]+)\)", hold.reason)
    assert approve is not None
    assert clear is not None
    assert approve.group(1) == f"promotions approve {INTO_PROD.id}"
    assert clear.group(1) == "holds clear staging payment"

    approved = run(api, *approve.group(1).split(), "--reason", "release notes checked")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout == (
        f"{INTO_PROD.id}: approved by alice; its gates are decided again "
        "(deployer promotions show to follow it)\n"
    )
    assert api.asked[-1][:2] == ("POST", f"/api/promotions/{INTO_PROD.id}/approve")
    assert api.asked[-1][3] == {"reason": "release notes checked", "overrideFreeze": False}

    cleared = run(api, *clear.group(1).split())
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout == (
        f"payment in staging: hold cleared (it was: {HOLD.reason}); automatic promotion resumes\n"
    )
    assert api.asked[-1][:2] == ("DELETE", "/api/holds/staging/payment")


def test_approve_through_a_freeze_cancel_and_set_a_hold(api: FakeApi) -> None:
    through = run(
        api, "promotions", "approve", INTO_PROD.id, "--override-freeze", "--reason", "hotfix"
    )
    assert through.exit_code == 0, through.output
    assert api.asked[-1][3] == {"reason": "hotfix", "overrideFreeze": True}

    cancelled = run(api, "promotions", "cancel", INTO_STAGING.id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout == f"{INTO_STAGING.id}: cancelled (cancelled by alice)\n"
    assert api.asked[-1][:2] == ("POST", f"/api/promotions/{INTO_STAGING.id}/cancel")

    held = run(api, "holds", "set", "prod", "order", "--reason", "waiting for the DBA")
    assert held.exit_code == 0, held.output
    assert held.stdout == "order held in prod: waiting for the DBA\n"
    assert api.asked[-1][:2] == ("PUT", "/api/holds/prod/order")
    assert api.asked[-1][3] == {"reason": "waiting for the DBA"}

    no_reason = run(api, "holds", "set", "prod", "order")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.stderr


def test_a_refusal_prints_the_problem_detail(api: FakeApi) -> None:
    result = run(api, "promotions", "approve", "nope.prod")

    assert result.exit_code == 1
    assert result.stderr == "404: no promotion nope.prod (that this token may read)\n"
