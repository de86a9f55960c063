"""``pipelines tag``: a deployable's image tag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines_cli.commands.common import RepoOption, repo_root, user_errors
from pipelines_cli.deployables import find
from pipelines_cli.tagging import image_tag


def tag_command(
    service: Annotated[str, typer.Argument(help="The service (or `deployer`).")],
    repo: RepoOption = Path("."),
) -> None:
    """Print SERVICE's image tag, <version>-<sha7> (e.g. 1.4.2-a8f3d21).

    The version is [project].version of the service's pyproject.toml, the sha is HEAD's. Refuses
    a work tree with uncommitted changes; never prints `latest`.
    """
    with user_errors():
        root = repo_root(repo)
        typer.echo(image_tag(root, find(root, service)))


def register(app: typer.Typer) -> None:
    """Add ``tag`` to ``app``."""
    app.command("tag")(tag_command)
