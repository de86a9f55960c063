"""``pipelines``: the CI logic that the GitHub and GitLab definitions call, one command per step."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from deploy_contract.events import SERVICE_NAME, DeployEventData, DeployPhase
from kit.settings import ConfigurationError, NatsSettings, load_settings
from pipelines_cli import gitrepo
from pipelines_cli.baseimages import ensure_base_images
from pipelines_cli.build import (
    build_spec,
    buildx_command,
    digest_from_metadata,
    image_reference,
    source_url,
)
from pipelines_cli.changes import changed
from pipelines_cli.deployables import DEPLOYER, find
from pipelines_cli.errors import PipelineError
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.imagebuild import (
    BuildahBuild,
    build_image,
    ensure_image,
    image_key,
    oci_labels,
    push_image,
    write_metadata,
)
from pipelines_cli.imagetargets import DEFAULT_NAMESPACE, all_targets, find_target
from pipelines_cli.publish import (
    ArtifactRequest,
    artifact_event,
    checked_traceparent,
    deployment_id,
    publish_artifact,
)
from pipelines_cli.registry import REGISTRY_ENV, cluster_registry, split_reference
from pipelines_cli.tagging import image_tag
from pipelines_cli.wait import exit_code, wait_for_outcome

app = typer.Typer(
    name="pipelines",
    help="Flotilla's CI steps: changed services, image tags, builds, deploy events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


class OutputFormat(StrEnum):
    """How ``changed`` prints the deployables."""

    LINES = "lines"
    JSON = "json"
    GITHUB_OUTPUT = "github-output"


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one line on stderr and exit code 1."""
    try:
        yield
    except (PipelineError, ConfigurationError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(ExitCode.ERROR) from None


def _root(repo: Path) -> Path:
    return gitrepo.toplevel(repo.resolve())


@app.command("changed")
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
    with _user_errors():
        result = changed(_root(repo), base, head)
    for name, reason in result.reasons.items():
        _err(f"{name}: {reason}")
    if not result.names:
        _err("no deployable changed")
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


@app.command("tag")
def tag_command(
    service: Annotated[str, typer.Argument(help="The service (or `deployer`).")],
    repo: RepoOption = Path("."),
) -> None:
    """Print SERVICE's image tag, <version>-<sha7> (e.g. 1.4.2-a8f3d21).

    The version is [project].version of the service's pyproject.toml, the sha is HEAD's. Refuses
    a work tree with uncommitted changes; never prints `latest`.
    """
    with _user_errors():
        root = _root(repo)
        typer.echo(image_tag(root, find(root, service)))


class Builder(StrEnum):
    """Who builds the image: buildx on a machine with Docker, or buildah without an engine."""

    AUTO = "auto"
    DOCKER = "docker"
    BUILDAH = "buildah"


def _docker_answers() -> bool:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _chosen_builder(builder: Builder, run: bool) -> Builder:
    if builder is not Builder.AUTO:
        return builder
    # Printing the buildx command needs no engine; running it does.
    return Builder.DOCKER if not run or _docker_answers() else Builder.BUILDAH


PushToOption = Annotated[
    str | None,
    typer.Option(
        "--push-to",
        envvar=REGISTRY_ENV,
        help="buildah: the registry address to push to, host[:port] (e.g. 127.0.0.1:5000); the "
        "image's registry host is replaced, its path and tag kept. Default: the image's own.",
    ),
]


@app.command("build")
def build_command(
    service: Annotated[
        str, typer.Argument(help="The service, `deployer`, or a platform/images/<name> image.")
    ],
    registry: RegistryOption = None,
    tag: Annotated[
        str | None, typer.Option(help="The image tag; default: what `pipelines tag` prints.")
    ] = None,
    content_tag: Annotated[
        bool,
        typer.Option(
            help="buildah: tag <version>-<12 hex of the content key> instead of the git tag "
            "(works in a dirty tree; the default for platform/images images)."
        ),
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            envvar="PIPELINE_SOURCE_URL",
            help="Repository URL for org.opencontainers.image.source; default: from GitHub's or "
            "GitLab's variables, else the origin remote.",
        ),
    ] = None,
    push: Annotated[bool, typer.Option(help="Push the image (else --load it).")] = False,
    push_to: PushToOption = None,
    platform: Annotated[
        list[str] | None, typer.Option(help="Target platform, e.g. linux/amd64; repeatable.")
    ] = None,
    metadata_file: Annotated[
        Path | None,
        typer.Option(help="Where the result (with the pushed digest) is written, as buildx does."),
    ] = None,
    run: Annotated[
        bool, typer.Option(help="Run the command (echoed to stderr) instead of printing it.")
    ] = False,
    builder: Annotated[
        Builder,
        typer.Option(
            envvar="PIPELINE_BUILDER",
            help="docker: `docker buildx build`; buildah: build without a Docker engine on local "
            "base images, cached by content (always runs); auto: docker when printing or when a "
            "Docker daemon answers, else buildah.",
        ),
    ] = Builder.AUTO,
    repo: RepoOption = Path("."),
) -> None:
    """Print (or --run) the `docker buildx build` command of SERVICE, or build it with buildah.

    The context is the repository root, the Dockerfile the service's own; the image is
    <registry>/<service>-service:<tag> (the deployer's: <registry>/deployer:<tag>), labelled with
    the OCI revision, source, version and created (the commit time) annotations.
    """
    if _chosen_builder(builder, run) is Builder.BUILDAH:
        _buildah_build(
            service, registry, tag, content_tag, source, push, push_to, metadata_file, repo
        )
        return
    with _user_errors():
        root = _root(repo)
        deployable = find(root, service)
        if not registry:
            raise PipelineError("no registry: pass --registry or set PIPELINE_REGISTRY")
        image = image_reference(registry, deployable, tag or image_tag(root, deployable))
        spec = build_spec(
            root,
            deployable,
            image,
            source=source,
            push=push,
            platforms=platform or (),
            metadata_file=metadata_file,
        )
    command = shlex.join(buildx_command(spec))
    if not run:
        typer.echo(command)
        return
    _err(f"+ {command}")
    try:
        result = subprocess.run(buildx_command(spec), cwd=root, check=False)
    except FileNotFoundError:
        _err(
            "error: docker not found: install the docker CLI with the buildx plugin, or build "
            "without Docker: --builder buildah (make images-tools installs buildah)"
        )
        raise typer.Exit(ExitCode.ERROR) from None
    if result.returncode != 0:
        _err(f"error: docker buildx build exited with {result.returncode} (its output is above)")
        raise typer.Exit(ExitCode.ERROR)
    typer.echo(image)


