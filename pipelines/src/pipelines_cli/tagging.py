"""Immutable image tags: ``<version>-<sha7>``, from a clean work tree only, never ``latest``."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines_cli import gitrepo
from pipelines_cli.deployables import Deployable, project_version
from pipelines_cli.errors import DirtyTreeError, TagError

# The charts' values.schema.json image.tag pattern (charts/schemagen.py), and the deployer's rule.
TAG_PATTERN = re.compile(
    r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?"
    r"-[0-9a-f]{7,40}$"
)
VERSION_PATTERN = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$"
)
SHORT_SHA_LENGTH = 7
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_MAX_LISTED = 10


def make_tag(version: str, sha: str) -> str:
    """``<version>-<first 7 hex digits of sha>``; refuses anything the charts would refuse."""
    if not VERSION_PATTERN.match(version):
        raise TagError(
            f"version {version!r} is not MAJOR.MINOR.PATCH[-PRERELEASE] (e.g. 1.4.2, 1.5.0-rc.1): "
            "set [project].version in the service's pyproject.toml to a semantic version"
        )
    if not _SHA.match(sha):
        raise TagError(f"{sha!r} is not a git commit sha (7 to 40 lowercase hex digits)")
    tag = f"{version}-{sha[:SHORT_SHA_LENGTH]}"
    # Both hold by construction; checked so no code path can ever hand out a mutable tag.
    if tag == "latest" or not TAG_PATTERN.match(tag):
        raise TagError(f"refusing tag {tag!r}: it does not match {TAG_PATTERN.pattern}")
    return tag


def refuse_dirty(repo: Path) -> None:
    """Raise DirtyTreeError listing the uncommitted paths, if there are any."""
    dirty = gitrepo.dirty_paths(repo)
    if dirty:
        listed = ", ".join(dirty[:_MAX_LISTED]) + (" ..." if len(dirty) > _MAX_LISTED else "")
        raise DirtyTreeError(
            f"the work tree {repo} has {len(dirty)} uncommitted change(s) ({listed}): an image "
            "built from it would not match its commit. Commit or stash the changes (and remove "
            "untracked files), then run again."
        )


def image_tag(repo: Path, deployable: Deployable) -> str:
    """The tag of ``deployable`` built from the work tree's HEAD, which must be clean."""
    refuse_dirty(repo)
    return make_tag(project_version(repo, deployable), gitrepo.commit_sha(repo))
