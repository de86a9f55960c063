"""Policies over every rendered workload of the render matrix (every chart x every scenario)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.charts.chartsupport import (
    CHARTS,
    CHARTS_WITH_DATABASE,
    SCENARIOS,
    SERVICE_CHARTS,
    TAG,
    Manifest,
    Rendered,
    containers,
    scenario_values,
    walk_strings,
)

CELLS = [(chart, scenario) for chart in CHARTS for scenario in SCENARIOS]
Matrix = dict[tuple[str, str], Rendered]

# Pod Security Standards, restricted profile: the volume types it allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECRETISH_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDS|CREDENTIAL|DATABASE_URL")
# Non-secret ConfigMap keys that look secret-ish by name: file paths and key ids, not values.
NOT_SECRET_KEYS = {
    "NATS_CREDS_FILE",
    "AUTH_SIGNING_KEY_FILE",
    "AUTH_SIGNING_KEY_ID",
    "AUTH_PREVIOUS_PUBLIC_KEY_FILE",
    "AUTH_PREVIOUS_KEY_ID",
}


def pods_and_containers(rendered: Rendered) -> list[tuple[Manifest, Manifest]]:
    """(pod spec, container) for every container of every workload."""
    workloads = [
        m for m in rendered.manifests if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    ]
    assert workloads, f"{rendered.chart}: no workload rendered"
    pairs: list[tuple[Manifest, Manifest]] = []
    for workload in workloads:
        pod_spec = workload["spec"]["template"]["spec"]
        pairs.extend((pod_spec, container) for container in containers(pod_spec))
    assert pairs
    return pairs


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_every_container_has_requests_limits_and_probes(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    for _, container in pods_and_containers(matrix[chart, scenario]):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), (container["name"], kind)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container, (container["name"], probe)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def effective(pod_spec: Manifest, container: Manifest, field: str) -> Any:
    """A securityContext field as Kubernetes applies it: the container's, else the pod's."""
    own = container.get("securityContext", {})
    return own[field] if field in own else pod_spec.get("securityContext", {}).get(field)


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_security_context_meets_restricted(matrix: Matrix, chart: str, scenario: str) -> None:
    for pod_spec, container in pods_and_containers(matrix[chart, scenario]):
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert pod_spec.get(host) in (None, False), host
        for volume in pod_spec.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
        context = container.get("securityContext", {})
        assert context.get("privileged") in (None, False)
        assert context.get("allowPrivilegeEscalation") is False
        assert "ALL" in context.get("capabilities", {}).get("drop", [])
        assert set(context.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        assert effective(pod_spec, container, "runAsNonRoot") is True
        run_as_user = effective(pod_spec, container, "runAsUser")
        assert isinstance(run_as_user, int)
        assert run_as_user > 0
        seccomp = effective(pod_spec, container, "seccompProfile") or {}
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost")
        assert not any(port.get("hostPort") for port in container.get("ports", []))
        assert context.get("readOnlyRootFilesystem") is True
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_service_account_token_only_for_the_deployer(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    rendered = matrix[chart, scenario]
    expected = chart == "deployer"
    assert rendered.pod_spec["automountServiceAccountToken"] is expected
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is expected
    assert (
        rendered.pod_spec["serviceAccountName"]
        == rendered.one("ServiceAccount")["metadata"]["name"]
    )


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_graceful_shutdown(matrix: Matrix, chart: str, scenario: str) -> None:
    rendered = matrix[chart, scenario]
    shutdown = int(rendered.config_data["SERVICE_SHUTDOWN_TIMEOUT_SECONDS"])
    for pod_spec, container in pods_and_containers(rendered):
        # The hook tells the process to drain, then waits (kit.prestop SECONDS).
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[:3] == ["python", "-m", "kit.prestop"], command
        pre_stop = int(command[3])
        assert pre_stop >= 1
        assert pod_spec["terminationGracePeriodSeconds"] >= pre_stop + shutdown


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_rolling_update_never_removes_a_ready_pod_first(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    strategy = matrix[chart, scenario].deployment["spec"]["strategy"]
    if scenario == "sqlite-pvc" and chart in CHARTS_WITH_DATABASE:
        # One SQLite file, one process: the old pod stops before the new one opens the file.
        assert strategy == {"type": "Recreate"}
        return
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
    }


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_image_is_immutable(matrix: Matrix, chart: str, scenario: str) -> None:
    digest = scenario_values(chart, scenario)["image"].get("digest")
    for _, container in pods_and_containers(matrix[chart, scenario]):
        image = container["image"]
        assert not image.endswith(":latest")
        assert ":" in image.rsplit("/", 1)[-1] or "@" in image, f"{image} has no tag"
        assert image.endswith(f"@{digest}" if digest else f":{TAG}"), image


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_no_literal_secret(matrix: Matrix, chart: str, scenario: str) -> None:
    rendered = matrix[chart, scenario]
    assert "Secret" not in rendered.kinds
    for _, container in pods_and_containers(rendered):
        for env in container.get("env", []):
            if SECRETISH_ENV.search(env["name"]):
                assert "value" not in env, f"{env['name']} is set by value"
                assert set(env["valueFrom"]) == {"secretKeyRef"}, env
    for key, value in rendered.config_data.items():
        if key == "DATABASE_URL":
            assert value.startswith("sqlite"), "only the SQLite fallback URL is not secret"
        elif key not in NOT_SECRET_KEYS:
            assert not SECRETISH_ENV.search(key), f"ConfigMap key {key} looks secret"
    for path, value in walk_strings(rendered.manifests):
        assert not re.search(r"://[^/@\s]+:[^@\s]+@", value), f"credentials in a URL at {path}"
        assert "-----BEGIN" not in value, f"key material at {path}"


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_secrets_come_from_the_referenced_secrets(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    values = scenario_values(chart, scenario)
    rendered = matrix[chart, scenario]
    container = rendered.pod_spec["containers"][0]
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    nats = values.get("nats", {})
    if nats.get("credsKey"):
        assert "NATS_PASSWORD" not in env
        mounted = {v["name"]: v for v in rendered.pod_spec["volumes"]}["nats-creds"]["secret"]
        assert mounted["secretName"] == nats["existingSecret"]
        path = rendered.config_data["NATS_CREDS_FILE"]
        assert path.endswith("/" + nats["credsKey"])
    elif nats.get("existingSecret"):
        assert env["NATS_PASSWORD"] == {"name": nats["existingSecret"], "key": "password"}
    else:
        assert "NATS_PASSWORD" not in env
    database = values.get("database", {})
    if database.get("existingSecret"):
        assert env["DATABASE_URL"] == {"name": database["existingSecret"], "key": "url"}
        assert "DATABASE_URL" not in rendered.config_data
    signing_keys = values.get("signingKeys", {})
    if signing_keys.get("existingSecret"):
        volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
        assert volumes["signing-keys"]["secret"]["secretName"] == signing_keys["existingSecret"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        directory = mounts["signing-keys"]["mountPath"]
        assert mounts["signing-keys"]["readOnly"] is True
        key_file = rendered.config_data["AUTH_SIGNING_KEY_FILE"]
        assert key_file == f"{directory}/signing-key.pem"
    identity = values.get("identity", {})
    if identity.get("existingSecret"):
        assert env["IDENTITY_SHARED_SECRET"]["name"] == identity["existingSecret"]


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_config_comes_from_the_configmap_with_a_checksum(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    rendered = matrix[chart, scenario]
    configmap = rendered.one("ConfigMap")["metadata"]["name"]
    container = rendered.pod_spec["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": configmap}}]
    assert re.fullmatch(r"[0-9a-f]{64}", rendered.checksum)
    data = rendered.config_data
    assert data["SERVICE_HOST"] == "0.0.0.0"
    assert data["SERVICE_PORT"] == "8000"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert all(isinstance(value, str) for value in data.values())


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_recommended_labels(matrix: Matrix, chart: str, scenario: str) -> None:
    rendered = matrix[chart, scenario]
    for manifest in rendered.manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == chart
        assert labels["app.kubernetes.io/instance"] == chart
        if manifest["kind"] == "Deployment":
            assert labels["app.kubernetes.io/version"] == TAG
        else:
            assert "app.kubernetes.io/version" not in labels, (
                "a new tag must touch only the workload"
            )
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "flotilla"
        assert labels["helm.sh/chart"].startswith(f"{chart}-")
    selector = rendered.deployment["spec"]["selector"]["matchLabels"]
    pod_labels = rendered.pod_template["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert "helm.sh/chart" not in pod_labels, "a chart version bump alone must not roll pods"
    assert pod_labels["app.kubernetes.io/version"] == TAG


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_only_namespaced_resources(matrix: Matrix, chart: str, scenario: str) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
    assert not matrix[chart, scenario].kinds & cluster_scoped


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_service_and_disruption_budget_select_the_pods(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    rendered = matrix[chart, scenario]
    selector = rendered.deployment["spec"]["selector"]["matchLabels"]
    service = rendered.one("Service")["spec"]
    assert service["selector"] == selector
    assert service["ports"][0]["targetPort"] == "http"
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"] == selector
    assert ("minAvailable" in pdb) != ("maxUnavailable" in pdb)


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_autoscaler_owns_replicas_when_enabled(matrix: Matrix, chart: str, scenario: str) -> None:
    rendered = matrix[chart, scenario]
    values = scenario_values(chart, scenario)
    if values.get("autoscaling", {}).get("enabled"):
        hpa = rendered.one("HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": rendered.deployment["metadata"]["name"],
        }
        assert "replicas" not in rendered.deployment["spec"]
    else:
        assert "HorizontalPodAutoscaler" not in rendered.kinds
        replicas = rendered.deployment["spec"]["replicas"]
        assert replicas == values.get("replicaCount", replicas)
        assert replicas >= 1


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_service_monitor_scrapes_metrics_when_enabled(
    matrix: Matrix, chart: str, scenario: str
) -> None:
    rendered = matrix[chart, scenario]
    if not scenario_values(chart, scenario).get("serviceMonitor", {}).get("enabled"):
        assert "ServiceMonitor" not in rendered.kinds
        return
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = rendered.one("Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert "http" in port_names


def egress_ports(policy: Manifest) -> set[int | str]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


GATEWAY_PEER = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}


@pytest.mark.parametrize(("chart", "scenario"), CELLS)
def test_network_policy(matrix: Matrix, chart: str, scenario: str) -> None:
    rendered = matrix[chart, scenario]
    values = scenario_values(chart, scenario)
    if scenario == "networkpolicy-off":
        assert "NetworkPolicy" not in rendered.kinds
        return
    policy = rendered.one("NetworkPolicy")
    spec = policy["spec"]
    assert (
        spec["podSelector"]["matchLabels"] == rendered.deployment["spec"]["selector"]["matchLabels"]
    )
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress = spec["ingress"]
    for rule in ingress:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}], rule
    if chart == "gateway":
        assert any("from" not in rule for rule in ingress), "the gateway is open for ingress"
    else:
        assert all(rule.get("from") for rule in ingress), "only listed peers may connect"
        monitoring = values.get("serviceMonitor", {}).get("enabled")
        peers = [peer for rule in ingress for peer in rule["from"]]
        app_peers = [p for p in peers if "namespaceSelector" not in p or not monitoring]
        expected = [GATEWAY_PEER] if chart in SERVICE_CHARTS else []
        if chart == "deployer":  # its replicas forward the API to the leader
            expected = [
                {
                    "podSelector": {
                        "matchLabels": rendered.deployment["spec"]["selector"]["matchLabels"]
                    }
                }
            ]
        assert app_peers == expected
    ports = egress_ports(policy)
    assert {53, 4222} <= ports
    has_database = chart in CHARTS_WITH_DATABASE and values.get("database", {}).get(
        "existingSecret"
    )
    assert (5432 in ports) == bool(has_database)
    if chart == "gateway":
        assert 8000 in ports, "the gateway reaches the services"
    if chart == "deployer":
        assert {443, 6443} <= ports, "the deployer reaches the Kubernetes API"
