"""GitOps against push: CI's event -> the commit pushed, and -> all new pods ready through Flux,
against the same deployment run by helm (push mode), interleaved in one run."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from devkit.localstack.flux import FluxControllers
from devkit.localstack.gitserver import GitServer
from tests.bench.deployer_bench import _create_namespace, _deploy, _record
from tests.deployer.deployer_stack import DeployerStack
from tests.e2e.clustersupport import Kubectl, LocalCluster, built_tool, unique_name
from tests.gitops.gitops_world import GIT_USER, flux_secret, git_env, gitops


@dataclass(frozen=True)
class GitOpsFigures:
    """Seconds, one entry per deployment."""

    event_to_commit: list[float]
    through_flux: list[float]
    through_helm: list[float]


async def run_gitops_bench(repo: Path, samples: int) -> GitOpsFigures:
    """A cluster, a git server, Flux, and two deployers (push and gitops); measure; tear down."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-gitops-") as directory:
        workdir = Path(directory)
        cluster = await asyncio.to_thread(
            LocalCluster.start, workdir / "kwok", unique_name("bench")
        )
        try:
            for namespace in ("bench-push", "bench-gitops"):
                await asyncio.to_thread(_create_namespace, repo, cluster.kubeconfig, namespace)
            kubectl = Kubectl(built_tool("kubectl"), cluster.kubeconfig)
            flux_secret(kubectl, "bench-gitops")
            (workdir / "git").mkdir()
            (workdir / "flux").mkdir()
            with (
                GitServer(workdir / "git", credentials=GIT_USER) as server,
                FluxControllers(cluster.kubeconfig, workdir / "flux", repo),
            ):
                server.create_repository("bench")
                return await _measure_both(repo, workdir, cluster.kubeconfig, server, samples)
        finally:
            cluster.delete()


async def _measure_both(
    repo: Path, workdir: Path, kubeconfig: Path, server: GitServer, samples: int
) -> GitOpsFigures:
    environments = {
        "environments": [
            {
                "name": "bench",
                "namespace": "bench-gitops",
                "mode": "gitops",
                "gitops": gitops(server.url("bench")),
            }
        ]
    }
    (workdir / "push").mkdir()
    (workdir / "gitops").mkdir()
    push = DeployerStack(repo, workdir / "push", kubeconfig, "bench-push")
    flux = DeployerStack(
        repo, workdir / "gitops", kubeconfig, "bench-gitops",
        environments=environments, env=git_env(),
    )  # fmt: skip
    await push.start()
    await flux.start()
    try:
        await _deploy(push, "order", "1.0.0-a1b2c3d")  # installs: not measured
        await _deploy(flux, "order", "1.0.0-a1b2c3d")
        to_commit: list[float] = []
        through_flux: list[float] = []
        through_helm: list[float] = []
        for n in range(samples):
            _, _, took = await _deploy(push, "order", f"1.1.{n}-b2c3d4e")
            through_helm.append(took)
            deployment_id, published, took = await _deploy(flux, "order", f"1.1.{n}-b2c3d4e")
            through_flux.append(took)
            record = await _record(flux, deployment_id)
            pushed = datetime.fromisoformat(str(record["helm_started_at"])).timestamp()
            to_commit.append(pushed - published)
        return GitOpsFigures(to_commit, through_flux, through_helm)
    finally:
        await flux.stop()
        await push.stop()
