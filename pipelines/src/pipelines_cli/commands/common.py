"""What the commands share: the ``--repo`` and ``--registry`` options, user errors on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from kit.settings import ConfigurationError
from pipelines_cli import gitrepo
from pipelines_cli.errors import PipelineError
from pipelines_cli.exitcodes import ExitCode

RepoOption = Annotated[
    Path, typer.Option("--repo", help="A path inside the git work tree.", show_default=True)
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="PIPELINE_REGISTRY",
        help="Registry and namespace of the images, e.g. ghcr.io/acme.",
    ),
]


def err(message: str) -> None:
    """Print ``message`` on stderr (stdout is the command's output, read by CI)."""
    typer.echo(message, err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one line on stderr and exit code 1."""
    try:
        yield
    except (PipelineError, ConfigurationError) as exc:
        err(f"error: {exc}")
        raise typer.Exit(ExitCode.ERROR) from None


def repo_root(repo: Path) -> Path:
    """The top level of the git work tree that ``repo`` is in."""
    return gitrepo.toplevel(repo.resolve())
