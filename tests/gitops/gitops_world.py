"""The GitOps world of the end-to-end suite: a git server on 127.0.0.1, the real Flux controllers
against the session's cluster, and deployers whose environments are gitops environments.

Flux reads the repository with the credentials of a Secret in each environment's namespace; the
deployer pushes with its own (DEPLOYER_GIT_USERNAME / _PASSWORD); here both are the server's one
user.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.localstack.gitserver import GitServer
from tests.deployer.deployer_stack import DeployerStack
from tests.e2e.clustersupport import Kubectl

GIT_USER = ("flotilla", "git-local-only")
FLUX_SECRET = "flotilla-git"
Json = dict[str, Any]


def gitops(url: str, **extra: Any) -> Json:
    """The gitops block of an environment over ``url``, Flux reading with FLUX_SECRET."""
    return {"repository": url, "secretRef": FLUX_SECRET, **extra}


def git_env(password: str = GIT_USER[1]) -> dict[str, str]:
    """The deployer's push credentials (and retries quick enough for a test)."""
    return {
        "DEPLOYER_GIT_USERNAME": GIT_USER[0],
        "DEPLOYER_GIT_PASSWORD": password,
        "DEPLOYER_RETRY_SECONDS": "0.3",
        "DEPLOYER_PROMOTION_SECONDS": "0.5",
    }


def flux_secret(kubectl: Kubectl, namespace: str, password: str = GIT_USER[1]) -> None:
    """The Secret Flux reads the repository with, in ``namespace`` (replaced when it exists)."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": FLUX_SECRET, "namespace": namespace},
        "stringData": {"username": GIT_USER[0], "password": password},
    }
    kubectl.run("apply", "--filename", "-", stdin=json.dumps(manifest))


@dataclass
class Commit:
    """One commit of the repository, as ``git log`` shows it."""

    sha: str
    subject: str
    trailers: dict[str, str]


class Repository:
    """A repository of the git server, read through a clone of its own."""

    def __init__(self, server: GitServer, directory: Path) -> None:
        self.name = f"platform-{uuid.uuid4().hex[:8]}"
        self.server = server
        server.create_repository(self.name)
        self.url = server.url(self.name)
        self._clone = directory / f"{self.name}-view"

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self._clone,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": str(self._clone)},
        )
        return done.stdout

    def refresh(self) -> None:
        """Fetch the server's branch into the view (nothing to fetch while it is empty)."""
        if not self._clone.is_dir():
            self._clone.mkdir(parents=True)
            self._git("init", "--quiet", "--initial-branch=main")
            self._git("remote", "add", "origin", self.server.url(self.name, with_credentials=True))
        if self._git("ls-remote", "origin", "main").strip():
            self._git("fetch", "--quiet", "origin", "main")
            self._git("checkout", "--quiet", "-B", "main", "FETCH_HEAD")

    def has_commits(self) -> bool:
        """Whether main exists on the server (an empty repository has none)."""
        self.refresh()
        return bool(self._git("ls-remote", "origin", "main").strip())

    def log(self) -> list[Commit]:
        """The commits of main, newest first (none while it is empty)."""
        if not self.has_commits():
            return []
        text = self._git("log", "--format=%H%x1f%s%x1f%(trailers:only,unfold)%x1e", "main")
        commits = []
        for entry in filter(None, (e.strip() for e in text.split("\x1e"))):
            sha, subject, trailers = [*entry.split("\x1f"), "", ""][:3]
            parts = (line.partition(": ") for line in trailers.splitlines() if ": " in line)
            commits.append(Commit(sha, subject, {key: value for key, _, value in parts}))
        return commits

    def read(self, path: str) -> str:
        """A file of main, as it is now."""
        self.refresh()
        return (self._clone / path).read_text()

    def push_by_hand(self, path: str, text: str) -> None:
        """Someone else's commit on main (a person editing the repository), pushed again on
        the branch as it is now when someone else pushed first."""
        for _ in range(10):
            self.refresh()
            (self._clone / path).parent.mkdir(parents=True, exist_ok=True)
            (self._clone / path).write_text(text)
            self._git("add", "--all")
            self._git(
                "-c", "user.name=someone", "-c", "user.email=someone@example.invalid",
                "commit", "--quiet", "-m", f"by hand: {path}",
            )  # fmt: skip
            try:
                self._git("push", "--quiet", "origin", "HEAD:main")
                return
            except subprocess.CalledProcessError:
                shutil.rmtree(self._clone)  # lost the race: again, on the branch as it is now
        raise AssertionError(f"could not push {path} in 10 tries")


def stack(
    repo_root: Path,
    directory: Path,
    kubeconfig: Path,
    namespace: str,
    environments: Json,
    env: dict[str, str] | None = None,
) -> DeployerStack:
    """A deployer of ``environments`` with the git credentials."""
    return DeployerStack(
        repo_root,
        directory,
        kubeconfig,
        namespace,
        environments=environments,
        env={**git_env(), **(env or {})},
    )
