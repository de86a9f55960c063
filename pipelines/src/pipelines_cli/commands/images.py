"""``pipelines images``: build images; push those whose content changed to the cluster registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines_cli.commands.common import RepoOption, repo_root, user_errors
from pipelines_cli.deployables import DEPLOYER
from pipelines_cli.imagebuild import ensure_image
from pipelines_cli.imagetargets import all_targets
from pipelines_cli.registry import REGISTRY_ENV, cluster_registry


def images_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Images to build; default: every service and platform/images image."),
    ] = None,
    push_to: Annotated[
        str | None,
        typer.Option(
            "--push-to",
            envvar=REGISTRY_ENV,
            help="The registry, host:port; default: the cluster's (.run/cluster/registry).",
        ),
    ] = None,
    repo: RepoOption = Path("."),
) -> None:
    """Build with buildah and push images to the cluster registry, each only when its content
    changed; print `<name> <image> <digest>` per image.

    Tags are <version>-<12 hex of the content key> (pause keeps registry.k8s.io/pause:3.10.1).
    """
    with user_errors():
        root = repo_root(repo)
        address = push_to or cluster_registry(root)
        targets = all_targets(root)
        chosen = names or [n for n, t in targets.items() if t.name != DEPLOYER]
        for name in chosen:
            pushed = ensure_image(root, name, address)
            typer.echo(f"{name} {pushed.image.reference} {pushed.digest}")


def register(app: typer.Typer) -> None:
    """Add ``images`` to ``app``."""
    app.command("images")(images_command)
