"""The rendered charts against a real kube-apiserver: strict server-side validation, and proof that
the deployer's Role is enough for Helm to install, upgrade, roll back and uninstall a service."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartsupport import (
    CHARTS,
    SCENARIOS,
    Helm,
    HelmError,
    built_tool,
    merge,
    scenario_values,
)

pytestmark = pytest.mark.e2e

CRD_FILE = Path(__file__).parent / "crds" / "servicemonitors.yaml"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
# Pods are refused (enforce), and Deployments warned about (warn), unless they meet "restricted".
RESTRICTED = [
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/warn=restricted",
]


@dataclass(frozen=True)
class Kubectl:
    """The pinned kubectl against the test cluster."""

    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str = "", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; with ``check`` a failure raises with kubectl's stderr."""
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def dry_run(self, manifests: str) -> subprocess.CompletedProcess[str]:
        """Server-side dry run with strict field validation (unknown or duplicate fields fail)."""
        return self.run(
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
            stdin=manifests,
            check=False,
        )


@dataclass(frozen=True)
class Namespaces:
    """Namespaces of one test session on the cluster."""

    main: str
    services: str
    canary: str

    def all(self) -> list[str]:
        return [self.main, self.services, self.canary]


@pytest.fixture(scope="module")
def kubectl(repo_root: Path, kubeconfig: Path) -> Kubectl:
    """platform/cluster's kubectl, pointed at the session's cluster."""
    return Kubectl(built_tool(repo_root, "kubectl"), kubeconfig)


@pytest.fixture(scope="module")
def namespaces(kubectl: Kubectl) -> Iterator[Namespaces]:
    """Fresh namespaces (random suffix) enforcing the restricted Pod Security Standard, so the
    API server's PodSecurity admission judges every pod template; deleted afterwards."""
    suffix = secrets.token_hex(3)
    created = Namespaces(
        main=f"charts-{suffix}",
        services=f"charts-{suffix}-services",
        canary=f"charts-{suffix}-canary",
    )
    for name in created.all():
        kubectl.run("create", "namespace", name)
        kubectl.run("label", "namespace", name, *RESTRICTED)
    yield created
    kubectl.run("delete", "namespace", *created.all(), "--wait=false", check=False)


@pytest.fixture(scope="module")
def service_monitor_crd(kubectl: Kubectl) -> Iterator[None]:
    """The ServiceMonitor CRD: the cluster's own if installed, else the minimal test CRD."""
    existing = kubectl.run("get", "crd", SERVICE_MONITOR_CRD, check=False).returncode == 0
    if not existing:
        kubectl.run("apply", "--server-side", "-f", str(CRD_FILE))
        kubectl.run(
            "wait", "--for=condition=Established", "--timeout=60s", f"crd/{SERVICE_MONITOR_CRD}"
        )
        # Discovery of a new CRD lags its Established condition a little.
        deadline = time.monotonic() + 30
        while kubectl.run("get", "servicemonitors", "-A", check=False).returncode != 0:
            assert time.monotonic() < deadline, "ServiceMonitor never became servable"
            time.sleep(0.5)
    yield
    if not existing:
        kubectl.run("delete", "-f", str(CRD_FILE), "--wait=false", check=False)


def cluster_values(chart: str, scenario: str, namespaces: Namespaces) -> dict[str, Any]:
    values = scenario_values(chart, scenario)
    if chart == "deployer" and scenario == "production":
        values = merge(values, {"rbac": {"namespaces": [namespaces.services, namespaces.canary]}})
    return values


CELLS = [(chart, scenario) for chart in CHARTS for scenario in SCENARIOS]


