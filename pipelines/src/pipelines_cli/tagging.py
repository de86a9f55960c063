"""Immutable image tags: ``<version>-<sha7>``, from a clean work tree only, never ``latest``."""

from __future__ import annotations

import re
from pathlib import Path

from kit import naming
from pipelines_cli import gitrepo
from pipelines_cli.deployables import Deployable, project_version
from pipelines_cli.errors import DirtyTreeError, TagError

# The rule is kit.naming's, shared with the deployer and the charts' values.schema.json.
TAG_PATTERN = re.compile(naming.IMAGE_TAG)
VERSION_PATTERN = re.compile(naming.VERSION)
SHORT_SHA_LENGTH = 7
_MAX_LISTED = 10


def make_tag(version: str, sha: str) -> str:
    """``<version>-<first 7 hex digits of sha>``; refuses anything the charts would refuse."""
    try:
        naming.check_version(version)
        naming.check_commit_sha(sha)
        tag = f"{version}-{sha[:SHORT_SHA_LENGTH]}"
        # Holds by construction; checked so no code path can ever hand out a mutable tag.
        naming.check_image_tag(tag)
    except naming.NamingError as exc:
        raise TagError(str(exc)) from None
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
