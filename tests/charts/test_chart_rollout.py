"""What rolls pods: only .spec.template changes, and config reaches it via checksum/config."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.charts.chartsupport import CHARTS, Helm, Rendered, merge, scenario_values

# Changes of the ConfigMap's data: each must change checksum/config (and so roll pods).
CONFIG_CHANGES: dict[str, dict[str, Any]] = {
    "log level": {"config": {"logLevel": "DEBUG"}},
    "environment": {"config": {"environment": "test"}},
    "extra variable": {"config": {"extra": {"FEATURE_X": "on"}}},
    "otel endpoint": {"config": {"otelExporterEndpoint": "http://otel:4318"}},
    "nats url": {"nats": {"url": "nats://nats-2.nats.svc:4222"}},
    "nats user": {"nats": {"user": "someone-else"}},
    "shutdown timeout": {"lifecycle": {"shutdownTimeoutSeconds": 25}},
}
# Changes that leave the ConfigMap's data alone: none may change checksum/config.
OTHER_CHANGES: dict[str, dict[str, Any]] = {
    "image tag": {"image": {"tag": "1.4.3-b9e4e32"}},
    "image digest": {"image": {"digest": "sha256:" + "0" * 64}},
    "replicas": {"replicaCount": 5},
    "resources": {"resources": {"limits": {"memory": "1Gi"}}},
    "pod annotation": {"podAnnotations": {"kwok.x-k8s.io/delay": "5s"}},
    "service port": {"service": {"port": 8080}},
    "nats secret": {"nats": {"existingSecret": "other-nats"}},
    "autoscaling": {"autoscaling": {"enabled": True}},
    "network policy off": {"networkPolicy": {"enabled": False}},
    "service monitor": {"serviceMonitor": {"enabled": True}},
    "pre-stop sleep": {"lifecycle": {"preStopSleepSeconds": 3}},
}
CHANGES = {**CONFIG_CHANGES, **OTHER_CHANGES}


@pytest.fixture(scope="module")
def variants(helm: Helm) -> dict[tuple[str, str], Rendered]:
    """Each chart rendered with its defaults ("base") and with every single change."""
    cells = [(chart, change) for chart in CHARTS for change in ("base", *CHANGES)]

    def render(cell: tuple[str, str]) -> Rendered:
        chart, change = cell
        base = scenario_values(chart, "defaults")
        return helm.template(chart, merge(base, CHANGES.get(change, {})))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cells, pool.map(render, cells), strict=True))


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("chart", CHARTS)
def test_checksum_changes_when_and_only_when_config_changes(
    variants: dict[tuple[str, str], Rendered], chart: str, change: str
) -> None:
    base, changed = variants[chart, "base"], variants[chart, change]
    data_changed = base.config_data != changed.config_data
    checksum_changed = base.checksum != changed.checksum
    assert data_changed == (change in CONFIG_CHANGES), "the change should (not) reach the config"
    assert checksum_changed == data_changed


@pytest.mark.parametrize("chart", CHARTS)
def test_image_tag_change_alters_the_pod_template(
    variants: dict[tuple[str, str], Rendered], chart: str
) -> None:
    assert variants[chart, "base"].pod_template != variants[chart, "image tag"].pod_template
    assert variants[chart, "base"].pod_template != variants[chart, "image digest"].pod_template


@pytest.mark.parametrize("chart", CHARTS)
def test_replica_change_leaves_the_pod_template_alone(
    variants: dict[tuple[str, str], Rendered], chart: str
) -> None:
    base, scaled = variants[chart, "base"], variants[chart, "replicas"]
    assert base.pod_template == scaled.pod_template
    assert scaled.deployment["spec"]["replicas"] == 5
    assert base.deployment["spec"]["replicas"] != 5


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize(
    "change", ["service port", "autoscaling", "network policy off", "service monitor"]
)
def test_non_pod_changes_leave_the_pod_template_alone(
    variants: dict[tuple[str, str], Rendered], chart: str, change: str
) -> None:
    assert variants[chart, "base"].pod_template == variants[chart, change].pod_template


def changed_objects(base: Rendered, changed: Rendered) -> set[tuple[str, str]]:
    """(kind, name) of every manifest that differs, appears or disappears."""
    before = {(m["kind"], m["metadata"]["name"]): m for m in base.manifests}
    after = {(m["kind"], m["metadata"]["name"]): m for m in changed.manifests}
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize(
    ("change", "touched"),
    [
        ("image tag", {"Deployment"}),
        ("image digest", {"Deployment"}),
        ("replicas", {"Deployment"}),
        ("log level", {"Deployment", "ConfigMap"}),
        ("service port", {"Service"}),
    ],
)
def test_a_change_touches_only_what_it_must(
    variants: dict[tuple[str, str], Rendered], chart: str, change: str, touched: set[str]
) -> None:
    """So the deployer's plan shows a new image as a change of the Deployment alone."""
    changed = changed_objects(variants[chart, "base"], variants[chart, change])
    assert {kind for kind, _ in changed} == touched
