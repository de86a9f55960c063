"""``pipelines``: the CI logic that the GitHub and GitLab definitions call, one command per step.

Each command is a module of ``pipelines_cli.commands`` that registers itself on the app.
"""

from __future__ import annotations

import logging
import sys

import typer

from pipelines_cli.commands import build, changed, images, publish, tag, wait

app = typer.Typer(
    name="pipelines",
    help="Flotilla's CI steps: changed services, image tags, builds, deploy events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# In this order in --help: a pipeline's steps, first to last.
for command in (changed, tag, build, images, publish, wait):
    command.register(app)


def main() -> None:
    """Run the CLI (``pipelines`` / ``python -m pipelines_cli``)."""
    logging.basicConfig(level=logging.WARNING, format="note: %(message)s", stream=sys.stderr)
    # The chassis reports connection changes for long-running services; a CI step reports its
    # own errors, and the drain at exit is not a disconnection worth a line.
    logging.getLogger("kit").setLevel(logging.ERROR)
    app()
