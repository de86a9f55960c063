"""The deployer chart carries the environments to the deployer and grants it each environment's
namespace in this cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.promotion.environments import EnvironmentSpec, load_environments
from tests.charts.chartsupport import NAMESPACE, Helm, merge, minimal_values

ENVIRONMENTS: list[dict[str, Any]] = [
    {"name": "dev", "namespace": "flotilla-dev"},
    {
        "name": "staging",
        "namespace": "flotilla-staging",
        "upstream": "dev",
        "promotion": {"soakSeconds": 60, "analysis": {"minSuccessRate": 0.99}},
    },
    {
        "name": "prod",
        "namespace": "flotilla-prod",
        "upstream": "staging",
        "promotion": {
            "approval": True,
            "freeze": [
                {
                    "name": "weekend",
                    "timezone": "Europe/Berlin",
                    "start": "2026-01-02T18:00",
                    "duration": "PT62H",
                    "rrule": "FREQ=WEEKLY;BYDAY=FR",
                },
                {"name": "hour", "timezone": "UTC", "start": "2026-06-13T09:00", "duration": 3600},
            ],
        },
    },
]
# Another cluster's: no Role for it here.
REMOTE = {"name": "prod-eu", "namespace": "flotilla-eu", "kubeContext": "eu", "upstream": "staging"}
UNUSED = EnvironmentSpec(name="unused", namespace="unused")


def render(helm: Helm, **values: Any) -> Any:
    return helm.template("deployer", merge(minimal_values("deployer"), values))


def rbac_namespaces(rendered: Any) -> dict[str, list[str]]:
    """Kind -> the namespaces of its manifests, for the Roles and RoleBindings."""
    return {
        kind: [m["metadata"]["namespace"] for m in rendered.of_kind(kind)]
        for kind in ("Role", "RoleBinding")
    }


def test_the_environments_reach_the_deployer_as_json_it_accepts(helm: Helm) -> None:
    rendered = render(helm, environments=ENVIRONMENTS)
    text = rendered.config_data["DEPLOYER_ENVIRONMENTS"]
    assert json.loads(text) == ENVIRONMENTS
    environments = load_environments(text, None, default=UNUSED)
    assert environments.names == ["dev", "staging", "prod"]
    prod = environments.get("prod").promotion
    assert prod.approval
    assert [w.name for w in prod.freeze] == ["weekend", "hour"]
    assert prod.freeze[1].length.total_seconds() == 3600
    assert "DEPLOYER_ENVIRONMENTS" not in render(helm).config_data  # its own environment alone


def test_each_environment_namespace_in_this_cluster_gets_a_role_once(helm: Helm) -> None:
    rendered = render(
        helm,
        environments=[*ENVIRONMENTS, REMOTE],
        rbac={"namespaces": ["flotilla-services", "flotilla-dev"]},
    )
    expected = ["flotilla-services", "flotilla-dev", "flotilla-staging", "flotilla-prod"]
    assert rbac_namespaces(rendered) == {"Role": expected, "RoleBinding": expected}
    for binding in rendered.of_kind("RoleBinding"):
        assert binding["subjects"][0]["namespace"] == NAMESPACE
        assert binding["roleRef"]["name"] == rendered.of_kind("Role")[0]["metadata"]["name"]
    # The first namespace is still the one a deployer without environments deploys to.
    assert rendered.config_data["DEPLOYER_NAMESPACES"] == ",".join(expected)


def test_without_rbac_namespaces_the_release_namespace_comes_first(helm: Helm) -> None:
    rendered = render(helm, environments=ENVIRONMENTS)
    expected = [NAMESPACE, "flotilla-dev", "flotilla-staging", "flotilla-prod"]
    assert rbac_namespaces(rendered) == {"Role": expected, "RoleBinding": expected}
    rendered = render(helm, environments=ENVIRONMENTS, rbac={"create": False})
    assert rbac_namespaces(rendered) == {"Role": [], "RoleBinding": []}


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"name": "dev", "namespace": "flotilla-dev", "soakSeconds": 5},
            "at '/environments/0': additional properties 'soakSeconds' not allowed",
        ),
        (
            {"name": "dev", "namespace": "flotilla-dev", "promotion": {"aproval": True}},
            "at '/environments/0/promotion': additional properties 'aproval' not allowed",
        ),
        (
            {"name": "Dev", "namespace": "flotilla-dev"},
            "at '/environments/0/name': 'Dev' does not match pattern",
        ),
        ({"name": "dev"}, "at '/environments/0': missing property 'namespace'"),
        (
            {"name": "dev", "namespace": "d", "promotion": {"soakSeconds": -1}},
            "at '/environments/0/promotion/soakSeconds': minimum: got -1, want 0",
        ),
        (
            {
                "name": "dev",
                "namespace": "d",
                "promotion": {"freeze": [{"name": "x", "timezone": "UTC", "stat": "x"}]},
            },
            "additional properties 'stat' not allowed",
        ),
    ],
)
def test_a_malformed_environment_is_refused_by_helm_naming_the_field(
    helm: Helm, environment: dict[str, Any], message: str
) -> None:
    error = helm.template_error(
        "deployer", merge(minimal_values("deployer"), {"environments": [environment]})
    )
    assert message in error, error


def test_the_example_in_values_yaml_renders_and_the_deployer_accepts_it(
    helm: Helm, charts_dir: Path
) -> None:
    lines = (charts_dir / "deployer" / "values.yaml").read_text().splitlines()
    start = lines.index("environments: []") + 1
    example = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        example.append(line.removeprefix("#"))
    environments = yaml.safe_load("\n".join(example))
    assert len(environments) == 3
    rendered = render(helm, environments=environments)
    loaded = load_environments(rendered.config_data["DEPLOYER_ENVIRONMENTS"], None, default=UNUSED)
    assert loaded.names == ["dev", "staging", "prod"]


GITOPS = {
    "name": "prod",
    "namespace": "flotilla-prod",
    "upstream": "staging",
    "mode": "gitops",
    "gitops": {"repository": "https://git.example.com/p.git", "secretRef": "flotilla-git"},
}


def test_a_gitops_environment_namespace_lets_the_deployer_drive_flux_there_alone(
    helm: Helm,
) -> None:
    rendered = render(helm, environments=[*ENVIRONMENTS[:2], GITOPS])
    flux_groups = {
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
    }
    granted = {
        role["metadata"]["namespace"]: {g for rule in role["rules"] for g in rule["apiGroups"]}
        for role in rendered.of_kind("Role")
    }
    assert flux_groups <= granted["flotilla-prod"]
    assert not flux_groups & granted["flotilla-staging"]
    (prod,) = [r for r in rendered.of_kind("Role") if r["metadata"]["namespace"] == "flotilla-prod"]
    helm_releases = next(r for r in prod["rules"] if r["apiGroups"] == ["helm.toolkit.fluxcd.io"])
    assert helm_releases["verbs"] == ["get", "list", "watch"]  # Flux applies them, not the deployer
    text = rendered.config_data["DEPLOYER_ENVIRONMENTS"]
    assert load_environments(text, None, default=UNUSED).get("prod").mode == "gitops"


def test_the_git_credentials_come_from_their_secret(helm: Helm) -> None:
    rendered = render(helm, git={"existingSecret": "deployer-git", "passwordKey": "token"})
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in rendered.pod_spec["containers"][0]["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert env["DEPLOYER_GIT_USERNAME"] == {"name": "deployer-git", "key": "username"}
    assert env["DEPLOYER_GIT_PASSWORD"] == {"name": "deployer-git", "key": "token"}
    assert "DEPLOYER_GIT_PASSWORD" not in str(render(helm).manifests)
