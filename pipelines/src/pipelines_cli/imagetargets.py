"""What can be built into an image: the deployables, and ``platform/images/<name>/Dockerfile``.

A deployable's image is ``<namespace>/<name>-service:<tag>`` (the deployer's
``<namespace>/deployer:<tag>``). An infrastructure image (nats, postgres, pause) is
``<namespace>/<name>:<version>-<content hash>``, its version from ``platform/images/<name>/VERSION``
(else ``0.0.0``), unless the folder has an ``IMAGE`` file naming it exactly, as the pause image's
does (``registry.k8s.io/pause:3.10.1``, the sandbox image containerd expects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines_cli.deployables import discover, project_version
from pipelines_cli.errors import PipelineError, UnknownServiceError
from pipelines_cli.tagging import VERSION_PATTERN

IMAGES_DIR = "platform/images"
DEFAULT_NAMESPACE = "ghcr.io/flotilla"
CONTENT_TAG_DIGITS = 12


@dataclass(frozen=True)
class ImageTarget:
    """One image the build machinery can make, and how it is named."""

    name: str
    dockerfile: str
    repository_name: str
    version: str
    fixed_reference: str | None = None
    is_deployable: bool = False
    # What the Dockerfile needs to know which image it builds (the services share one).
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def ignore_file(self) -> str:
        """The context's ignore rules: ``<Dockerfile>.dockerignore`` when it exists (BuildKit's
        per-Dockerfile file), else the root ``.dockerignore``; relative to the repository."""
        return self.dockerfile + ".dockerignore"

    def reference(self, namespace: str, tag: str) -> str:
        """``<namespace>/<repository name>:<tag>``, or the fixed reference."""
        if self.fixed_reference:
            return self.fixed_reference
        return f"{namespace.rstrip('/')}/{self.repository_name}:{tag}"

    def content_tag(self, key: str) -> str:
        """``<version>-<first 12 hex of the content key>``: immutable, and valid for the charts."""
        return f"{self.version}-{key[:CONTENT_TAG_DIGITS]}"


def _infra_version(folder: Path) -> str:
    path = folder / "VERSION"
    version = path.read_text().strip() if path.is_file() else "0.0.0"
    if not VERSION_PATTERN.match(version):
        raise PipelineError(
            f"{path} holds {version!r}, not MAJOR.MINOR.PATCH[-PRERELEASE]: write the version "
            "of what the image ships (e.g. 2.11.4)"
        )
    return version


def infra_targets(repo: Path) -> dict[str, ImageTarget]:
    """Every ``platform/images/<name>/Dockerfile``, by name."""
    found: dict[str, ImageTarget] = {}
    for dockerfile in sorted((repo / IMAGES_DIR).glob("*/Dockerfile")):
        folder = dockerfile.parent
        fixed = folder / "IMAGE"
        found[folder.name] = ImageTarget(
            name=folder.name,
            dockerfile=dockerfile.relative_to(repo).as_posix(),
            repository_name=folder.name,
            version=_infra_version(folder),
            fixed_reference=fixed.read_text().strip() if fixed.is_file() else None,
        )
    return found


def all_targets(repo: Path) -> dict[str, ImageTarget]:
    """The deployables and the infrastructure images of the work tree, by name."""
    found = {
        name: ImageTarget(
            name=name,
            dockerfile=deployable.dockerfile,
            repository_name=deployable.image_name,
            version=project_version(repo, deployable),
            is_deployable=True,
            build_args=deployable.build_args,
        )
        for name, deployable in discover(repo).items()
    }
    for name, target in infra_targets(repo).items():
        if name in found:
            raise PipelineError(
                f"{IMAGES_DIR}/{name}/ has the name of a deployable: rename the folder"
            )
        found[name] = target
    return found


def find_target(repo: Path, name: str) -> ImageTarget:
    """The image called ``name``, or UnknownServiceError listing the known ones."""
    known = all_targets(repo)
    if name not in known:
        raise UnknownServiceError(
            f"unknown image {name!r}: expected one of {', '.join(known) or '(none found)'} "
            f"(a service under services/, the deployer, or {IMAGES_DIR}/<name>/Dockerfile)"
        )
    return known[name]
