"""The real Flux controllers (platform/cluster/build-tools.sh flux) against the session's cluster,
reading the gitops layout (tests/gitops/gitops_layout.py) from the local git server:

1. the first commit installs the order release, with the image of its values.yaml;
2. a commit changing only its values.yaml upgrades it (helm revision 2); commits touching
   another service's folder (whose install fails, unremediated) or another environment leave it
   alone;
3. a never-ready image times out and is rolled back; values the chart's schema refuses fail
   before any release, and helm-controller retries them;
4. a wrong git password fails the GitRepository.

What each step found (timings, the statuses Flux wrote, the HelmRelease's every change) is
printed and written to <tmp_path>/flux-findings.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.localstack.flux import FluxControllers
from devkit.localstack.gitserver import GitServer
from tests.deployer.deployer_stack import kwok_values
from tests.e2e.clustersupport import Kubectl, KubectlWatch
from tests.gitops.fluxobjects import (
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    KUSTOMIZATION,
    Object,
    apply,
    basic_auth_secret,
    get,
    git_repository,
    helm_revisions,
    kustomization,
    ready,
    request_reconcile,
    revision,
    wait_for,
)
from tests.gitops.gitops_layout import GIT_SOURCE, GitopsClone
from tests.gitops.releasestatus import (
    FAILED,
    IN_PROGRESS,
    RETRYING,
    ROLLED_BACK,
    SUCCEEDED,
    outcome,
    status_summary,
    timeline,
)

pytestmark = pytest.mark.e2e

ENVIRONMENT = "dev"
REPOSITORY = "registry.local/{service}-service"
CREDENTIALS = ("flux", "flux-password")
SECRET = "flotilla-git"
DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
STEP_TIMEOUT = 60.0


def values(service: str, tag: str, digest: str | None) -> dict[str, Any]:
    """A service's values.yaml: its image (by digest when given) and the kwok settings."""
    image = {"repository": REPOSITORY.format(service=service), "tag": tag}
    if digest:
        image["digest"] = digest
    return {"image": image, **kwok_values(service)}


@dataclass
class Gitops:
    """The git server, the controllers and a clone, for one test namespace."""

    kubectl: Kubectl
    namespace: str
    clone: GitopsClone
    git_url: str
    findings: dict[str, Any] = field(default_factory=dict)

    def push(self, message: str) -> tuple[str, float]:
        """Commit and push the clone's changes, then ask Flux to fetch now; the commit and the
        moment of the push."""
        commit = self.clone.commit_and_push(message)
        pushed = time.monotonic()
        request_reconcile(self.kubectl, GIT_REPOSITORY, GIT_SOURCE, self.namespace)
        return commit, pushed

    def applied(self, commit: str) -> Object:
        """Wait until the environment's Kustomization has applied ``commit``."""
        return wait_for(
            self.kubectl, KUSTOMIZATION, f"flotilla-{ENVIRONMENT}", self.namespace,
            lambda k: k.get("status", {}).get("lastAppliedRevision") == revision(commit),
            timeout=STEP_TIMEOUT, what=f"applied at {commit}",
        )  # fmt: skip

    def deploy(self, service: str, expected: str) -> Object:
        """The HelmRelease once helm-controller is done with its current generation (the one
        the last applied commit made), which must have come out as ``expected``."""
        generation = get(self.kubectl, HELM_RELEASE, service, self.namespace)["metadata"][
            "generation"
        ]
        release = wait_for(
            self.kubectl, HELM_RELEASE, service, self.namespace,
            lambda r: outcome(r, generation) != IN_PROGRESS,
            timeout=STEP_TIMEOUT, what=f"done with generation {generation}",
        )  # fmt: skip
        assert outcome(release, generation) == expected, status_summary(release)
        return release

    def image(self, name: str) -> str:
        """The image of the Deployment's first container."""
        deployment = get(self.kubectl, "deployment", name, self.namespace)
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def kustomization_status(self) -> dict[str, Any]:
        """The Kustomization's revisions and conditions."""
        found = get(self.kubectl, KUSTOMIZATION, f"flotilla-{ENVIRONMENT}", self.namespace)
        status = found.get("status", {})
        return {key: status.get(key) for key in ("lastAppliedRevision", "conditions")}

    def record(self, step: str, started: float, **found: Any) -> None:
        """Note what a step found and how long it took from ``started`` (time.monotonic())."""
        self.findings[step] = {"seconds": round(time.monotonic() - started, 2), **found}


