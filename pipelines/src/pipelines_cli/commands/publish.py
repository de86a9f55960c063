"""``pipelines publish``: the artifact.published event that asks the deployer for a rollout."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from kit.settings import NatsSettings, load_settings
from pipelines_cli import gitrepo
from pipelines_cli.build import digest_from_metadata, image_reference
from pipelines_cli.commands.common import (
    RegistryOption,
    RepoOption,
    err,
    repo_root,
    user_errors,
)
from pipelines_cli.deployables import find
from pipelines_cli.errors import PipelineError
from pipelines_cli.publish import (
    ArtifactRequest,
    artifact_event,
    checked_traceparent,
    commit_time_of,
    parse_commit_time,
    publish_artifact,
)
from pipelines_cli.tagging import image_tag


def _parse_value(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise PipelineError(f"--value {item!r} is not KEY=VALUE (e.g. --value replicaCount=3)")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def publish_command(
    service: Annotated[str, typer.Argument(help="The service the image is for.")],
    run_id: Annotated[
        str,
        typer.Option(
            envvar="PIPELINE_RUN_ID",
            help="The pipeline run, the same for every attempt (github:<run_id>); with the "
            "service it makes the event id, so a retried job is stored once.",
        ),
    ],
    image: Annotated[
        str | None,
        typer.Option(help="The image reference; default: <registry>/<name>:<tag of HEAD>."),
    ] = None,
    registry: RegistryOption = None,
    digest: Annotated[
        str | None, typer.Option(help="sha256:<hex> of the pushed image, appended as @digest.")
    ] = None,
    metadata_file: Annotated[
        Path | None, typer.Option(help="buildx metadata file to read the digest from.")
    ] = None,
    commit: Annotated[
        str | None, typer.Option(help="The commit the image was built from; default: HEAD.")
    ] = None,
    commit_time: Annotated[
        str | None,
        typer.Option(
            help="When the commit was made, ISO 8601 with a UTC offset (the start of the lead "
            "time); default: its committer date from git, left out when git does not have it."
        ),
    ] = None,
    attempt: Annotated[
        str | None,
        typer.Option(envvar="PIPELINE_RUN_ATTEMPT", help="The attempt, recorded in pipeline_id."),
    ] = None,
    pipeline_url: Annotated[
        str | None, typer.Option(envvar="PIPELINE_URL", help="A link to the pipeline run.")
    ] = None,
    rollback: Annotated[
        bool, typer.Option(help="Allow an image older than the deployed one.")
    ] = False,
    value: Annotated[
        list[str] | None,
        typer.Option(help="Extra chart value KEY=VALUE (VALUE parsed as JSON); repeatable."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for JetStream's ack.")] = 10.0,
    repo: RepoOption = Path("."),
) -> None:
    """Publish the artifact.published event of SERVICE on pipeline.artifact.<service>.

    Prints deployment_id=<event id> and traceparent=<W3C traceparent> on stdout (append them to
    $GITHUB_OUTPUT). The event carries the commit's time (--commit-time, else git's committer
    date of the commit), where the deployer's lead time starts. The trace continues $TRACEPARENT
    when set. NATS: NATS_URL, NATS_USER,
    NATS_PASSWORD or NATS_CREDS_FILE.
    """
    with user_errors():
        root = repo_root(repo)
        deployable = find(root, service)
        if image is None:
            if not registry:
                raise PipelineError("pass --image, or --registry to derive it from HEAD's tag")
            image = image_reference(registry, deployable, image_tag(root, deployable))
        if metadata_file is not None:
            digest = digest_from_metadata(metadata_file)
        if digest and "@" not in image:
            image = f"{image}@{digest}"
        committed = (
            parse_commit_time(commit_time)
            if commit_time is not None
            else commit_time_of(root, commit or "HEAD")
        )
        request = ArtifactRequest(
            service=service,
            image=image,
            commit=commit or gitrepo.commit_sha(root),
            commit_time=committed,
            run_id=run_id,
            pipeline_id=f"{run_id}:{attempt}" if attempt else run_id,
            pipeline_url=pipeline_url,
            rollback=rollback,
            values=dict(_parse_value(item) for item in value or []),
        )
        traceparent = checked_traceparent(os.environ.get("TRACEPARENT"))
        event = artifact_event(request, traceparent)
        settings = load_settings(NatsSettings)
        published = asyncio.run(publish_artifact(settings, service, event, traceparent, timeout))
    if published.duplicate:
        err(
            f"{service}: {image} was already published by an earlier attempt of this run "
            f"({published.stream} #{published.sequence}); it is deployed once"
        )
    else:
        err(
            f"{service}: published {image} on {published.subject} ({published.stream} "
            f"#{published.sequence})"
        )
    typer.echo(f"deployment_id={event.id}")
    typer.echo(f"traceparent={traceparent}")


def register(app: typer.Typer) -> None:
    """Add ``publish`` to ``app``."""
    app.command("publish")(publish_command)