def _buildah_build(
    name: str,
    registry: str | None,
    tag: str | None,
    content_tag: bool,
    source: str | None,
    push: bool,
    push_to: str | None,
    metadata_file: Path | None,
    repo: Path,
) -> None:
    with _user_errors():
        root = _root(repo)
        target = find_target(root, name)
        namespace = (registry or DEFAULT_NAMESPACE).rstrip("/")
        base = ensure_base_images()
        key = image_key(root, target, base, {})
        if tag is None:
            if content_tag or not target.is_deployable:
                tag = target.content_tag(key)
            else:
                tag = image_tag(root, find(root, name))
        reference = target.reference(namespace, tag)
        labels = oci_labels(
            root, target, reference.rsplit(":", 1)[-1], source or source_url(root, os.environ)
        )
        built = build_image(root, BuildahBuild(target, reference, labels), base)
        typer.echo(f"image={built.reference}")
        typer.echo(f"image_id={built.image_id}")
        typer.echo(f"content_key={built.key}")
        typer.echo(f"cached={str(built.cached).lower()}")
        if push or push_to:
            address = push_to or split_reference(reference)[0]
            pushed = push_image(built, address)
            typer.echo(f"pushed={pushed.destination}")
            typer.echo(f"digest={pushed.digest}")
            if metadata_file is not None:
                write_metadata(metadata_file, pushed)


@app.command("images")
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
    with _user_errors():
        root = _root(repo)
        address = push_to or cluster_registry(root)
        targets = all_targets(root)
        chosen = names or [n for n, t in targets.items() if t.name != DEPLOYER]
        for name in chosen:
            pushed = ensure_image(root, name, address)
            typer.echo(f"{name} {pushed.image.reference} {pushed.digest}")


