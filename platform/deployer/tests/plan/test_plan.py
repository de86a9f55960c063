"""plan_release on manifests the real helm renders from the real charts, and on hand-made ones
for what the charts never do (no checksum link, missing probes and limits, mutable tags)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from deployer.adapters.helm import Helm
from deployer.plan import WorkloadPlan, parse_quantity, plan_objects, plan_release
from kit import layout
from tests.deployer.sample_manifests import config, manifest

TAG = "1.0.0-a1b2c3d"
NEW_TAG = "1.1.0-b2c3d4e"
Render = Callable[..., Awaitable[str]]


# The services with a database: a real release names its Secret (as in
# charts/<service>/values-local.yaml), since the charts refuse two replicas on SQLite.
DATABASE_SERVICES = layout.services_with_database()


def values(service: str = "order", tag: str = TAG, /, **more: Any) -> dict[str, Any]:
    """What a pipeline deploys: an immutable tag, the database a release uses, plus ``more``."""
    release: dict[str, Any] = {
        "image": {"repository": f"registry.local/{service}-service", "tag": tag}
    }
    if service in DATABASE_SERVICES:
        release["database"] = {"existingSecret": f"{service}-database"}
    return {**release, **more}


@pytest.fixture(scope="session")
def render(helm_binary: Path, helm_env: dict[str, str], repo_root: Path) -> Render:
    """Renders charts/<service> with helm template, as the deployer does before planning."""
    helm = Helm(helm_binary, None, "flotilla", env=helm_env)

    async def rendered(chart_values: dict[str, Any], service: str = "order") -> str:
        return await helm.template(service, repo_root / "charts" / service, chart_values)

    return rendered


def only_workload(plan_workloads: list[WorkloadPlan]) -> WorkloadPlan:
    (workload,) = plan_workloads
    assert (workload.kind, workload.name) == ("Deployment", "order")
    return workload


@pytest.mark.parametrize("service", [*layout.service_names(), "deployer"])
async def test_image_tag_change_rolls_out_only_the_workload(render: Render, service: str) -> None:
    before = await render(values(service), service)
    after = await render(values(service, NEW_TAG), service)

    plan = plan_release(service, before, after)

    assert plan.action == "upgrade"
    (workload,) = plan.workloads
    assert workload.change == "rollout"
    assert workload.fields == ["image", "labels"]  # labels: app.kubernetes.io/version
    image = next(c for c in workload.template_changes if c.path.endswith(".image"))
    assert image.before == f"registry.local/{service}-service:{TAG}"
    assert image.after == f"registry.local/{service}-service:{NEW_TAG}"
    assert plan.resources == [], "a new tag changes the workload and nothing else"
    assert plan.warnings == []
    assert plan.summary() == f"{service}: rollout (image {TAG} -> {NEW_TAG}, labels)"


async def test_replicas_change_is_scale_only(render: Render) -> None:
    plan = plan_release("order", await render(values()), await render(values(replicaCount=3)))

    workload = only_workload(plan.workloads)
    assert workload.change == "scale-only"
    assert [(c.path, c.before, c.after) for c in workload.spec_changes] == [
        ("spec.replicas", "2", "3")
    ]
    assert workload.template_changes == []
    assert plan.summary() == "order: scale-only (replicas 2 -> 3)"


async def test_config_change_rolls_out_through_the_checksum(render: Render) -> None:
    changed = values(config={"logLevel": "DEBUG"})
    plan = plan_release("order", await render(values()), await render(changed))

    workload = only_workload(plan.workloads)
    assert workload.change == "rollout"
    assert workload.fields == ["annotations"]
    assert [c.path for c in workload.template_changes] == ["annotations[checksum/config]"]
    assert workload.config_changes == ["ConfigMap/order"]
    assert [(r.kind, r.name, r.change, r.fields) for r in plan.resources] == [
        ("ConfigMap", "order", "changed", ["data.SERVICE_LOG_LEVEL"])
    ]
    assert plan.warnings == [], "a checksum-linked ConfigMap change is safe"
    assert plan.summary() == "order: rollout (annotations[checksum/config])"


@pytest.mark.parametrize(
    ("change", "kind", "fields"),
    [
        ({"service": {"port": 8080}}, "Service", ["spec.ports[http].port"]),
        (
            {"networkPolicy": {"natsPort": 4223}},
            "NetworkPolicy",
            ["spec.egress"],
        ),
    ],
)
async def test_service_and_network_policy_changes_roll_nothing(
    render: Render, change: dict[str, Any], kind: str, fields: list[str]
) -> None:
    plan = plan_release("order", await render(values()), await render(values(**change)))

    assert only_workload(plan.workloads).change == "service-only"
    assert [(r.kind, r.name, r.change, r.fields) for r in plan.resources] == [
        (kind, "order", "changed", fields)
    ]
    assert plan.summary() == f"order: service-only ({kind}/order changed)"


async def test_memory_limit_lowered_rolls_out_with_a_warning(render: Render) -> None:
    lowered = values(
        resources={
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "0.5", "memory": "128Mi"},  # cpu 0.5 = the default 500m
        }
    )
    plan = plan_release("order", await render(values()), await render(lowered))

    workload = only_workload(plan.workloads)
    assert workload.change == "rollout"
    assert workload.fields == ["resources"]
    assert [(c.path, c.before, c.after) for c in workload.template_changes] == [
        ("containers[order].resources.limits.memory", "256Mi", "128Mi"),
        ("containers[order].resources.requests.memory", "128Mi", "64Mi"),
    ]
    assert plan.warnings == [
        "Deployment/order container order: memory limit lowered 256Mi -> 128Mi "
        "(pods may be OOM-killed)",
        "Deployment/order container order: memory request lowered 128Mi -> 64Mi",
    ]
    assert plan.summary() == "order: rollout (resources); 2 warnings"


async def test_same_values_are_a_no_op_even_across_chart_versions(render: Render) -> None:
    current = await render(values())
    newer_chart = current.replace("helm.sh/chart: order-0.1.0", "helm.sh/chart: order-0.2.0")
    assert newer_chart != current

    plan = plan_release("order", current, newer_chart)

    assert plan.action == "no-op"
    assert only_workload(plan.workloads).change == "no-op"
    assert (plan.resources, plan.warnings) == ([], [])
    assert plan.summary() == "order: no-op"


async def test_first_install(render: Render) -> None:
    plan = plan_release("order", None, await render(values()))

    assert plan.action == "install"
    workload = only_workload(plan.workloads)
    assert workload.change == "install"
    assert workload.images == {"order": f"registry.local/order-service:{TAG}"}
    assert sorted((r.kind, r.change) for r in plan.resources) == [
        ("ConfigMap", "added"),
        ("NetworkPolicy", "added"),
        ("PodDisruptionBudget", "added"),
        ("Service", "added"),
        ("ServiceAccount", "added"),
    ]
    assert plan.warnings == [], "the charts set limits, probes and an immutable tag"
    assert plan.summary() == f"order: install (image {TAG})"


def deployment(
    image: str = f"app:{TAG}",
    *,
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    probes: bool = True,
    limits: bool = True,
    kind: str = "Deployment",
) -> dict[str, Any]:
    """A hand-made workload whose pods read ConfigMap app-config through envFrom."""
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "envFrom": [{"configMapRef": {"name": "app-config"}}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
    }
    if limits:
        container["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    if probes:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            container[probe] = {"httpGet": {"path": "/healthz", "port": 8000}}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "app"}},
        "template": {
            "metadata": {"labels": {"app": "app"}, "annotations": annotations or {}},
            "spec": {"containers": [container]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "app"}, "spec": spec}


def test_config_change_without_checksum_is_config_only_with_a_warning() -> None:
    plan = plan_release(
        "app",
        manifest(config("INFO"), deployment()),
        manifest(config("DEBUG"), deployment()),
    )

    (workload,) = plan.workloads
    assert workload.change == "config-only"
    assert workload.config_changes == ["ConfigMap/app-config"]
    assert plan.warnings == [
        "ConfigMap/app-config changed but the pod template of Deployment/app did not: running "
        "pods keep the old configuration until they restart; tie it to the template with a "
        "checksum annotation (e.g. checksum/config)"
    ]
    assert plan.summary() == (
        "app: config-only (ConfigMap/app-config changed; pods do not roll); 1 warning"
    )


def test_missing_probes_limits_and_immutable_tag_are_warned() -> None:
    bare = deployment("registry.local/app:latest", probes=False, limits=False)
    untagged = deployment("registry.local:5000/app", kind="DaemonSet")
    untagged["metadata"]["name"] = "agent"

    plan = plan_release("app", None, manifest(bare, untagged))

    assert [w.change for w in plan.workloads] == ["install", "install"]
    assert plan.warnings == [
        "DaemonSet/agent container app image 'registry.local:5000/app' has no tag: pin an "
        "immutable tag (<version>-<sha>) or a digest",
        "Deployment/app container app has no cpu or memory limit",
        "Deployment/app container app image 'registry.local/app:latest' has the mutable tag "
        "'latest': pin an immutable tag (<version>-<sha>) or a digest",
        "Deployment/app container app has no startup, liveness, readiness probe",
    ]
    assert plan.summary() == (
        "app: DaemonSet/agent install (image registry.local:5000/app), "
        "Deployment/app install (image latest); 4 warnings"
    )


def test_digest_pinned_image_is_immutable() -> None:
    digest = "sha256:" + "ab" * 32
    plan = plan_release("app", None, manifest(deployment(f"registry.local/app@{digest}")))
    assert plan.warnings == []


def test_replicas_reduced_to_zero_is_warned() -> None:
    plan = plan_release("app", manifest(deployment()), manifest(deployment(replicas=0)))

    (workload,) = plan.workloads
    assert workload.change == "scale-only"
    assert plan.warnings == [
        "Deployment/app replicas reduced from 2 to 0: the service will have no pods"
    ]


def test_statefulset_template_change_and_removed_workload() -> None:
    stateful = deployment(kind="StatefulSet")
    annotated = deployment(kind="StatefulSet", annotations={"checksum/config": "2"})
    gone = deployment()
    gone["metadata"]["name"] = "old"

    plan = plan_release("app", manifest(stateful, gone), manifest(annotated))

    assert [(w.kind, w.name, w.change, w.fields) for w in plan.workloads] == [
        ("Deployment", "old", "delete", []),
        ("StatefulSet", "app", "rollout", ["annotations"]),
    ]
    assert plan.action == "upgrade"


def test_equal_quantities_empty_fields_and_hooks_are_not_changes() -> None:
    current = deployment()
    same = deployment()
    resources = same["spec"]["template"]["spec"]["containers"][0]["resources"]
    resources["limits"] = {"cpu": "1000m", "memory": "1024Mi"}
    same["spec"]["template"]["spec"]["volumes"] = []
    same["metadata"]["labels"] = None
    hook = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "smoke-test", "annotations": {"helm.sh/hook": "test"}},
    }

    plan = plan_release("app", manifest(current), manifest(same, hook))

    assert plan.action == "no-op"
    assert plan.workloads[0].change == "no-op"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("500m", 0.5),
        ("1", 1),
        ("1.5G", 1_500_000_000),
        ("1e3", 1000),
        ("12k", 12_000),
        ("lots", None),
    ],
)
def test_parse_quantity(text: str, expected: float | None) -> None:
    parsed = parse_quantity(text)
    assert (None if parsed is None else float(parsed)) == expected


def test_list_order_counts_in_a_pod_template() -> None:
    def deployment(env: list[str]) -> dict[str, Any]:
        container = {"name": "order", "env": [{"name": n, "value": "1"} for n in env]}
        return {"kind": "Deployment", "metadata": {"name": "order"},
                "spec": {"template": {"spec": {"containers": [container]}}}}  # fmt: skip

    key = ("Deployment", "order")
    plan = plan_objects(
        "order", {key: deployment(["A", "B"])}, {key: deployment(["B", "A"])}, installed=True
    )
    [workload] = plan.workloads
    assert workload.change == "rollout"
    assert workload.fields == ["env"]
    [change] = workload.template_changes
    assert (change.path, change.before, change.after) == (
        "containers[order].env(order)",
        "A, B",
        "B, A",
    )
