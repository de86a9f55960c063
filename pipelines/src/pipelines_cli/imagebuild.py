"""Build images from the Dockerfiles with buildah (no Docker engine), cached by content, and push
them to a registry.

The build context is the repository root. ``FROM ${PYTHON_IMAGE}`` / ``${DEBIAN_IMAGE}`` get the
local base images (``baseimages``), and nothing is ever pulled (``--pull=never``): the machine
reaches no container registry. An image is labelled with its content key (``contentkey``); when
local storage already holds an image with the key, the build is skipped and that image is tagged
and pushed instead.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines_cli import buildah, gitrepo, registry
from pipelines_cli.baseimages import BaseImages, ensure_base_images
from pipelines_cli.buildah import Progress, stderr_progress
from pipelines_cli.contentkey import content_key
from pipelines_cli.errors import PipelineError
from pipelines_cli.imagetargets import DEFAULT_NAMESPACE, ImageTarget, find_target

KEY_LABEL = "dev.flotilla.content-key"
# Local storage names every built image by its content key too: the cache is a name lookup.
# (buildah puts --label on every stage, so the label alone does not find the final image.)
CONTENT_NAMESPACE = "localhost/flotilla-content"


@dataclass(frozen=True)
class BuiltImage:
    """A local image: its name, id and content key, and whether the build was skipped."""

    reference: str
    image_id: str
    key: str
    cached: bool


@dataclass(frozen=True)
class PushedImage:
    """An image in a registry: where it went and the manifest digest the registry serves."""

    image: BuiltImage
    destination: str
    digest: str


@dataclass(frozen=True)
class BuildahBuild:
    """One buildah build: the target, its final name, OCI labels and extra build arguments."""

    target: ImageTarget
    reference: str
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)


def _build_args(
    target: ImageTarget, base: BaseImages, repo: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """The base images the Dockerfile declares, the target's own arguments, then ``extra``."""
    text = (repo / target.dockerfile).read_text()
    used_base = {k: v for k, v in base.build_args.items() if f"ARG {k}" in text}
    return {**used_base, **target.build_args, **extra}


def _base_ids(args: Mapping[str, str], base: BaseImages) -> dict[str, str]:
    ids = {base.debian: base.debian_id, base.python: base.python_id}
    return {name: ids.get(value, value) for name, value in args.items() if name.endswith("_IMAGE")}


def content_name(target: ImageTarget, key: str) -> str:
    """The local name that records "this content key was built": ``<namespace>/<repo>:<key>``."""
    return f"{CONTENT_NAMESPACE}/{target.repository_name}:{key}"


def buildah_command(
    repo: Path, build: BuildahBuild, args: Mapping[str, str], key: str
) -> list[str]:
    """The ``buildah build`` argv, run from the repository root (the context ``.``)."""
    command = ["buildah", "build", "--layers", "--force-rm", "--pull=never", "--network", "host"]
    command += [f"--isolation={buildah.ISOLATION}", "--file", build.target.dockerfile]
    if (repo / build.target.ignore_file).is_file():
        command += ["--ignorefile", build.target.ignore_file]
    command += ["--tag", build.reference]
    for name, value in sorted(args.items()):
        command += ["--build-arg", f"{name}={value}"]
    for name, value in {**build.labels, KEY_LABEL: key}.items():
        command += ["--label", f"{name}={value}"]
    command.append(".")
    return command


def image_key(repo: Path, target: ImageTarget, base: BaseImages, extra: Mapping[str, str]) -> str:
    """The content key of ``target`` built with ``base`` and the build arguments ``extra``."""
    args = _build_args(target, base, repo, extra)
    return content_key(repo, repo / target.dockerfile, args, _base_ids(args, base))