def _parse_value(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise PipelineError(f"--value {item!r} is not KEY=VALUE (e.g. --value replicaCount=3)")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


@app.command("publish")
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
    $GITHUB_OUTPUT). The trace continues $TRACEPARENT when set. NATS: NATS_URL, NATS_USER,
    NATS_PASSWORD or NATS_CREDS_FILE.
    """
    with _user_errors():
        root = _root(repo)
        deployable = find(root, service)
        if image is None:
            if not registry:
                raise PipelineError("pass --image, or --registry to derive it from HEAD's tag")
            image = image_reference(registry, deployable, image_tag(root, deployable))
        if metadata_file is not None:
            digest = digest_from_metadata(metadata_file)
        if digest and "@" not in image:
            image = f"{image}@{digest}"
        request = ArtifactRequest(
            service=service,
            image=image,
            commit=commit or gitrepo.commit_sha(root),
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
        _err(
            f"{service}: {image} was already published by an earlier attempt of this run "
            f"({published.stream} #{published.sequence}); it is deployed once"
        )
    else:
        _err(
            f"{service}: published {image} on {published.subject} ({published.stream} "
            f"#{published.sequence})"
        )
    typer.echo(f"deployment_id={event.id}")
    typer.echo(f"traceparent={traceparent}")


def _describe(event: DeployEventData) -> str:
    parts = [f"{datetime.now(UTC):%H:%M:%S} {event.service} {event.phase.value}"]
    if event.progress is not None:
        p = event.progress
        parts.append(
            f"replicas {p.updated}/{p.desired} updated, {p.ready} ready, {p.available} available"
        )
        if p.replica_sets:
            sets = ", ".join(f"{name}: {ready}" for name, ready in sorted(p.replica_sets.items()))
            parts.append(f"ready by ReplicaSet: {sets}")
    if event.revision is not None:
        parts.append(f"revision {event.revision}")
    if event.image:
        parts.append(event.image)
    if event.superseded_by:
        parts.append(f"superseded by {event.superseded_by}")
    if event.reason:
        parts.append(f"reason: {event.reason}")
    if event.phase is DeployPhase.PENDING_APPROVAL:
        parts.append(
            f"a person approves it with: deployer approve {event.deployment_id} "
            "(a token with the approve scope), or denies it with: deployer deny"
        )
    return " | ".join(parts)


@app.command("wait")
def wait_command(
    service: Annotated[str, typer.Argument(help="The service being deployed.")],
    deployment: Annotated[
        str | None,
        typer.Option("--deployment-id", help="The id `publish` printed."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(envvar="PIPELINE_RUN_ID", help="Or: the run id given to `publish`."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(envvar="PIPELINE_WAIT_TIMEOUT", help="Seconds before giving up (exit 6)."),
    ] = 900.0,
) -> None:
    """Wait for the outcome of SERVICE's deployment and exit with it.

    Reads deploy.<service>.> from the DEPLOY stream (so an outcome published before `wait`
    started counts), prints each event of this deployment, and exits 0 succeeded, 3 failed or
    rolled back, 4 rejected, 5 superseded by a newer deployment, 6 timeout (1 for other errors).
    A deployment waiting in pending_approval keeps it waiting (the timeout still counts).
    """
    with _user_errors():
        if not re.match(SERVICE_NAME, service):
            raise PipelineError(
                f"{service!r} is not a service name: pass one like 'order' (lowercase letters, "
                "digits and '-')"
            )
        if deployment is None:
            if run_id is None:
                raise PipelineError("pass --deployment-id, or --run-id (or PIPELINE_RUN_ID)")
            deployment = deployment_id(run_id, service)
        settings = load_settings(NatsSettings)
        _err(f"waiting up to {timeout:.0f} s for deployment {deployment} of {service}")
        outcome = asyncio.run(
            wait_for_outcome(
                settings,
                service,
                deployment,
                timeout,
                on_event=lambda event: typer.echo(_describe(event)),
                on_notice=lambda note: _err(f"note: {note}"),
            )
        )
    code = exit_code(outcome)
    if outcome is None:
        _err(f"error: no outcome for deployment {deployment} of {service} within {timeout:.0f} s")
    elif code is not ExitCode.SUCCEEDED:
        _err(f"error: deployment {deployment} of {service} ended {outcome.phase.value}")
    raise typer.Exit(code)


def main() -> None:
    """Run the CLI (``pipelines`` / ``python -m pipelines_cli``)."""
    logging.basicConfig(level=logging.WARNING, format="note: %(message)s", stream=sys.stderr)
    # The chassis reports connection changes for long-running services; a CI step reports its
    # own errors, and the drain at exit is not a disconnection worth a line.
    logging.getLogger("kit").setLevel(logging.ERROR)
    app()
