"""charts/<chart>/values-local.yaml, the local cluster's values: production settings whose every
secret reference is a Secret that platform/secrets/cluster_secrets.py creates, with its key."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.charts.chartsupport import (
    CHARTS,
    CHARTS_WITH_DATABASE,
    DEPENDENCY_CHARTS,
    TAG,
    Helm,
    Rendered,
    containers,
    merge,
)

REPO = Path(__file__).parents[2]
LOCAL_CHARTS = (*CHARTS, *DEPENDENCY_CHARTS)


def secrets_script() -> ModuleType:
    """platform/secrets/cluster_secrets.py, loaded from its path (it is a script)."""
    path = REPO / "platform" / "secrets" / "cluster_secrets.py"
    spec = importlib.util.spec_from_file_location("cluster_secrets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def created_by_the_script() -> dict[tuple[str, str], set[str]]:
    """(namespace, Secret) -> keys, with the script's default namespaces."""
    script = secrets_script()
    created: dict[tuple[str, str], set[str]] = {
        ("nats", "nats-users"): set(script.NATS_USERS),
        ("postgres", "postgres-roles"): set(script.DATABASES),
        ("flotilla", "flotilla-identity"): {"shared-secret"},
        ("flotilla", "auth-signing-keys"): {"signing-key.pem"},
        ("flotilla", "deployer-api"): {"token"},
    }
    for user in script.NATS_USERS:
        created["flotilla", f"{user}-nats"] = {"password"}
    for db in script.DATABASES:
        created["flotilla", script.database_secret(db)] = {"url"}
    return created


def local_values(charts_dir: Path, chart: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((charts_dir / chart / "values-local.yaml").read_text())
    return merge(data, {"image": {"tag": TAG}})


def render_local(helm: Helm, chart: str) -> Rendered:
    namespace = chart if chart in DEPENDENCY_CHARTS else "flotilla"
    values = local_values(helm.charts_dir, chart)
    return helm.template(chart, values, release=chart, namespace=namespace)


def secret_references(rendered: Rendered) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef and secret volume item of the workload."""
    workload = next(m for m in rendered.manifests if m["kind"] in ("Deployment", "StatefulSet"))
    pod = workload["spec"]["template"]["spec"]
    refs: set[tuple[str, str]] = set()
    for container in containers(pod):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
    for volume in pod.get("volumes", []):
        secret = volume.get("secret")
        if secret:
            items = secret.get("items") or [{"key": "*"}]
            refs.update((secret["secretName"], item["key"]) for item in items)
    return refs


@pytest.mark.parametrize("chart", LOCAL_CHARTS)
def test_local_values_reference_only_what_the_script_creates(helm: Helm, chart: str) -> None:
    rendered = render_local(helm, chart)
    namespace = rendered.manifests[0]["metadata"]["namespace"]
    created = created_by_the_script()
    for name, key in secret_references(rendered):
        assert (namespace, name) in created, f"{chart}: {namespace}/{name} is never created"
        if key != "*":
            assert key in created[namespace, name], f"{chart}: {name} has no key {key}"


@pytest.mark.parametrize("chart", CHARTS)
def test_local_values_are_production_with_every_secret(helm: Helm, chart: str) -> None:
    rendered = render_local(helm, chart)
    assert rendered.config_data["SERVICE_ENVIRONMENT"] == "production"
    names = {name for name, _ in secret_references(rendered)}
    expected = {f"{chart}-nats", "flotilla-identity"}
    if chart in CHARTS_WITH_DATABASE:
        expected.add(f"{chart}-database")
        assert "DATABASE_URL" not in rendered.config_data, "PostgreSQL, not SQLite"
        assert rendered.deployment["spec"]["replicas"] == 2
    if chart == "auth":
        expected.add("auth-signing-keys")
    if chart == "deployer":
        expected.add("deployer-api")
    assert names == expected


@pytest.mark.parametrize("chart", LOCAL_CHARTS)
def test_local_values_lint_strict(helm: Helm, chart: str) -> None:
    output = helm.run(
        "lint",
        "--strict",
        str(helm.charts_dir / chart),
        "--values",
        "-",
        stdin=yaml.safe_dump(local_values(helm.charts_dir, chart)),
    )
    assert "0 chart(s) failed" in output
