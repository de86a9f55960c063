"""Test helpers: temporary git repositories shaped like Flotilla's, the CLI as a real process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; returns stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Flotilla Tests",
        "GIT_AUTHOR_EMAIL": "tests@flotilla.invalid",
        "GIT_COMMITTER_NAME": "Flotilla Tests",
        "GIT_COMMITTER_EMAIL": "tests@flotilla.invalid",
    }
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout


class GitRepo:
    """A throw-away repository shaped like Flotilla's, with helpers to make real commits."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, relative: str, content: str = "x\n") -> None:
        """Create or overwrite a file."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def commit(self, message: str, *files: str) -> str:
        """Write ``files`` (a changed line each), commit everything, return the full sha."""
        for relative in files:
            target = self.path / relative
            previous = target.read_text() if target.exists() else ""
            self.write(relative, previous + f"{message}\n")
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return self.sha()

    def sha(self, rev: str = "HEAD") -> str:
        """The full sha of ``rev``."""
        return git(self.path, "rev-parse", rev).strip()

    def git(self, *args: str) -> str:
        """Run any git command here."""
        return git(self.path, *args)


def pyproject(name: str, version: str) -> str:
    """A minimal pyproject.toml."""
    return f'[project]\nname = "{name}"\nversion = "{version}"\n'


CliRun = Callable[..., subprocess.CompletedProcess[str]]
