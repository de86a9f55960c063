"""What rolls pods and what does not: plain helm installs and upgrades the real charts, and the
real Deployment controller answers with ReplicaSets (docs/architecture.md, "Charts and the
cluster"). kwok plays the pods, so a readiness delay or a never-ready image is only a marker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from kit import layout
from tests.e2e.clustersupport import REPO_ROOT, Helm, Kubectl, KubectlWatch

pytestmark = pytest.mark.e2e

# Every service and those with a database, discovered from their folders (kit.layout).
SERVICES = layout.service_names(REPO_ROOT)
WITH_DATABASE = layout.services_with_database(REPO_ROOT)
TAG = "1.0.0-a1b2c3d"
NEW_TAG = "1.0.1-b2c3d4e"
# The never-ready marker of platform/cluster/stages.yaml: the word "neverready" in the image.
BROKEN_TAG = "1.0.1-neverready-b2c3d4e"
HELM_TIMEOUT = "60s"


def base_values(service: str, tag: str = TAG) -> dict[str, Any]:
    """Values a pipeline would give: an immutable tag in a registry kwok never pulls from, and
    PostgreSQL by reference (the charts refuse SQLite on an emptyDir; kwok starts no pod)."""
    values: dict[str, Any] = {
        "image": {"repository": f"registry.local/{service}-service", "tag": tag}
    }
    if service in WITH_DATABASE:
        values["database"] = {"existingSecret": f"{service}-database"}
    return values


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of two values trees (``override`` wins)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class ReplicaSet:
    """What identifies a ReplicaSet across an upgrade, and its scale."""

    name: str
    uid: str
    revision: str
    replicas: int
    ready: int
    template: dict[str, Any]


@dataclass(frozen=True)
class Release:
    """One service chart released with plain helm into the test's namespace."""

    helm: Helm
    kubectl: Kubectl
    namespace: str
    service: str

    def upgrade(self, values: Mapping[str, Any], *flags: str) -> None:
        """``helm upgrade --install --wait`` of charts/<service> with exactly ``values``."""
        self.helm.run(*self._upgrade_args(flags), stdin=yaml.safe_dump(dict(values)))

    def upgrade_failing(self, values: Mapping[str, Any], *flags: str) -> str:
        """An upgrade that must fail; return helm's error output."""
        args = self._upgrade_args(flags)
        result = self.helm.run(*args, stdin=yaml.safe_dump(dict(values)), check=False)
        assert result.returncode != 0, f"helm {' '.join(args)} succeeded"
        return result.stderr

    def _upgrade_args(self, flags: tuple[str, ...]) -> list[str]:
        chart = REPO_ROOT / "charts" / self.service
        return [
            "upgrade", "--install", self.service, str(chart), "--namespace", self.namespace,
            "--values", "-", "--wait", "--timeout", HELM_TIMEOUT, *flags,
        ]  # fmt: skip

    def replicasets(self) -> dict[str, ReplicaSet]:
        """The release's ReplicaSets by uid."""
        items = self.kubectl.json(
            "get", "replicasets", "--namespace", self.namespace,
            "--selector", f"app.kubernetes.io/instance={self.service}",
        )["items"]  # fmt: skip
        return {
            item["metadata"]["uid"]: ReplicaSet(
                name=item["metadata"]["name"],
                uid=item["metadata"]["uid"],
                revision=item["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                replicas=item["spec"]["replicas"],
                ready=item["status"].get("readyReplicas", 0),
                template=item["spec"]["template"],
            )
            for item in items
        }

    def deployment(self) -> dict[str, Any]:
        """The release's Deployment."""
        found: dict[str, Any] = self.kubectl.json(
            "get", "deployment", self.service, "--namespace", self.namespace
        )
        return found

    def history(self) -> list[dict[str, Any]]:
        """``helm history`` (oldest first)."""
        out = self.helm.run("history", self.service, "-n", self.namespace, "-o", "json").stdout
        entries: list[dict[str, Any]] = json.loads(out)
        return entries

    def manifest(self, revision: int | None = None) -> str:
        """The manifests of the current (or the given) revision."""
        args = ["get", "manifest", self.service, "-n", self.namespace]
        if revision is not None:
            args += ["--revision", str(revision)]
        return self.helm.run(*args).stdout


def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``check`` until it holds (the controllers converge asynchronously)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def container(rs: ReplicaSet) -> dict[str, Any]:
    (found,) = rs.template["spec"]["containers"]
    result: dict[str, Any] = found
    return result


def new_and_old(
    before: dict[str, ReplicaSet], after: dict[str, ReplicaSet]
) -> tuple[list[ReplicaSet], list[ReplicaSet]]:
    """The ReplicaSets created by an upgrade, and the ones that were there before (now)."""
    return (
        [rs for uid, rs in after.items() if uid not in before],
        [rs for uid, rs in after.items() if uid in before],
    )


def converged(release: Release, replicas: int) -> Callable[[], bool]:
    """True once one ReplicaSet runs ``replicas`` ready pods and every other one is at 0."""

    def check() -> bool:
        sets = release.replicasets().values()
        active = [rs for rs in sets if rs.replicas > 0]
        return len(active) == 1 and active[0].replicas == active[0].ready == replicas

    return check


@pytest.fixture
def release(helm: Helm, kubectl: Kubectl, namespace: str) -> Release:
    """The order service, installed with two ready replicas."""
    order = Release(helm, kubectl, namespace, "order")
    order.upgrade(base_values("order"))
    return order


def test_image_tag_change_rolls_only_that_service(
    helm: Helm, kubectl: Kubectl, namespace: str
) -> None:
    releases = {service: Release(helm, kubectl, namespace, service) for service in SERVICES}
    with ThreadPoolExecutor(max_workers=len(releases)) as pool:
        list(pool.map(lambda r: r.upgrade(base_values(r.service)), releases.values()))
    before = {service: r.replicasets() for service, r in releases.items()}

    releases["order"].upgrade(base_values("order", NEW_TAG))
    eventually(converged(releases["order"], 2), "order rolled over to one ReplicaSet")

    new, old = new_and_old(before["order"], releases["order"].replicasets())
    assert len(new) == 1, "exactly one new ReplicaSet for the new tag"
    assert container(new[0])["image"] == f"registry.local/order-service:{NEW_TAG}"
    assert (new[0].replicas, new[0].ready) == (2, 2)
    assert [(rs.uid, rs.replicas) for rs in old] == [
        (rs.uid, 0) for rs in before["order"].values()
    ], "the old ReplicaSet is kept, scaled to 0"
    for service in ("auth", "payment", "gateway"):
        assert releases[service].replicasets() == before[service], f"{service} was touched"


def test_replica_change_scales_without_new_replicaset(release: Release) -> None:
    before = release.replicasets()
    release.upgrade(merge(base_values("order"), {"replicaCount": 3}))
    eventually(converged(release, 3), "order scaled to 3 ready replicas")

    after = release.replicasets()
    assert after.keys() == before.keys(), "no new ReplicaSet"
    (rs,) = after.values()
    (previous,) = before.values()
    assert (rs.revision, rs.replicas, rs.ready) == (previous.revision, 3, 3)


def test_config_change_rolls_through_the_checksum(release: Release) -> None:
    before = release.replicasets()
    release.upgrade(merge(base_values("order"), {"config": {"logLevel": "DEBUG"}}))
    eventually(converged(release, 2), "order rolled over")

    new, old = new_and_old(before, release.replicasets())
    assert len(new) == 1, "a ConfigMap change rolls the pods"
    checksum = "checksum/config"
    (old_rs,) = old
    assert (
        new[0].template["metadata"]["annotations"][checksum]
        != (old_rs.template["metadata"]["annotations"][checksum])
    )
    # Only the checksum changed in the pod template: the pods read the ConfigMap through envFrom.
    new_meta = {
        k: v for k, v in new[0].template["metadata"]["annotations"].items() if k != checksum
    }
    old_meta = {
        k: v for k, v in old_rs.template["metadata"]["annotations"].items() if k != checksum
    }
    assert new_meta == old_meta
    assert container(new[0]) == container(old_rs)
    config = release.kubectl.json("get", "configmap", "order", "-n", release.namespace)
    assert config["data"]["SERVICE_LOG_LEVEL"] == "DEBUG"


def test_service_only_change_rolls_nothing(release: Release) -> None:
    before = release.replicasets()
    generation = release.deployment()["metadata"]["generation"]
    release.upgrade(merge(base_values("order"), {"service": {"port": 8080}}))

    service = release.kubectl.json("get", "service", "order", "-n", release.namespace)
    assert [port["port"] for port in service["spec"]["ports"]] == [8080]
    assert release.replicasets() == before, "a Service change creates no ReplicaSet"
    assert release.deployment()["metadata"]["generation"] == generation, "Deployment untouched"


def test_memory_limit_change_is_a_real_deployment(release: Release) -> None:
    before = release.replicasets()
    limits = {"cpu": "500m", "memory": "384Mi"}
    release.upgrade(merge(base_values("order"), {"resources": {"limits": limits}}))
    eventually(converged(release, 2), "order rolled over")

    new, _ = new_and_old(before, release.replicasets())
    assert len(new) == 1, "a resource change rolls the pods"
    assert container(new[0])["resources"]["limits"]["memory"] == "384Mi"


def available_never_below(watch: KubectlWatch, desired: int) -> list[int]:
    """Every availableReplicas the Deployment reported; asserts none was below ``desired``."""
    seen = [obj.get("status", {}).get("availableReplicas", 0) for obj in watch.objects]
    assert min(seen) >= desired, f"available replicas dropped: {seen}"
    return seen


def available_sums(watch: KubectlWatch, listed: int) -> list[int]:
    """After each ReplicaSet event, the available pods summed over the ReplicaSets.

    The watch starts by listing the ``listed`` ReplicaSets that already exist, one object at a
    time; a sum taken before the whole list has arrived would count a ReplicaSet as missing.
    """
    latest: dict[str, int] = {}
    sums = []
    for seen, obj in enumerate(watch.objects, start=1):
        latest[obj["metadata"]["uid"]] = obj.get("status", {}).get("availableReplicas", 0)
        if seen >= listed:
            sums.append(sum(latest.values()))
    return sums


def test_never_ready_image_is_rolled_back(release: Release) -> None:
    (old_rs,) = release.replicasets().values()
    listed = 1
    manifest = release.manifest()
    kubectl, ns = release.kubectl, release.namespace
    with (
        KubectlWatch(kubectl, "deployment", "order", "-n", ns) as deployments,
        KubectlWatch(kubectl, "replicasets", "-n", ns, "-l", "app.kubernetes.io/instance=order")
        as replicasets,
    ):  # fmt: skip
        start = time.monotonic()
        error = release.upgrade_failing(
            base_values("order", BROKEN_TAG), "--rollback-on-failure", "--timeout", "8s"
        )
        elapsed = time.monotonic() - start
        eventually(converged(release, 2), "the broken ReplicaSet scaled back to 0", timeout=60)

    assert "rolled back" in error
    assert 8 <= elapsed < 8 + 30, f"helm took {elapsed:.1f} s with --timeout 8s"
    history = release.history()
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "superseded"),
        (2, "failed"),
        (3, "deployed"),
    ]
    assert history[-1]["description"] == "Rollback to 1"
    assert release.manifest() == manifest, "the release is back at revision 1's manifests"

    sets = release.replicasets()
    (broken,) = (rs for rs in sets.values() if BROKEN_TAG in container(rs)["image"])
    assert broken.replicas == 0
    serving = sets[old_rs.uid]
    assert (serving.replicas, serving.ready) == (2, 2), "the old ReplicaSet still serves"
    available_never_below(deployments, 2)
    assert min(available_sums(replicasets, listed)) >= 2
    assert any(o["metadata"]["uid"] == broken.uid for o in replicasets.objects)


