"""skaffold's custom builder for a machine with no Docker engine: ``buildCommand`` of the
``buildah`` profile of skaffold.yaml.

    .venv/bin/python -m pipelines_cli.skaffoldbuild <deployable>

skaffold runs it in the artifact's context (the repository root) with ``IMAGE`` (the full
reference it chose: ``<default repo>/<name>-service:<tag>``), ``PUSH_IMAGE`` and
``BUILD_CONTEXT``. The image is built the way ``pipelines build`` builds it (``imagebuild``:
buildah with ``--layers``, the local base images, nothing pulled, skipped when local storage has
an image with the same content key) and, when ``PUSH_IMAGE`` is true, pushed to ``IMAGE``; a
loopback registry (the local cluster's ``127.0.0.1:PORT``) is spoken to without TLS. skaffold
then asks the registry for the digest, which the releases pull by.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipelines_cli import gitrepo, registry
from pipelines_cli.baseimages import ensure_base_images
from pipelines_cli.buildah import Progress, stderr_progress
from pipelines_cli.errors import PipelineError
from pipelines_cli.imagebuild import (
    BuildahBuild,
    BuiltImage,
    PushedImage,
    _default_source,
    build_image,
    oci_labels,
    push_image,
)
from pipelines_cli.imagetargets import find_target

INSTALL_HINT = "run `make tools` (platform/images/install-tools.sh installs buildah)"
DEFAULT_REPO_HINT = (
    "pass --default-repo 127.0.0.1:PORT/flotilla (or set SKAFFOLD_DEFAULT_REPO), the registry "
    "the cluster's nodes pull from"
)


def _labels(repo: Path, name: str, version: str) -> dict[str, str]:
    """The OCI labels ``pipelines build`` sets; none outside a git work tree."""
    try:
        return oci_labels(repo, find_target(repo, name), version, _default_source(repo))
    except PipelineError:
        return {}


def build(repo: Path, name: str, image: str, progress: Progress = stderr_progress) -> BuiltImage:
    """Build the image of ``name`` from ``repo`` as ``image`` with buildah (cached by content)."""
    if shutil.which("buildah") is None:
        raise PipelineError(
            f"buildah not found: skaffold's buildah builder needs it; {INSTALL_HINT}"
        )
    target = find_target(repo, name)
    base = ensure_base_images(progress)
    labels = _labels(repo, name, image.rsplit(":", 1)[-1])
    return build_image(repo, BuildahBuild(target, image, labels), base, progress)


def registry_of(image: str) -> str:
    """The registry ``image`` names (``host[:port]``); an error when it names none."""
    host, _, _ = registry.split_reference(image)
    if host == "docker.io" and not image.startswith("docker.io/"):
        raise PipelineError(f"{image} names no registry: {DEFAULT_REPO_HINT}")
    return host


def push(built: BuiltImage, progress: Progress = stderr_progress) -> PushedImage:
    """Push ``built`` to the registry its name says (``IMAGE``), checking the served digest."""
    host = registry_of(built.reference)
    try:
        return push_image(built, host, progress)
    except PipelineError as exc:
        # buildah's retries repeat the same lines: its last one says what went wrong.
        reason = str(exc).strip().splitlines()[-1]
        raise PipelineError(
            f"pushing {built.reference} to the registry {host} failed: {reason} -- is the registry "
            f"running (make cluster-up) and is {host} the one the cluster pulls from? "
            f"({DEFAULT_REPO_HINT})"
        ) from None


def run(name: str, env: Mapping[str, str], progress: Progress = stderr_progress) -> None:
    """Build (and push, when skaffold says so) what skaffold's environment ``env`` asks for."""
    image = env.get("IMAGE", "").strip()
    if not image:
        raise PipelineError(
            "IMAGE is not set: this is skaffold's custom buildCommand (skaffold run/dev/build "
            "sets IMAGE, PUSH_IMAGE and BUILD_CONTEXT)"
        )
    if env.get("PUSH_IMAGE", "true").lower() != "true":
        raise PipelineError(
            f"skaffold wants {image} in a local Docker engine (PUSH_IMAGE=false, e.g. a local "
            "cluster context or --push=false), which this builder does not use: keep "
            "build.local.push true (the buildah profile), or build with Docker: -p -buildah"
        )
    registry_of(image)  # before a build that could not be pushed
    context = Path(env.get("BUILD_CONTEXT") or os.getcwd())
    try:
        repo = gitrepo.toplevel(context)
    except PipelineError:
        repo = context
    pushed = push(build(repo, name, image, progress), progress)
    progress(f"{name}: {pushed.destination}@{pushed.digest}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines_cli.skaffoldbuild",
        description="skaffold's custom builder: build $IMAGE with buildah and push it.",
    )
    parser.add_argument("name", help="the deployable (a service under services/, the deployer)")
    args = parser.parse_args(argv)
    try:
        run(args.name, os.environ)
    except PipelineError as exc:
        print(f"skaffoldbuild: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
