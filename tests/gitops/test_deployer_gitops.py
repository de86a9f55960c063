"""GitOps environments end to end: the deployer commits each deployment's desired state to a git
repository (a git server on 127.0.0.1) and the real Flux controllers (source-, kustomize- and
helm-controller, local processes against the session's cluster) apply it.

The deployer publishes the same events as in push mode; a broken image is rolled back by Flux
and reported so; racing deployments all land, one commit each; a rollback is a revert commit
and holds automatic promotion until a person clears the hold; a repository Flux or the deployer
cannot use ends the deployment with what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy_contract.events import DeployEventData, DeployPhase
from devkit.localstack.flux import FluxControllers
from devkit.localstack.gitserver import GitServer
from tests.deployer.deployer_stack import DeployerStack, image
from tests.deployer.test_deployer_environments import (
    awaits,
    call,
    deployed_image,
    get,
    promoted,
    wait_promotion,
)
from tests.e2e.clustersupport import Helm, Kubectl
from tests.gitops.gitops_world import (
    GIT_USER,
    Json,
    Repository,
    flux_secret,
    gitops,
    stack,
)

pytestmark = pytest.mark.e2e

V1 = "1.1.0-b2c3d4e"
V2 = "1.2.0-c3d4e5f"
V3 = "1.3.0-d4e5f6a"
BROKEN = "1.4.0-neverready-e5f6a7b"
FLUX_TIMEOUT = 120  # a Flux round trip on this machine takes seconds; a failure, the timeout


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("git"), credentials=GIT_USER) as server:
        yield server


@pytest.fixture(scope="module")
def flux(
    kubeconfig: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FluxControllers]:
    with FluxControllers(kubeconfig, tmp_path_factory.mktemp("flux"), repo_root) as controllers:
        yield controllers


@pytest.fixture
def repository(git_server: GitServer, tmp_path: Path) -> Repository:
    return Repository(git_server, tmp_path)


@dataclass
class World:
    """What every deployer of a test shares: the cluster, the test's namespace, the repository
    (and Flux, running)."""

    repo_root: Path
    directory: Path
    kubeconfig: Path
    namespace: str
    kubectl: Kubectl
    repository: Repository

    def only_gitops(self, url: str | None = None) -> Json:
        """One gitops environment in the test's namespace, where CI's releases enter."""
        spec = {"name": "dev", "namespace": self.namespace, "mode": "gitops"}
        return {"environments": [{**spec, "gitops": gitops(url or self.repository.url)}]}

    @contextlib.asynccontextmanager
    async def deployer(
        self, environments: Json, env: dict[str, str] | None = None, name: str = "deployer"
    ) -> AsyncIterator[DeployerStack]:
        """A deployer of ``environments`` started, with Flux's Secret in each gitops namespace;
        stopped however the test ends (its namespaces deleted: helm-controller uninstalls their
        releases)."""
        directory = self.directory / name
        directory.mkdir()
        started = stack(
            self.repo_root, directory, self.kubeconfig, self.namespace, environments, env
        )
        try:
            await started.start()
            for spec in environments["environments"]:
                if spec.get("mode") == "gitops":
                    flux_secret(self.kubectl, spec["namespace"])
            yield started
        finally:
            await started.stop()


@pytest.fixture
def world(
    flux: FluxControllers,
    repository: Repository,
    repo_root: Path,
    tmp_path: Path,
    kubeconfig: Path,
    namespace: str,
    kubectl: Kubectl,
) -> World:
    return World(repo_root, tmp_path, kubeconfig, namespace, kubectl, repository)


@pytest.fixture
async def push_then_gitops(world: World) -> AsyncIterator[DeployerStack]:
    """dev (push: the deployer runs helm) -> prod (gitops, automatic promotion)."""
    prod = {
        "name": "prod",
        "namespace": f"{world.namespace}-prod",
        "upstream": "dev",
        "mode": "gitops",
        "gitops": gitops(world.repository.url),
    }
    environments = {"environments": [{"name": "dev", "namespace": world.namespace}, prod]}
    async with world.deployer(environments) as started:
        yield started


@pytest.fixture
async def only_gitops(world: World) -> AsyncIterator[DeployerStack]:
    """One gitops environment, where CI's releases enter."""
    async with world.deployer(world.only_gitops()) as started:
        yield started


def phases(events: list[DeployEventData]) -> list[DeployPhase]:
    """The phases of a deployment's events, repeated progress counted once."""
    found: list[DeployPhase] = []
    for event in events:
        if not found or event.phase is not found[-1]:
            found.append(event.phase)
    return found


