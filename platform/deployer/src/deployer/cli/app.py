"""`deployer`: plan, deploy, rollback, canary commands, status, history and drift through the
deployer's API; the environment and promotion commands (:mod:`deployer.cli.promotions`) are added
to the same app."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from deployer.cli import promotions
from deployer.cli.common import (
    Output,
    OutputOption,
    TokenOption,
    UrlOption,
    call,
    query_string,
    send,
    show,
)
from deployer.cli.format import render_history, render_plan, render_status

app = typer.Typer(help="Talk to the Flotilla deployer (DEPLOYER_URL, DEPLOYER_API_TOKEN).")
# environments, board, releases, promote, dora and the promotions and holds groups, as top-level
# commands (listed after this module's own).
app.add_typer(promotions.commands)


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
    path = f"{url}/api/plan{query_string(environment=environment)}"
    show(send("POST", path, token, body), output, render_plan)


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
    record = call("POST", f"{url}/api/deployments", token, body)
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
    path = f"{url}/api/services/{service}/rollback{query_string(environment=environment)}"
    record = call("POST", path, token, {"revision": revision})
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
        record = call("POST", path, token, {"note": note})
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
    call("POST", f"{url}/api/deployments/{deployment_id}/canary/{command}", token, {"note": note})
    typer.echo(f"{deployment_id}: {command} sent ({CANARY_COMMANDS[command]})")


@app.command()
def status(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Each service's release, revision, image and last outcome."""
    show(send("GET", f"{url}/api/services", token), output, render_status)


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
    query = query_string(limit=limit, service=service, environment=environment)
    show(send("GET", f"{url}/api/deployments{query}", token), output, render_history)


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
    query = query_string(service=service, environment=environment)
    reports = call("POST", f"{url}/api/drift{query}", token)
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