def test_max_unavailable_zero_holds_during_a_rollout(release: Release) -> None:
    slow = {"replicaCount": 4, "podAnnotations": {"flotilla.dev/ready-after": "1s"}}
    release.upgrade(merge(base_values("order"), slow))
    eventually(converged(release, 4), "order at 4 ready replicas", timeout=60)
    existing = release.replicasets()
    (old_uid,) = (uid for uid, rs in existing.items() if rs.replicas)
    listed = len(existing)
    kubectl, ns = release.kubectl, release.namespace
    with (
        KubectlWatch(kubectl, "deployment", "order", "-n", ns) as deployments,
        KubectlWatch(kubectl, "replicasets", "-n", ns, "-l", "app.kubernetes.io/instance=order")
        as replicasets,
    ):  # fmt: skip
        release.upgrade(merge(base_values("order", NEW_TAG), slow))
        eventually(converged(release, 4), "order rolled over", timeout=60)
        deployments.wait_for(
            lambda objs: (
                objs[-1]["status"].get("updatedReplicas") == 4
                and objs[-1]["status"].get("availableReplicas") == 4
                and objs[-1]["status"].get("replicas") == 4
            ),
            timeout=30,
            what="final Deployment status",
        )

    available_never_below(deployments, 4)
    sums = available_sums(replicasets, listed)
    assert min(sums) >= 4, f"available pods dropped: {sums}"
    # The watch saw the rollout itself, step by step: every change of a ReplicaSet's scale is
    # its own event. With maxSurge 25% of 4 = 1 the new ReplicaSet grows 1, 2, 3, 4 while the old
    # one shrinks, never more than 5 pods in all.
    scales: dict[str, int] = {}
    totals, new_scales = [], []
    for obj in replicasets.objects:
        scales[obj["metadata"]["uid"]] = obj["spec"]["replicas"]
        totals.append(sum(scales.values()))
        if obj["metadata"]["uid"] != old_uid:
            new_scales.append(obj["spec"]["replicas"])
    assert max(totals) == 5, totals
    assert sorted({n for n in new_scales if n}) == [1, 2, 3, 4], new_scales
