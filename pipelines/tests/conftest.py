"""Fixtures of the pipelines tests: temporary git repositories and the CLI as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from pipelines_cli.testing import CliRun, GitRepo, git, pyproject


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A repository with four services, the deployer, the chassis and charts, one commit."""
    repo = GitRepo(tmp_path / "repo")
    repo.path.mkdir()
    git(repo.path, "init", "-q", "-b", "main")
    for service, version in (("auth", "1.0.0"), ("order", "1.4.2"), ("payment", "0.3.0")):
        repo.write(f"services/{service}/pyproject.toml", pyproject(f"{service}-service", version))
        repo.write(f"services/{service}/src/{service}_service/main.py")
        repo.write(f"charts/{service}/Chart.yaml")
    repo.write("services/gateway/pyproject.toml", pyproject("gateway-service", "2.0.0-rc.1"))
    repo.write("charts/gateway/Chart.yaml")
    repo.write("platform/deployer/pyproject.toml", pyproject("flotilla-deployer", "0.9.1"))
    repo.write("charts/deployer/Chart.yaml")
    repo.write("platform/kit/pyproject.toml", pyproject("flotilla-kit", "0.1.0"))
    repo.write("platform/kit/src/kit/bus.py")
    repo.write("charts/flotilla-lib/templates/_deployment.tpl")
    repo.write("pipelines/src/pipelines_cli/cli.py")
    repo.write("uv.lock")
    repo.write("pyproject.toml", pyproject("flotilla", "0.1.0"))
    repo.write("README.md")
    repo.commit("initial")
    return repo


@pytest.fixture(scope="session")
def run_cli(repo_root: Path) -> CliRun:
    """Run ``python -m pipelines_cli ARGS`` as a real process (exit codes as CI sees them)."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "pipelines_cli", *args],
            cwd=cwd or repo_root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
