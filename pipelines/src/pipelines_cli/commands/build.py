"""``pipelines build``: the `docker buildx build` command of a deployable, or a buildah build."""

from __future__ import annotations

import os
import shlex
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pipelines_cli.baseimages import ensure_base_images
from pipelines_cli.build import build_spec, buildx_command, image_reference, source_url
from pipelines_cli.commands.common import (
    RegistryOption,
    RepoOption,
    err,
    repo_root,
    user_errors,
)
from pipelines_cli.deployables import find
from pipelines_cli.errors import PipelineError
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.imagebuild import (
    BuildahBuild,
    build_image,
    image_key,
    oci_labels,
    push_image,
    write_metadata,
)
from pipelines_cli.imagetargets import DEFAULT_NAMESPACE, find_target
from pipelines_cli.registry import REGISTRY_ENV, split_reference
from pipelines_cli.tagging import image_tag


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
    with user_errors():
        root = repo_root(repo)
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
    err(f"+ {command}")
    try:
        result = subprocess.run(buildx_command(spec), cwd=root, check=False)
    except FileNotFoundError:
        err(
            "error: docker not found: install the docker CLI with the buildx plugin, or build "
            "without Docker: --builder buildah (make images-tools installs buildah)"
        )
        raise typer.Exit(ExitCode.ERROR) from None
    if result.returncode != 0:
        err(f"error: docker buildx build exited with {result.returncode} (its output is above)")
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
    with user_errors():
        root = repo_root(repo)
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


def register(app: typer.Typer) -> None:
    """Add ``build`` to ``app``."""
    app.command("build")(build_command)
