"""``pipelines changed``: the deployables a change touches."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pipelines_cli.changes import changed
from pipelines_cli.commands.common import RepoOption, err, repo_root, user_errors


class OutputFormat(StrEnum):
    """How ``changed`` prints the deployables."""

    LINES = "lines"
    JSON = "json"
    GITHUB_OUTPUT = "github-output"


def changed_command(
    base: Annotated[
        str,
        typer.Option(
            help="The commit before the change: the PR's base sha, or the push's `before` sha "
            "(an unknown or all-zero sha means everything changed).",
        ),
    ],
    head: Annotated[str, typer.Option(help="The commit after the change.")] = "HEAD",
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="lines: one name per line; json: a JSON list; github-output: lines for "
            "$GITHUB_OUTPUT: services=<JSON list without the deployer>, deployer=true|false, "
            "any=true|false, matrix=<JSON {include: [{service, folder, chart}]}>.",
        ),
    ] = OutputFormat.LINES,
    repo: RepoOption = Path("."),
) -> None:
    """Print the deployables changed between BASE and HEAD.

    A service's folder (services/<name>/) or chart (charts/<name>/) counts for it; the chassis
    (platform/kit/), the library chart (charts/flotilla-lib/), uv.lock, the root pyproject.toml
    and .dockerignore count for all; platform/deployer/, and every chart, count for the deployer.
    """
    with user_errors():
        result = changed(repo_root(repo), base, head)
    for name, reason in result.reasons.items():
        err(f"{name}: {reason}")
    if not result.names:
        err("no deployable changed")
    if output is OutputFormat.LINES:
        for name in result.names:
            typer.echo(name)
    elif output is OutputFormat.JSON:
        typer.echo(json.dumps(list(result.names)))
    else:
        typer.echo(f"services={json.dumps(list(result.services))}")
        typer.echo(f"deployer={str(result.deployer).lower()}")
        typer.echo(f"any={str(bool(result.names)).lower()}")
        typer.echo(f"matrix={json.dumps(result.matrix(), separators=(',', ':'))}")


def register(app: typer.Typer) -> None:
    """Add ``changed`` to ``app``."""
    app.command("changed")(changed_command)
