"""`deployer`: plan, deploy, rollback, canary commands, status and history through the
deployer's API."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import httpx
import typer

from deployer.cli.format import render_history, render_plan, render_status

app = typer.Typer(help="Talk to the Flotilla deployer (DEPLOYER_URL, DEPLOYER_API_TOKEN).")


class Output(StrEnum):
    """How plan, status and history print: readable tables, or the API's JSON body as is."""

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


@app.command()
def plan(
    service: str,
    image: str,
    commit: Annotated[str, typer.Option(help="The commit the image was built from")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    values: ValuesOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show what deploying IMAGE as SERVICE would change; changes nothing."""
    body = _request(service, image, commit, values, False)
    _show(_send("POST", f"{url}/api/plan", token, body), output, render_plan)


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
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Roll SERVICE back to an earlier Helm revision."""
    record = _call("POST", f"{url}/api/services/{service}/rollback", token, {"revision": revision})
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
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Recent deployments, newest first."""
    query = f"?limit={limit}" + (f"&service={service}" if service else "")
    _show(_send("GET", f"{url}/api/deployments{query}", token), output, render_history)


@app.command()
def drift(
    service: Annotated[str | None, typer.Argument(help="Only this service")] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Check for drift now: live fields that differ from each release's manifest (exit 1 when
    some drifted and were not corrected)."""
    query = f"?service={service}" if service else ""
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
