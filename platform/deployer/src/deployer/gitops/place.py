"""The place of a gitops environment: its repository, Flux's objects, Helm's records."""

from __future__ import annotations

import hashlib

from deployer.adapters.cluster import Cluster
from deployer.adapters.helm import Helm
from deployer.gitops.apply import FluxApply, FluxReleases
from deployer.gitops.charts import ChartCopies
from deployer.gitops.config import GitOpsSpec
from deployer.gitops.flux import FluxObjects
from deployer.gitops.git import Credentials, GitRepository
from deployer.promotion.environments import EnvironmentSpec
from deployer.reconcile.ports import Place
from deployer.settings import DeployerSettings


def repository_of(settings: DeployerSettings, spec: GitOpsSpec) -> GitRepository:
    """The working copy of ``spec``'s repository branch (one per repository and branch)."""
    key = hashlib.sha256(f"{spec.repository}#{spec.branch}".encode()).hexdigest()[:16]
    credentials = None
    if settings.git_username and settings.git_password:
        credentials = Credentials(settings.git_username, settings.git_password.get_secret_value())
    return GitRepository(
        spec.repository,
        spec.branch,
        settings.gitops_dir / "repositories" / key,
        credentials=credentials,
        author=(settings.git_author_name, settings.git_author_email),
    )


async def gitops_place(
    settings: DeployerSettings,
    environment: EnvironmentSpec,
    spec: GitOpsSpec,
    helm: Helm,
    cluster: Cluster,
) -> Place:
    """The place of ``environment``, Flux set up to follow its folder of the repository."""
    charts = ChartCopies(settings.gitops_dir / "charts")
    flux = FluxObjects(cluster.objects)
    apply = FluxApply(environment.name, spec, repository_of(settings, spec), flux, helm, charts)
    await apply.set_up()
    return Place(
        namespace=environment.namespace,
        releases=FluxReleases(helm, flux, charts),
        apply=apply,
        rollouts=cluster,
        objects=cluster.objects,
        mode="gitops",
    )
