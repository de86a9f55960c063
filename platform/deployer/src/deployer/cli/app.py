"""`deployer`: plan, deploy, rollback, canary commands, status and history, environments,
releases, promotions, holds and the DORA figures through the deployer's API."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import typer

from deploy_contract.promotions import PromotionState
from deployer.cli.format import (
    render_board,
    render_dora,
    render_environments,
    render_history,
    render_holds,
    render_plan,
    render_promotion,
    render_promotions,
    render_releases,
    render_status,
)

app = typer.Typer(help="Talk to the Flotilla deployer (DEPLOYER_URL, DEPLOYER_API_TOKEN).")


class Output(StrEnum):
    """How the commands that show something print: readable tables, or the API's JSON body as
    is."""

    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table: readable columns; json: the API's response body, unchanged (for scripts)",
    ),
]

UrlOption = Annotated[str, typer.Option(envvar="DEPLOYER_URL", help="The deployer's base URL")]
TokenOption = Annotated[
    str,
    typer.Option(
        envvar="DEPLOYER_API_TOKEN",
        help="API token with the scope the command needs (read, deploy, rollback, approve)",
    ),
]


def _send(method: str, url: str, token: str | None = None, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        typer.secho(f"cannot reach the deployer at {url}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.secho(f"{response.status_code}: {detail}", fg="red", err=True)
        raise typer.Exit(1)
    return response


def _query(**params: str | int | None) -> str:
    """``?name=value&...`` of the ``params`` that are set, URL-encoded; ``""`` when none is."""
    given = {name: value for name, value in params.items() if value is not None}
    return f"?{urlencode(given)}" if given else ""


def _segment(value: str) -> str:
    """``value`` as one path segment of a URL."""
    return quote(value, safe="")


def _call(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    return _send(method, url, token, body).json()


def _show(response: httpx.Response, output: Output, render: Callable[[Any], str]) -> None:
    """Print ``response``'s body as is (json) or as ``render`` makes it readable (table)."""
    typer.echo(response.text if output is Output.JSON else render(response.json()))


def _request(
    service: str,
    image: str,
    commit: str,
    values: str | None,
    rollback: bool,
    force: bool = False,
) -> Any:
    return {
        "service": service,
        "image": image,
        "commit": commit,
        "pipeline_id": f"cli:{os.environ.get('USER', 'someone')}",
        "rollback": rollback,
        "values": json.loads(values) if values else {},
        "force": force,
    }


ValuesOption = Annotated[
    str | None, typer.Option(help="Extra chart values as JSON, e.g. '{\"replicaCount\": 3}'")
]
EnvironmentOption = Annotated[
    str | None,
    typer.Option(help="The environment (GET /api/environments names them); default: the entry"),
]


