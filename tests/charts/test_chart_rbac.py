"""The deployer's RBAC: Roles only in its namespaces, for the kinds the service charts render."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.chartsupport import (
    NAMESPACE,
    SCENARIOS,
    SERVICE_CHARTS,
    TAG,
    Helm,
    Manifest,
    Rendered,
    minimal_values,
)

# The REST resource of each kind a chart may render.
RESOURCES = {
    "Deployment": "deployments",
    "Service": "services",
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "ServiceMonitor": "servicemonitors",
    "PersistentVolumeClaim": "persistentvolumeclaims",
}
MANAGE = {"get", "list", "watch", "create", "update", "patch", "delete"}
READ = {"get", "list", "watch"}
HELM_SECRET_STORAGE = {"get", "list", "create", "update", "delete"}

Grants = dict[tuple[str, str], set[str]]


def grants(role: Manifest) -> Grants:
    """(apiGroup, resource) -> verbs of a Role."""
    result: Grants = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def group_of(manifest: Manifest) -> str:
    api_version: str = manifest["apiVersion"]
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


@pytest.fixture(scope="module")
def service_kinds(matrix: dict[tuple[str, str], Rendered]) -> set[tuple[str, str]]:
    """(apiGroup, resource) of everything any service chart renders in any scenario."""
    kinds = set()
    for chart in SERVICE_CHARTS:
        for scenario in SCENARIOS:
            for manifest in matrix[chart, scenario].manifests:
                kinds.add((group_of(manifest), RESOURCES[manifest["kind"]]))
    return kinds


def render_deployer(helm: Helm, **values: Any) -> Rendered:
    return helm.template("deployer", {"image": {"tag": TAG}, **values})


def test_role_grants_exactly_what_helm_needs_for_the_service_charts(
    helm: Helm, service_kinds: set[tuple[str, str]]
) -> None:
    rendered = render_deployer(helm)
    role = rendered.one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    granted = grants(role)
    managed = {kind for kind, verbs in granted.items() if verbs == MANAGE}
    assert managed == service_kinds
    assert granted[("", "secrets")] == HELM_SECRET_STORAGE
    for progress in [("apps", "replicasets"), ("", "pods"), ("", "events")]:
        assert granted[progress] == READ, progress
    assert set(granted) == service_kinds | {
        ("", "secrets"),
        ("apps", "replicasets"),
        ("", "pods"),
        ("", "events"),
    }
    for (group, resource), verbs in granted.items():
        assert "*" not in group + resource
        assert "*" not in verbs


def test_role_is_bound_to_the_deployer_service_account_only(helm: Helm) -> None:
    rendered = render_deployer(helm)
    binding = rendered.one("RoleBinding")
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": rendered.one("Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    assert rendered.pod_spec["serviceAccountName"] == account
    assert not rendered.kinds & {"ClusterRole", "ClusterRoleBinding"}


def test_a_role_per_target_namespace(helm: Helm) -> None:
    targets = ["flotilla-services", "flotilla-canary"]
    rendered = render_deployer(helm, rbac={"namespaces": targets})
    roles = rendered.of_kind("Role")
    bindings = rendered.of_kind("RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(targets)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(targets)
    for binding in bindings:
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    assert rendered.config_data["DEPLOYER_NAMESPACES"] == ",".join(targets)


def test_default_target_is_the_release_namespace(helm: Helm) -> None:
    assert render_deployer(helm).config_data["DEPLOYER_NAMESPACES"] == NAMESPACE


def test_configmap_storage_needs_no_secret_access(helm: Helm) -> None:
    rendered = render_deployer(helm, rbac={"helmStorage": "configmap"})
    assert ("", "secrets") not in grants(rendered.one("Role"))
    assert rendered.config_data["HELM_DRIVER"] == "configmap"


def test_rbac_can_be_left_to_the_cluster_admin(helm: Helm) -> None:
    rendered = render_deployer(helm, rbac={"create": False})
    assert not rendered.kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_service_charts_render_no_rbac(helm: Helm, chart: str) -> None:
    kinds = helm.template(chart, minimal_values(chart)).kinds
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