def build_image(
    repo: Path, build: BuildahBuild, base: BaseImages, progress: Progress = stderr_progress
) -> BuiltImage:
    """Build ``build`` with buildah unless local storage has an image with its content key."""
    args = _build_args(build.target, base, repo, build.build_args)
    key = content_key(repo, repo / build.target.dockerfile, args, _base_ids(args, base))
    cache_name = content_name(build.target, key)
    existing = buildah.image_id(cache_name)
    if existing:
        if buildah.image_id(build.reference) != existing:
            buildah.tag(existing, build.reference)
        progress(f"{build.target.name}: unchanged (content key {key[:12]}), not rebuilt")
        return BuiltImage(build.reference, existing, key, cached=True)
    progress(f"{build.target.name}: building {build.reference} (content key {key[:12]})")
    started = time.monotonic()
    command = buildah_command(repo, build, args, key)
    buildah.run(command[1:], capture=False, cwd=repo)
    image_id = buildah.image_id(build.reference)
    if image_id is None:
        raise PipelineError(f"buildah built {build.reference} but storage does not have it")
    buildah.tag(image_id, cache_name)
    progress(f"{build.target.name}: built in {time.monotonic() - started:.0f} s")
    return BuiltImage(build.reference, image_id, key, cached=False)


def push_image(image: BuiltImage, to: str, progress: Progress = stderr_progress) -> PushedImage:
    """Push ``image`` to the registry ``to`` (host replaced, path and tag kept), and check that
    the registry serves the digest buildah reports."""
    target = registry.destination(image.reference, to)
    with tempfile.TemporaryDirectory(prefix="flotilla-push-") as tmp:
        digest = buildah.push(
            image.image_id,
            target,
            tls_verify=not registry.is_loopback(to),
            digest_file=Path(tmp) / "digest",
        )
    _, path, tag = registry.split_reference(target)
    served = registry.served_digest(to, path, tag)
    if served != digest:
        raise PipelineError(
            f"pushed {target} as {digest} but the registry serves {served}: another push of the "
            "same tag raced this one; push again"
        )
    progress(f"pushed {target}@{digest}")
    return PushedImage(image, target, digest)


def oci_labels(repo: Path, target: ImageTarget, version: str, source: str) -> dict[str, str]:
    """The OCI annotations ``pipelines build`` sets: revision, source, version, created, title."""
    return {
        "org.opencontainers.image.revision": gitrepo.commit_sha(repo),
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": gitrepo.commit_time(repo),
        "org.opencontainers.image.title": target.repository_name,
    }


def _default_source(repo: Path) -> str:
    try:
        return gitrepo.git(repo, "remote", "get-url", "origin").strip()
    except PipelineError:
        return repo.resolve().as_uri()


def ensure_image(
    repo: Path,
    name: str,
    registry_address: str,
    *,
    tag: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    progress: Progress = stderr_progress,
) -> PushedImage:
    """Make sure the image ``name`` (a service, the deployer, or platform/images/<name>) is in
    the registry at ``registry_address`` (``127.0.0.1:PORT``) and return it, with its digest.

    ``tag`` defaults to ``<version>-<content hash>``; the image is named
    ``<namespace>/<repository>:<tag>`` (pause: its fixed name) and pushed with the registry host
    replaced. Built only when no local image has the same content key.
    """
    root = gitrepo.toplevel(repo.resolve())
    target = find_target(root, name)
    base = ensure_base_images(progress)
    key = image_key(root, target, base, {})
    reference = target.reference(namespace, tag or target.content_tag(key))
    version = reference.rsplit(":", 1)[-1]
    labels = oci_labels(root, target, version, _default_source(root))
    built = build_image(root, BuildahBuild(target, reference, labels), base, progress)
    return push_image(built, registry_address, progress)


def write_metadata(path: Path, pushed: PushedImage) -> None:
    """A ``buildx --metadata-file``-shaped record, so ``publish --metadata-file`` reads it."""
    record = {
        "containerimage.digest": pushed.digest,
        "image.name": pushed.image.reference,
        "flotilla.pushed-to": pushed.destination,
        "flotilla.content-key": pushed.image.key,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