@app.command()
def plan(
    service: str,
    image: str,
    commit: Annotated[str, typer.Option(help="The commit the image was built from")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    values: ValuesOption = None,
    environment: EnvironmentOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show what deploying IMAGE as SERVICE would change; changes nothing."""
    body = _request(service, image, commit, values, False)
    path = f"{url}/api/plan{_query(environment=environment)}"
    _show(_send("POST", path, token, body), output, render_plan)


@app.command()
def deploy(
    service: str,
    image: str,
    commit: Annotated[str, typer.Option(help="The commit the image was built from")],
    values: ValuesOption = None,
    rollback: Annotated[bool, typer.Option(help="Allow an older image")] = False,
    force: Annotated[
        bool, typer.Option(help="Upgrade even when the plan changes nothing (a new revision)")
    ] = False,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Queue a deployment of IMAGE as SERVICE (a plan that changes nothing ends unchanged)."""
    body = _request(service, image, commit, values, rollback, force)
    record = _call("POST", f"{url}/api/deployments", token, body)
    typer.echo(f"{record['id']}: {record['phase']}")


@app.command(name="rollback")
def rollback_command(
    service: str,
    revision: Annotated[int | None, typer.Option(help="Helm revision (default: previous)")] = None,
    environment: EnvironmentOption = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Roll SERVICE back to an earlier Helm revision (in an environment, a rollback holds
    automatic promotion into it until someone clears the hold)."""
    path = f"{url}/api/services/{service}/rollback{_query(environment=environment)}"
    record = _call("POST", path, token, {"revision": revision})
    typer.echo(f"{record['id']}: {record['phase']}")


NoteOption = Annotated[str | None, typer.Option(help="Why (kept in the history)")]


def _decision(decision: str, summary: str) -> None:
    """Register ``deployer approve`` / ``deployer deny`` (the same call, another decision)."""

    def command(
        deployment_id: str,
        note: NoteOption = None,
        url: UrlOption = "http://127.0.0.1:8090",
        token: TokenOption = "",
    ) -> None:
        path = f"{url}/api/deployments/{deployment_id}/{decision}"
        record = _call("POST", path, token, {"note": note})
        typer.echo(f"{record['id']}: {record['phase']} ({record['reason']})")

    command.__doc__ = summary
    app.command(name=decision)(command)


_decision(
    "approve", "Approve DEPLOYMENT_ID (waiting in pending_approval): it is queued, runs once."
)
_decision("deny", "Deny DEPLOYMENT_ID (waiting in pending_approval): it ends rejected.")

CANARY_COMMANDS = {
    "promote": "skip the remaining steps and promote now",
    "abort": "back to the stable pods now; the deployment ends rolled_back",
    "pause": "hold at the current step until resumed, promoted or aborted",
    "resume": "continue a paused canary (a paused analysis starts again)",
}


@app.command()
def canary(
    command: Annotated[str, typer.Argument(help="promote | abort | pause | resume")],
    deployment_id: str,
    note: NoteOption = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Tell the running canary of DEPLOYMENT_ID to promote, abort, pause or resume."""
    if command not in CANARY_COMMANDS:
        known = "; ".join(f"{name}: {what}" for name, what in CANARY_COMMANDS.items())
        typer.secho(f"unknown canary command {command!r}; known are {known}", fg="red", err=True)
        raise typer.Exit(2)
    _call("POST", f"{url}/api/deployments/{deployment_id}/canary/{command}", token, {"note": note})
    typer.echo(f"{deployment_id}: {command} sent ({CANARY_COMMANDS[command]})")


@app.command()
def status(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Each service's release, revision, image and last outcome."""
    _show(_send("GET", f"{url}/api/services", token), output, render_status)


@app.command()
def history(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    limit: int = 20,
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Recent deployments, newest first."""
    query = _query(limit=limit, service=service, environment=environment)
    _show(_send("GET", f"{url}/api/deployments{query}", token), output, render_history)


@app.command()
def drift(
    service: Annotated[str | None, typer.Argument(help="Only this service")] = None,
    environment: Annotated[
        str | None,
        typer.Option(help="Only this environment (default: every one; the entry with SERVICE)"),
    ] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Check for drift now: live fields that differ from each release's manifest (exit 1 when
    some drifted and were not corrected)."""
    query = _query(service=service, environment=environment)
    reports = _call("POST", f"{url}/api/drift{query}", token)
    left = False
    for report in reports:
        fields = report.get("fields", [])
        if report.get("error"):
            typer.echo(f"{report['service']:<10} not checked: {report['error']}")
        elif not fields:
            typer.echo(f"{report['service']:<10} no drift ({report['mode']})")
        else:
            what = "corrected" if report.get("corrected") else "drifted"
            left = left or not report.get("corrected")
            typer.secho(f"{report['service']:<10} {len(fields)} field(s) {what}", fg="yellow")
            for field in fields:
                typer.echo(
                    f"  {field['object']} {field['path']}: live {field.get('before')} -> "
                    f"manifest {field.get('after')}"
                )
    if left:
        raise typer.Exit(1)


# ---- environments, releases and promotions ------------------------------------------------------


@app.command()
def environments(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The environments in promotion order: each one's upstream, where it deploys, and the rules
    of promotion into it (soak, metric analysis, freeze windows, approval)."""
    _show(_send("GET", f"{url}/api/environments", token), output, render_environments)


@app.command()
def board(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Per service and environment: the image serving, its phase, the promotion coming in (with
    the first gate that does not pass, and why) and any hold."""
    _show(_send("GET", f"{url}/api/environments/board", token), output, render_board)


@app.command()
def releases(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    limit: int = 20,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Releases, newest first: id, image, commit, and where each stands in every environment."""
    query = _query(service=service, limit=limit)
    _show(_send("GET", f"{url}/api/releases{query}", token), output, render_releases)


@app.command()
def promote(
    release: Annotated[str, typer.Argument(help="The release id (deployer releases lists them)")],
    environment: Annotated[str, typer.Argument(help="The environment it enters")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Promote RELEASE into ENVIRONMENT from that environment's upstream, where it must have
    succeeded; its gates still apply (a hold does not stop a promotion a person asked for)."""
    body = {"release": release, "environment": environment}
    promotion = _call("POST", f"{url}/api/promotions", token, body)
    typer.echo(f"{promotion['id']}: {promotion['state']} ({promotion['reason']})")
    typer.echo(f"its gates: deployer promotions show {promotion['id']}")


promotions_app = typer.Typer()
app.add_typer(promotions_app, name="promotions")


@promotions_app.callback(invoke_without_command=True)
def promotions(
    context: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    environment: Annotated[
        str | None, typer.Option(help="Only promotions into this environment")
    ] = None,
    state: Annotated[
        PromotionState | None, typer.Option(case_sensitive=False, help="Only in this state")
    ] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Promotions, newest first (the options filter them); `show`, `approve` and `cancel` act on
    one of them."""
    if context.invoked_subcommand is not None:
        return
    query = _query(service=service, environment=environment, state=state.value if state else None)
    _show(_send("GET", f"{url}/api/promotions{query}", token), output, render_promotions)


PromotionId = Annotated[str, typer.Argument(help="The promotion's id, <release>.<environment>")]


@promotions_app.command("show")
def promotions_show(
    promotion_id: PromotionId,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """One promotion: its release, path, state, and every gate with its verdict, reason and
    evidence."""
    path = f"{url}/api/promotions/{_segment(promotion_id)}"
    _show(_send("GET", path, token), output, render_promotion)


@promotions_app.command("approve")
def promotions_approve(
    promotion_id: PromotionId,
    reason: Annotated[str, typer.Option(help="Why (kept with the approval)")] = "",
    override_freeze: Annotated[
        bool,
        typer.Option(help="Let it through a freeze as well (needs a --reason)"),
    ] = False,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Approve a promotion waiting for its gates; it proceeds once every other gate passes."""
    body = {"reason": reason, "overrideFreeze": override_freeze}
    path = f"{url}/api/promotions/{_segment(promotion_id)}/approve"
    promotion = _call("POST", path, token, body)
    approval = promotion.get("approval") or {}
    through = ", through the freeze" if approval.get("override_freeze") else ""
    typer.echo(
        f"{promotion['id']}: approved by {approval.get('by', '?')}{through}; its gates are "
        "decided again (deployer promotions show to follow it)"
    )


@promotions_app.command("cancel")
def promotions_cancel(
    promotion_id: PromotionId,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Cancel a promotion waiting for its gates."""
    path = f"{url}/api/promotions/{_segment(promotion_id)}/cancel"
    promotion = _call("POST", path, token)
    typer.echo(f"{promotion['id']}: {promotion['state']} ({promotion['reason']})")


holds_app = typer.Typer()
app.add_typer(holds_app, name="holds")


@holds_app.callback(invoke_without_command=True)
def holds(
    context: typer.Context,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The holds on automatic promotion (a rollback in an environment sets one); `set` and
    `clear` change them."""
    if context.invoked_subcommand is not None:
        return
    _show(_send("GET", f"{url}/api/holds", token), output, render_holds)


HoldEnvironment = Annotated[str, typer.Argument(help="The environment promotion goes into")]
HoldService = Annotated[str, typer.Argument(help="The service")]


@holds_app.command("set")
def holds_set(
    environment: HoldEnvironment,
    service: HoldService,
    reason: Annotated[str, typer.Option(help="Why automatic promotion must wait")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Hold automatic promotion of SERVICE into ENVIRONMENT until someone clears it."""
    path = f"{url}/api/holds/{_segment(environment)}/{_segment(service)}"
    hold = _call("PUT", path, token, {"reason": reason})
    typer.echo(f"{hold['service']} held in {hold['environment']}: {hold['reason']}")


@holds_app.command("clear")
def holds_clear(
    environment: HoldEnvironment,
    service: HoldService,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Clear the hold on SERVICE in ENVIRONMENT: automatic promotion into it resumes."""
    path = f"{url}/api/holds/{_segment(environment)}/{_segment(service)}"
    hold = _call("DELETE", path, token)
    typer.echo(
        f"{hold['service']} in {hold['environment']}: hold cleared (it was: {hold['reason']}); "
        "automatic promotion resumes"
    )


def _instant(value: str | None, option: str) -> str | None:
    """``value`` checked as an ISO 8601 date-time with a UTC offset (usage error otherwise)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time with a UTC offset, e.g. 2026-12-01T00:00:00Z",
            param_hint=option,
        )
    return at.isoformat()


@app.command()
def dora(
    since: Annotated[
        str | None, typer.Option(help="Start of the window, ISO 8601 (default: 30 days back)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (default: now)")] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The DORA metrics per service and environment over a window: deployments per day, lead
    time (median, 90th percentile), change failure rate, time to restore, open failures."""
    query = _query(since=_instant(since, "--since"), until=_instant(until, "--until"))
    _show(_send("GET", f"{url}/api/dora{query}", token), output, render_dora)