def helm_revisions(helm: Helm, namespace: str, release: str) -> list[int]:
    """The revisions of ``release``, oldest first."""
    done = helm.run("history", release, "--namespace", namespace, "--output", "json")
    return [int(entry["revision"]) for entry in json.loads(done.stdout)]


async def outcome_of(deployer: DeployerStack, deployment_id: str) -> DeployEventData:
    return await deployer.outcome(deployment_id, timeout=FLUX_TIMEOUT)


async def prod_deployment(deployer: DeployerStack, release: str) -> str:
    """The deployment that promoted ``release`` into prod."""
    promotion = await wait_promotion(
        deployer, f"{release}.prod", promoted, "promoted", timeout=FLUX_TIMEOUT
    )
    deployment_id: str = promotion["deployment_id"]
    return deployment_id


async def enter(deployer: DeployerStack, tag: str) -> tuple[str, str]:
    """CI publishes order at ``tag`` into dev; (the deployment's id, the release's id)."""
    deployment_id = await deployer.publish("order", tag)
    outcome = await outcome_of(deployer, deployment_id)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert outcome.release_id is not None
    return deployment_id, outcome.release_id


async def test_a_release_reaches_a_gitops_environment_through_one_commit_per_deployment(
    push_then_gitops: DeployerStack, repository: Repository, kubectl: Kubectl, helm: Helm
) -> None:
    deployer = push_then_gitops
    prod = f"{deployer.namespace}-prod"
    in_dev, first = await enter(deployer, V1)
    into_prod = await prod_deployment(deployer, first)
    _, second = await enter(deployer, V2)
    again = await prod_deployment(deployer, second)
    assert deployed_image(kubectl, prod) == image("order", V2)
    assert helm_revisions(helm, prod, "order") == [1, 2]  # one upgrade per commit

    commits = repository.log()
    assert [c.subject for c in commits] == [
        f"Deploy order {V2} to prod",
        f"Deploy order {V1} to prod",
    ]
    newest = commits[0].trailers
    assert newest["Flotilla-Deployment"] == again
    assert newest["Flotilla-Release"] == second
    assert newest["Flotilla-Environment"] == "prod"
    assert newest["Flotilla-Pipeline-Run"] == "e2e"
    assert newest["Flotilla-Commit"] == V2.rsplit("-", 1)[1]
    assert commits[1].trailers["Flotilla-Deployment"] == into_prod
    values = yaml.safe_load(repository.read("environments/prod/order/values.yaml"))
    assert values["image"]["tag"] == V2
    assert "digest" in values["image"]

    # The same events as the push environment's: queued, started, progress, succeeded.
    pushed = await deployer.events(in_dev)
    committed = await deployer.events(into_prod)
    assert phases(committed) == phases(pushed)
    assert phases(committed)[-1] is DeployPhase.SUCCEEDED
    progress = [e.progress for e in committed if e.progress is not None]
    assert progress
    assert progress[-1].ready == progress[-1].desired
    assert progress[-1].replica_sets
    assert {e.environment for e in committed} == {"prod"}
    succeeded = committed[-1]
    assert succeeded.revision is not None
    assert succeeded.revision >= 1


async def test_a_broken_image_is_rolled_back_by_flux_and_reported_with_the_pods_problem(
    only_gitops: DeployerStack, repository: Repository, kubectl: Kubectl
) -> None:
    deployer = only_gitops
    await enter(deployer, V1)
    broken = await deployer.publish("order", BROKEN)
    outcome = await outcome_of(deployer, broken)
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome.reason
    assert outcome.reason is not None
    assert "Flux rolled it back" in outcome.reason
    assert "Helm upgrade failed" in outcome.reason  # Flux's own message
    problems = outcome.pod_problems or []
    assert problems
    assert "the new pods: pod order-" in outcome.reason
    assert "restarting failed container=order" in outcome.reason  # the crash loop, named
    assert DeployPhase.FAILED not in phases(await deployer.events(broken))
    assert deployed_image(kubectl, deployer.namespace) == image("order", V1)
    assert repository.log()[0].trailers["Flotilla-Deployment"] == broken


