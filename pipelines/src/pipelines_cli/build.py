"""The ``docker buildx build`` command of one deployable, with OCI image labels."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kit import naming
from pipelines_cli import gitrepo
from pipelines_cli.deployables import Deployable
from pipelines_cli.errors import PipelineError


@dataclass(frozen=True)
class BuildSpec:
    """Everything the build command needs; ``image`` is ``<registry>/<image name>:<tag>``."""

    deployable: Deployable
    image: str
    revision: str
    source: str
    version: str
    created: str
    push: bool = False
    platforms: tuple[str, ...] = ()
    metadata_file: Path | None = None


def image_reference(registry: str, deployable: Deployable, tag: str) -> str:
    """``<registry>/<image name>:<tag>``, e.g. ``ghcr.io/acme/order-service:1.4.2-a8f3d21``."""
    try:
        prefix = naming.check_registry(registry)
        repository = naming.check_image_repository(f"{prefix}/{deployable.image_name}")
    except naming.NamingError as exc:
        raise PipelineError(f"{exc}: fix --registry / PIPELINE_REGISTRY") from None
    return f"{repository}:{tag}"


def source_url(repo: Path, environ: Mapping[str, str]) -> str:
    """The repository URL for the source label: GitHub's or GitLab's variables, else origin."""
    if environ.get("GITHUB_SERVER_URL") and environ.get("GITHUB_REPOSITORY"):
        return f"{environ['GITHUB_SERVER_URL']}/{environ['GITHUB_REPOSITORY']}"
    if environ.get("CI_PROJECT_URL"):
        return environ["CI_PROJECT_URL"]
    try:
        return gitrepo.git(repo, "remote", "get-url", "origin").strip()
    except PipelineError:
        raise PipelineError(
            "cannot tell the repository URL for the org.opencontainers.image.source label: "
            "pass --source URL (or set PIPELINE_SOURCE_URL, or add an origin remote)"
        ) from None


def buildx_command(spec: BuildSpec) -> list[str]:
    """The ``docker buildx build`` argv; the build context is the repository root (``.``)."""
    labels = {
        "org.opencontainers.image.revision": spec.revision,
        "org.opencontainers.image.source": spec.source,
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.created": spec.created,
        "org.opencontainers.image.title": spec.deployable.image_name,
    }
    command = ["docker", "buildx", "build", "--file", spec.deployable.dockerfile]
    command += ["--tag", spec.image]
    for name, value in spec.deployable.build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    for key, value in labels.items():
        command += ["--label", f"{key}={value}"]
    if spec.platforms:
        command += ["--platform", ",".join(spec.platforms)]
    if spec.metadata_file is not None:
        command += ["--metadata-file", str(spec.metadata_file)]
    command += ["--push"] if spec.push else ["--load"]
    command.append(".")
    return command


def build_spec(
    repo: Path,
    deployable: Deployable,
    image: str,
    *,
    source: str | None,
    push: bool,
    platforms: Sequence[str] = (),
    metadata_file: Path | None = None,
) -> BuildSpec:
    """A BuildSpec for the work tree's HEAD; ``created`` is the commit time (reproducible)."""
    return BuildSpec(
        deployable=deployable,
        image=image,
        revision=gitrepo.commit_sha(repo),
        source=source or source_url(repo, os.environ),
        version=image.rsplit(":", 1)[-1],
        created=gitrepo.commit_time(repo),
        push=push,
        platforms=tuple(platforms),
        metadata_file=metadata_file,
    )


def digest_from_metadata(path: Path) -> str:
    """The pushed image's digest from a ``buildx --metadata-file`` JSON file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PipelineError(
            f"cannot read the build metadata {path} ({exc}): pass the file written by "
            "`pipelines build --run --metadata-file`"
        ) from None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    if not isinstance(digest, str) or not naming.is_image_digest(digest):
        raise PipelineError(
            f"{path} has no containerimage.digest of the form sha256:<64 hex>: was the image "
            "pushed (build --push)?"
        )
    return digest