@pytest.fixture
def gitops(
    kubeconfig: Path, kubectl: Kubectl, namespace: str, tmp_path: Path, repo_root: Path
) -> Iterator[Gitops]:
    server = GitServer(tmp_path / "git", credentials=CREDENTIALS)
    server.create_repository(GIT_SOURCE)
    started = time.monotonic()
    with server, FluxControllers(kubeconfig, tmp_path / "flux", repo_root) as flux:
        clone = GitopsClone.clone(
            server.url(GIT_SOURCE, with_credentials=True), tmp_path / "clone", repo_root / "charts"
        )
        found = Gitops(kubectl, namespace, clone, server.url(GIT_SOURCE))
        found.record("0_controllers_ready_with_crds", started)
        try:
            yield found
        finally:
            (tmp_path / "flux-findings.json").write_text(json.dumps(found.findings, indent=1))
            print(json.dumps(found.findings, indent=1))
            # Before the controllers stop: the objects' finalizers need them.
            stripped = flux.delete_objects(namespace)
            assert not stripped, f"deleted only by removing their finalizers: {stripped}"


@pytest.mark.timeout(400)
def test_flux_deploys_upgrades_and_rolls_back_from_the_gitops_layout(gitops: Gitops) -> None:
    kubectl, namespace, order = gitops.kubectl, gitops.namespace, "order"

    # 1. The first commit installs order (the Flux objects come right after it).
    gitops.clone.write_service(ENVIRONMENT, order, values(order, "1.0.1-aaaaaaa", DIGEST_1))
    first = gitops.clone.commit_and_push("order 1.0.1")
    pushed = time.monotonic()
    apply(kubectl, namespace, basic_auth_secret(SECRET, *CREDENTIALS))
    apply(
        kubectl, namespace,
        git_repository(gitops.git_url, SECRET), kustomization(ENVIRONMENT, namespace),
    )  # fmt: skip
    gitops.applied(first)
    installed = gitops.deploy(order, SUCCEEDED)
    assert gitops.image(order) == f"{REPOSITORY.format(service=order)}@{DIGEST_1}"
    assert helm_revisions(kubectl, namespace, order) == [1]
    gitops.record(
        "1_install", pushed, commit=first, kustomization=gitops.kustomization_status(),
        order=status_summary(installed),
    )  # fmt: skip

    with KubectlWatch(kubectl, HELM_RELEASE, order, "-n", namespace) as watch:
        try:
            upgrade_then_touch_other_folders(gitops, order)
            roll_back_a_never_ready_image(gitops, order)
            retry_values_the_chart_refuses(gitops, order)
        finally:
            gitops.findings["order_timeline"] = timeline(watch.objects)

    # 4. A wrong password fails the GitRepository (its last artifact stays).
    apply(kubectl, namespace, basic_auth_secret(SECRET, CREDENTIALS[0], "wrong-password"))
    started = time.monotonic()
    request_reconcile(kubectl, GIT_REPOSITORY, GIT_SOURCE, namespace)
    repository = wait_for(
        kubectl, GIT_REPOSITORY, GIT_SOURCE, namespace, lambda g: ready(g) == "False",
        timeout=STEP_TIMEOUT, what="failed",
    )  # fmt: skip
    gitops.record(
        "4_wrong_password", started, conditions=repository["status"].get("conditions"),
        artifact_revision=repository["status"].get("artifact", {}).get("revision"),
    )  # fmt: skip


