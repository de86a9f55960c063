"""Fixtures of the deployer's end-to-end suite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.deployer.deployer_stack import DeployerStack


@pytest.fixture
async def stack(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    deployer = DeployerStack(repo_root, tmp_path, kubeconfig, namespace)
    await deployer.start()
    yield deployer
    await deployer.stop()