@pytest.fixture(scope="module")
def dry_runs(
    helm: Helm, kubectl: Kubectl, namespaces: Namespaces, service_monitor_crd: None
) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    """Every cell of the render matrix, dry-run on the server, in parallel."""

    def dry_run(cell: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        chart, scenario = cell
        text = helm.template_text(
            chart, cluster_values(chart, scenario, namespaces), namespace=namespaces.main
        )
        return kubectl.dry_run(text)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CELLS, pool.map(dry_run, CELLS), strict=True))


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_rendered_manifests_pass_strict_server_side_validation(
    dry_runs: dict[tuple[str, str], subprocess.CompletedProcess[str]], chart: str, scenario: str
) -> None:
    result = dry_runs[chart, scenario]
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_validation_is_strict(
    helm: Helm, kubectl: Kubectl, namespaces: Namespaces, service_monitor_crd: None
) -> None:
    """Control: the same dry run refuses an unknown field, in a core kind and in the CRD."""
    rendered = helm.template(
        "order", scenario_values("order", "servicemonitor"), namespace=namespaces.main
    )
    deployment = rendered.deployment
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    result = kubectl.dry_run(yaml.safe_dump(deployment))
    assert result.returncode != 0
    assert "livenesProbe" in result.stderr
    monitor = rendered.one("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    result = kubectl.dry_run(yaml.safe_dump(monitor))
    assert result.returncode != 0
    assert "intervall" in result.stderr


def test_pod_security_admission_is_judging(
    helm: Helm, kubectl: Kubectl, namespaces: Namespaces
) -> None:
    """Control: a pod template that breaks "restricted" draws the PodSecurity warning that the
    validation test above asserts is absent."""
    deployment = helm.template(
        "order", scenario_values("order", "defaults"), namespace=namespaces.main
    ).deployment
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    result = kubectl.dry_run(yaml.safe_dump(deployment))
    assert result.returncode == 0, result.stderr
    assert 'would violate PodSecurity "restricted' in result.stderr


# --- The deployer's Role, proven with Helm itself running as the deployer's ServiceAccount.


@dataclass(frozen=True)
class AsDeployer:
    """helm and kubectl impersonating the deployer's ServiceAccount (in ``ops``), whose Role
    targets ``services``."""

    helm: Helm
    kubectl: Kubectl
    ops: str
    services: str
    storage: str
    account: str = "deployer"

    def identity(self, user_flag: str, group_flag: str) -> list[str]:
        user = f"system:serviceaccount:{self.ops}:{self.account}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{self.ops}"]
        return [user_flag, user, *(arg for g in groups for arg in (group_flag, g))]

    def run_helm(self, *args: str, values: Mapping[str, Any] | None = None) -> str:
        return self.helm.run(
            *args,
            "--kubeconfig",
            str(self.kubectl.kubeconfig),
            *self.identity("--kube-as-user", "--kube-as-group"),
            *(["--values", "-"] if values is not None else []),
            stdin=yaml.safe_dump(dict(values)) if values is not None else "",
        )

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        scope = ["--namespace", namespace] if namespace else []
        result = self.kubectl.run(
            "auth",
            "can-i",
            verb,
            resource,
            *scope,
            *self.identity("--as", "--as-group"),
            check=False,
        )
        return result.stdout.strip() == "yes"


@pytest.fixture(scope="module", params=["secret", "configmap"])
def deployer(
    request: pytest.FixtureRequest,
    helm: Helm,
    kubectl: Kubectl,
    namespaces: Namespaces,
    service_monitor_crd: None,
) -> Iterator[AsDeployer]:
    """The deployer chart installed (as the admin) in its own namespace, its Role in a services
    namespace, with Helm's release storage in Secrets or in ConfigMaps (rbac.helmStorage)."""
    storage: str = request.param
    ops, services = f"{namespaces.main}-{storage}-ops", f"{namespaces.main}-{storage}-svc"
    for name in (ops, services):
        kubectl.run("create", "namespace", name)
        kubectl.run("label", "namespace", name, *RESTRICTED)
    values = merge(
        scenario_values("deployer", "defaults"),
        {"rbac": {"namespaces": [services], "helmStorage": storage}},
    )
    helm.run(
        "install",
        "deployer",
        str(helm.charts_dir / "deployer"),
        "--namespace",
        ops,
        "--kubeconfig",
        str(kubectl.kubeconfig),
        "--values",
        "-",
        stdin=yaml.safe_dump(values),
    )
    # The deployer's helm reads HELM_DRIVER from its ConfigMap; this helm gets the same.
    as_deployer = Helm(helm.binary, helm.charts_dir, helm.home, {"HELM_DRIVER": storage})
    yield AsDeployer(as_deployer, kubectl, ops, services, storage)
    kubectl.run("delete", "namespace", ops, services, "--wait=false", check=False)