def upgrade_then_touch_other_folders(gitops: Gitops, order: str) -> None:
    """2. A values-only commit upgrades order to revision 2; a commit adding another service to
    the environment, and one changing another environment, leave it alone."""
    kubectl, namespace = gitops.kubectl, gitops.namespace
    gitops.clone.write_service(ENVIRONMENT, order, values(order, "1.0.2-bbbbbbb", DIGEST_2))
    second, pushed = gitops.push("order 1.0.2")
    gitops.applied(second)
    upgraded = gitops.deploy(order, SUCCEEDED)
    assert gitops.image(order) == f"{REPOSITORY.format(service=order)}@{DIGEST_2}"
    assert helm_revisions(kubectl, namespace, order) == [1, 2]
    gitops.record(
        "2_upgrade", pushed, commit=second, kustomization=gitops.kustomization_status(),
        order=status_summary(upgraded),
    )  # fmt: skip

    # Another service, whose first install never gets ready: helm-controller gives up after
    # the timeout and, with no install retries, leaves the failed release.
    payment = values("payment", "2.0.0-neverready-ccccccc", None)
    gitops.clone.write_service(ENVIRONMENT, "payment", payment)
    third, pushed = gitops.push("payment 2.0.0-neverready")
    gitops.applied(third)
    failed_install = gitops.deploy("payment", FAILED)
    assert helm_revisions(kubectl, namespace, "payment") == [1]
    gitops.record("2b_other_service_install_fails", pushed, payment=status_summary(failed_install))

    gitops.clone.write_service("staging", order, values(order, "9.9.9-ddddddd", None))
    fourth, pushed = gitops.push("order 9.9.9 in staging")
    gitops.applied(fourth)
    chart = wait_for(
        kubectl, HELM_CHART, f"{namespace}-{order}", namespace,
        lambda c: c.get("status", {}).get("observedSourceArtifactRevision") == revision(fourth),
        timeout=STEP_TIMEOUT, what="built from the staging commit",
    )  # fmt: skip
    time.sleep(5)  # whatever the staging commit would start has started
    untouched = get(kubectl, HELM_RELEASE, order, namespace)
    assert helm_revisions(kubectl, namespace, order) == [1, 2]
    assert untouched["metadata"]["generation"] == upgraded["metadata"]["generation"]
    assert untouched["status"]["history"] == upgraded["status"]["history"]
    gitops.record(
        "2c_other_environment", pushed, order_helm_revisions=[1, 2],
        order=status_summary(untouched), order_chart=chart.get("status"),
    )  # fmt: skip


def roll_back_a_never_ready_image(gitops: Gitops, order: str) -> None:
    """3. A never-ready image: the upgrade times out and is rolled back to revision 2."""
    kubectl, namespace = gitops.kubectl, gitops.namespace
    gitops.clone.write_service(ENVIRONMENT, order, values(order, "1.0.3-neverready-eeeeeee", None))
    fifth, pushed = gitops.push("order 1.0.3-neverready")
    gitops.applied(fifth)
    rolled_back = gitops.deploy(order, ROLLED_BACK)
    assert helm_revisions(kubectl, namespace, order) == [1, 2, 3, 4]
    assert gitops.image(order) == f"{REPOSITORY.format(service=order)}@{DIGEST_2}"
    gitops.record(
        "3_neverready_rolled_back", pushed, commit=fifth,
        kustomization=gitops.kustomization_status(), order=status_summary(rolled_back),
    )  # fmt: skip


def retry_values_the_chart_refuses(gitops: Gitops, order: str) -> None:
    """3b. Values the chart's schema refuses: no release is made, helm-controller retries."""
    kubectl, namespace = gitops.kubectl, gitops.namespace
    refused = {**values(order, "1.0.4-fffffff", None), "notAValue": True}
    gitops.clone.write_service(ENVIRONMENT, order, refused)
    sixth, pushed = gitops.push("order 1.0.4 with a value the schema refuses")
    gitops.applied(sixth)
    failing = gitops.deploy(order, RETRYING)
    seconds = round(time.monotonic() - pushed, 2)
    time.sleep(10)
    later = get(kubectl, HELM_RELEASE, order, namespace)
    assert outcome(later, later["metadata"]["generation"]) == RETRYING
    assert helm_revisions(kubectl, namespace, order) == [1, 2, 3, 4]
    assert gitops.image(order) == f"{REPOSITORY.format(service=order)}@{DIGEST_2}"
    gitops.record(
        "3b_values_refused_retrying", pushed, seconds_to_first_failure=seconds, commit=sixth,
        order=status_summary(failing), order_ten_seconds_later=status_summary(later),
    )  # fmt: skip
