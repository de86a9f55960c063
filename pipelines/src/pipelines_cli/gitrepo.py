"""The few git queries the pipeline needs, run with the real git binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipelines_cli.errors import GitError

NULL_SHA = "0" * 40


def git(repo: Path, *args: str) -> str:
    """Run ``git -C repo args`` and return its stdout, or raise GitError with git's message."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed: install git and run again") from None
    if result.returncode != 0:
        raise GitError(
            f"`git {' '.join(args)}` failed in {repo}: {result.stderr.strip() or result.stdout}"
        )
    return result.stdout


def toplevel(path: Path) -> Path:
    """The root of the git work tree containing ``path``."""
    try:
        return Path(git(path, "rev-parse", "--show-toplevel").strip())
    except GitError:
        raise GitError(
            f"{path} is not inside a git work tree: run from the repository or pass --repo"
        ) from None


def resolve(repo: Path, rev: str) -> str | None:
    """The full sha of commit ``rev``, or None when the repository does not have it."""
    if not rev or rev.strip("0") == "":
        return None
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except GitError:
        return None


def commit_sha(repo: Path, rev: str = "HEAD") -> str:
    """The full sha of ``rev``; raises GitError naming the revision when it does not exist."""
    sha = resolve(repo, rev)
    if sha is None:
        raise GitError(
            f"commit {rev!r} not found in {repo}: fetch it (actions/checkout with fetch-depth: 0) "
            "or pass an existing revision"
        )
    return sha


def commit_time(repo: Path, rev: str = "HEAD") -> str:
    """The committer date of ``rev`` in strict ISO 8601 (UTC offset included)."""
    return git(repo, "show", "-s", "--format=%cI", rev).strip()


def dirty_paths(repo: Path) -> list[str]:
    """Tracked files with changes and untracked files that are not ignored."""
    out = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    return [line[3:] for line in out.splitlines() if line.strip()]


def changed_paths(repo: Path, base: str, head: str) -> list[str]:
    """Paths that differ between the merge base of ``base`` and ``head``, and ``head``.

    The merge base makes a pull request's diff its own changes only, and a push's diff the pushed
    commits (also after a force push). Renames count as a deletion plus an addition.
    """
    merge_base = git(repo, "merge-base", base, head).strip()
    out = git(repo, "diff", "--name-only", "--no-renames", merge_base, head)
    return [line for line in out.splitlines() if line]


def file_at(repo: Path, rev: str, path: str) -> str | None:
    """The content of ``path`` at ``rev``, or None when it does not exist there."""
    try:
        return git(repo, "show", f"{rev}:{path}")
    except GitError:
        return None


def list_dirs(repo: Path, rev: str, folder: str) -> list[str]:
    """Names of the sub-folders of ``folder`` at ``rev``."""
    out = git(repo, "ls-tree", "-d", "--name-only", rev, f"{folder.rstrip('/')}/")
    return [line.rsplit("/", 1)[-1] for line in out.splitlines() if line]