async def test_racing_deployments_all_land_one_commit_each(
    only_gitops: DeployerStack, repository: Repository, helm: Helm
) -> None:
    deployer = only_gitops
    ids = await asyncio.gather(
        deployer.publish("order", V1), deployer.publish("payment", V1), deployer.publish("auth", V1)
    )
    repository.push_by_hand("README.md", "Deployments of the platform, by the Flotilla deployer.\n")
    outcomes = await asyncio.gather(*(outcome_of(deployer, i) for i in ids))
    assert [o.phase for o in outcomes] == [DeployPhase.SUCCEEDED] * 3, [o.reason for o in outcomes]
    commits = repository.log()
    deployments = [c.trailers.get("Flotilla-Deployment") for c in commits]
    assert sorted(filter(None, deployments)) == sorted(ids)
    assert any(c.subject == "by hand: README.md" for c in commits)  # nothing lost
    kustomization = yaml.safe_load(repository.read("environments/dev/kustomization.yaml"))
    assert kustomization["resources"] == ["auth", "order", "payment"]
    # Each commit upgraded its own release alone: the others' commits (and the person's) left
    # it at its one revision.
    for service in ("auth", "order", "payment"):
        assert helm_revisions(helm, deployer.namespace, service) == [1], service


async def test_a_rollback_is_a_revert_commit_and_holds_promotion_until_cleared(
    push_then_gitops: DeployerStack, repository: Repository, kubectl: Kubectl
) -> None:
    deployer = push_then_gitops
    prod = f"{deployer.namespace}-prod"
    _, first = await enter(deployer, V1)
    await prod_deployment(deployer, first)
    _, second = await enter(deployer, V2)
    deployed = await prod_deployment(deployer, second)

    status, rollback = await call(
        deployer, "POST", "/api/services/order/rollback?environment=prod", {}
    )
    assert status == 202, rollback
    outcome = await outcome_of(deployer, rollback["id"])
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert deployed_image(kubectl, prod) == image("order", V1)
    revert = repository.log()[0]
    assert revert.subject == f'Revert "Deploy order {V2} to prod"'
    assert revert.trailers["Flotilla-Deployment"] == rollback["id"]
    reverted = next(
        c for c in repository.log() if c.trailers.get("Flotilla-Deployment") == deployed
    )
    assert revert.trailers["Flotilla-Reverts"] == reverted.sha
    values = yaml.safe_load(repository.read("environments/prod/order/values.yaml"))
    assert values["image"]["tag"] == V1

    holds: list[Json] = []
    for _ in range(50):
        holds = await get(deployer, "/api/holds")
        if holds:
            break
        await asyncio.sleep(0.2)
    [hold] = holds
    assert (hold["environment"], hold["service"]) == ("prod", "order")
    _, newer = await enter(deployer, V3)
    await wait_promotion(deployer, f"{newer}.prod", awaits("hold"), "held")
    assert deployed_image(kubectl, prod) == image("order", V1)
    status, cleared = await call(deployer, "DELETE", "/api/holds/prod/order")
    assert status == 200, cleared
    await prod_deployment(deployer, newer)
    assert deployed_image(kubectl, prod) == image("order", V3)
    assert repository.log()[0].subject == f"Deploy order {V3} to prod"


async def test_a_repository_flux_cannot_read_ends_the_deployment_with_fluxs_message(
    only_gitops: DeployerStack, kubectl: Kubectl
) -> None:
    deployer = only_gitops
    flux_secret(kubectl, deployer.namespace, password="not-the-password")
    outcome = await outcome_of(deployer, await deployer.publish("order", V1))
    assert outcome.phase is DeployPhase.FAILED
    assert outcome.reason is not None
    assert "Flux cannot fetch" in outcome.reason
    assert "secretRef flotilla-git" in outcome.reason
    assert "401" in outcome.reason or "authentication" in outcome.reason.lower(), outcome.reason


async def test_a_repository_the_deployer_cannot_reach_or_write_ends_the_deployment(
    world: World,
) -> None:
    refused = {"DEPLOYER_GIT_PASSWORD": "wrong"}
    async with world.deployer(world.only_gitops(), refused, name="refused") as deployer:
        outcome = await outcome_of(deployer, await deployer.publish("order", V1))
    assert outcome.phase is DeployPhase.FAILED
    assert outcome.reason is not None
    assert "refused the deployer's credentials" in outcome.reason
    assert "DEPLOYER_GIT_PASSWORD" in outcome.reason
    assert world.repository.log() == []  # nothing was pushed

    nowhere = "http://127.0.0.1:9/nothing.git"  # nothing listens on the discard port
    async with world.deployer(world.only_gitops(nowhere), name="gone") as deployer:
        outcome = await outcome_of(deployer, await deployer.publish("order", V1))
    assert outcome.phase is DeployPhase.FAILED
    assert outcome.reason is not None
    assert "git kept failing after 5 tries: cannot reach the repository" in outcome.reason