def test_deployer_role_lets_helm_manage_a_service_release(deployer: AsDeployer) -> None:
    """install, upgrade (rolls pods), rollback and uninstall, each with --wait, as the deployer."""
    chart = str(deployer.helm.charts_dir / "order")
    target = ["--namespace", deployer.services, "--wait", "--timeout", "120s"]
    # Every kind the service charts render: HPA, ServiceMonitor, NetworkPolicy, PDB and the rest.
    values = merge(
        scenario_values("order", "defaults"),
        {"autoscaling": {"enabled": True}, "serviceMonitor": {"enabled": True}},
    )
    deployer.run_helm("upgrade", "--install", "order", chart, *target, values=values)
    newer = merge(values, {"image": {"tag": "1.4.3-b9e4e32"}})
    deployer.run_helm("upgrade", "--install", "order", chart, *target, values=newer)
    replica_sets = deployer.kubectl.run(
        "get", "replicasets", "--namespace", deployer.services, "-o", "json",
        *deployer.identity("--as", "--as-group"),
    )  # fmt: skip
    assert len(json.loads(replica_sets.stdout)["items"]) == 2, "the tag change rolled pods"
    deployer.run_helm("rollback", "order", "1", *target)
    history = deployer.run_helm(
        "history", "order", "--namespace", deployer.services, "--output", "json"
    )
    assert [r["revision"] for r in json.loads(history)] == [1, 2, 3]
    records = deployer.kubectl.run(
        "get", deployer.storage, "--namespace", deployer.services, "-l", "owner=helm,name=order",
        "-o", "name",
    )  # fmt: skip
    assert len(records.stdout.split()) == 3, f"Helm's records are {deployer.storage}s"
    deployer.run_helm("uninstall", "order", *target)


def test_deployer_is_refused_outside_its_namespaces_and_kinds(
    deployer: AsDeployer, namespaces: Namespaces
) -> None:
    services, ops = deployer.services, deployer.ops
    assert deployer.can("patch", "deployments.apps", services)
    assert deployer.can("create", "servicemonitors.monitoring.coreos.com", services)
    assert deployer.can("watch", "pods", services)
    # Helm's release records: Secrets only with the secret storage.
    assert deployer.can("list", "secrets", services) == (deployer.storage == "secret")
    refused = [
        ("create", "deployments.apps", namespaces.main),
        ("list", "secrets", ops),
        ("get", "configmaps", ops),
        ("create", "pods", services),
        ("create", "pods/exec", services),
        ("create", "roles.rbac.authorization.k8s.io", services),
        ("create", "rolebindings.rbac.authorization.k8s.io", services),
        ("create", "jobs.batch", services),
        ("create", "clusterroles.rbac.authorization.k8s.io", None),
        ("list", "nodes", None),
        ("create", "namespaces", None),
        ("list", "secrets", None),
    ]
    allowed = [
        (verb, resource, ns) for verb, resource, ns in refused if deployer.can(verb, resource, ns)
    ]
    assert not allowed, f"the deployer may do more than it needs: {allowed}"
    with pytest.raises(HelmError, match="forbidden"):
        deployer.run_helm(
            "install",
            "order",
            str(deployer.helm.charts_dir / "order"),
            "--namespace",
            namespaces.main,
            values=scenario_values("order", "defaults"),
        )


@pytest.mark.parametrize("chart", ["nats", "postgres"])
@pytest.mark.parametrize("storage_class", ["", "flotilla-local"])
def test_dependency_charts_pass_strict_validation_and_restricted_pod_security(
    helm: Helm, kubectl: Kubectl, namespaces: Namespaces, chart: str, storage_class: str
) -> None:
    """The nats and postgres StatefulSets (and their claims) in a namespace enforcing
    "restricted": accepted with strict field validation and no PodSecurity warning."""
    claim = {"persistence": {"storageClassName": storage_class}}
    values: dict[str, Any] = {"image": {"tag": "2.15.1-a8f3d21"}}
    values.update({"jetstream": claim} if chart == "nats" else claim)
    text = helm.template_text(chart, values, release=chart, namespace=namespaces.main)
    result = kubectl.dry_run(text)
    assert result.returncode == 0, result.stderr
    assert "statefulset.apps/" in result.stdout
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("chart", [*CHARTS, "nats", "postgres"])
def test_local_cluster_values_pass_strict_validation(
    helm: Helm, kubectl: Kubectl, namespaces: Namespaces, chart: str
) -> None:
    """charts/<chart>/values-local.yaml, as the demo installs it, under restricted pod security."""
    local = yaml.safe_load((helm.charts_dir / chart / "values-local.yaml").read_text())
    values = merge(local, {"image": {"tag": "1.4.2-a8f3d21"}})
    if chart == "deployer":
        values = merge(values, {"rbac": {"namespaces": [namespaces.services]}})
    text = helm.template_text(chart, values, release=chart, namespace=namespaces.main)
    result = kubectl.dry_run(text)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
