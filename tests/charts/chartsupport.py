"""Helpers of the chart contract tests: run the pinned helm, render charts, read manifests."""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit import layout

REPO_ROOT = Path(__file__).resolve().parents[2]
# Discovered from the folders (kit.layout), as charts/schemagen does: every service's chart.
SERVICE_CHARTS = layout.service_names(REPO_ROOT)
CHARTS = (*SERVICE_CHARTS, "deployer")
CHARTS_WITH_DATABASE = layout.services_with_database(REPO_ROOT)
# The platform's own NATS and PostgreSQL (StatefulSets; tests/charts/test_chart_dependencies.py).
DEPENDENCY_CHARTS = ("nats", "postgres")
LIBRARY = "flotilla-lib"
TAG = "1.4.2-a8f3d21"
NAMESPACE = "flotilla"
# The render matrix of the acceptance criteria; "nats-creds-file" covers the .creds path.
SCENARIOS = (
    "defaults",
    "hpa",
    "servicemonitor",
    "networkpolicy-off",
    "production",
    "nats-creds-file",
    "sqlite-pvc",
)

Manifest = dict[str, Any]
Values = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; ``stderr`` says why."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Values:
    """Deep-merge ``override`` into a copy of ``base`` (maps merge, everything else replaces)."""
    merged: Values = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def minimal_values(chart: str) -> Values:
    """The least a chart needs: a tag and, with a database, where it keeps its data (the charts
    refuse SQLite on an emptyDir, so the defaults alone do not render)."""
    values: Values = {"image": {"tag": TAG}}
    if chart in CHARTS_WITH_DATABASE:
        values["database"] = {"existingSecret": f"{chart}-database"}
    return values


def sqlite_values(chart: str) -> Values:
    """One replica on SQLite, on a PersistentVolumeClaim (the only SQLite setup accepted)."""
    return {
        "image": {"tag": TAG},
        "replicaCount": 1,
        "database": {"sqlite": {"persistence": {"enabled": True}}},
    }


def scenario_values(chart: str, scenario: str) -> Values:
    """The values of one cell of the render matrix."""
    base = minimal_values(chart)
    if scenario == "defaults":
        return base
    if scenario == "sqlite-pvc":
        return sqlite_values(chart) if chart in CHARTS_WITH_DATABASE else base
    if scenario == "hpa":
        return merge(base, {"autoscaling": {"enabled": True}})
    if scenario == "servicemonitor":
        return merge(base, {"serviceMonitor": {"enabled": True}})
    if scenario == "networkpolicy-off":
        return merge(base, {"networkPolicy": {"enabled": False}})
    if scenario == "nats-creds-file":
        return merge(base, {"nats": {"existingSecret": f"{chart}-nats", "credsKey": "user.creds"}})
    if scenario == "production":
        return production_values(chart)
    raise ValueError(f"unknown scenario {scenario}")


def production_values(chart: str) -> Values:
    """Production-like values: every secret by reference, digest pinned, HPA and monitoring on."""
    values: Values = {
        "image": {"tag": TAG, "digest": "sha256:" + "a8f3d21" * 9 + "0"},
        "replicaCount": 3,
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": 1, "memory": "512Mi"},
        },
        "config": {
            "environment": "production",
            "logLevel": "WARNING",
            "otelExporterEndpoint": "http://otel-collector.observability.svc:4318",
            "extra": {"FEATURE_FLAG_EXAMPLE": "on"},
        },
        "nats": {"url": "tls://nats.nats.svc:4222", "existingSecret": f"{chart}-nats"},
        "identity": {"existingSecret": "flotilla-identity"},
        "lifecycle": {"preStopSleepSeconds": 10, "terminationGracePeriodSeconds": 45},
        "podDisruptionBudget": {"minAvailable": 2},
        "autoscaling": {
            "enabled": True,
            "minReplicas": 3,
            "maxReplicas": 12,
            "targetMemoryUtilizationPercentage": 80,
        },
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "serviceAccount": {"annotations": {"example.com/role": f"flotilla-{chart}"}},
        "podAnnotations": {"example.com/team": "flotilla"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": chart}},
            }
        ],
        "networkPolicy": {
            "extraEgress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "observability"}
                            }
                        }
                    ],
                    "ports": [{"port": 4318, "protocol": "TCP"}],
                }
            ]
        },
    }
    if chart in CHARTS_WITH_DATABASE:
        values["database"] = {"existingSecret": f"{chart}-database"}
        values["networkPolicy"]["databaseTo"] = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "postgres"}}}
        ]
    if chart == "auth":
        values["signingKeys"] = {
            "existingSecret": "auth-signing-keys",
            "keyId": "2026-11",
            "previousPublicKeyKey": "previous-public-key.pem",
            "previousKeyId": "2026-10",
        }
    if chart == "deployer":
        values["replicaCount"] = 1
        # One deployer: a PDB that keeps 2 would block every node drain.
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
        values["autoscaling"] = {"enabled": False}
        values["api"] = {"existingSecret": "deployer-api"}
        values["rbac"] = {"namespaces": ["flotilla-services", "flotilla-canary"]}
        values["networkPolicy"]["kubernetesApiTo"] = [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    return values


@dataclass(frozen=True)
class Rendered:
    """The manifests one ``helm template`` produced."""

    chart: str
    manifests: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        """Every manifest of ``kind``."""
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        """The single manifest of ``kind``; fails when there is none or several."""
        found = self.of_kind(kind)
        assert len(found) == 1, f"{self.chart}: expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def kinds(self) -> set[str]:
        """The kinds rendered."""
        return {m["kind"] for m in self.manifests}

    @property
    def deployment(self) -> Manifest:
        """The chart's Deployment."""
        return self.one("Deployment")

    @property
    def pod_template(self) -> Manifest:
        """The Deployment's .spec.template."""
        template: Manifest = self.deployment["spec"]["template"]
        return template

    @property
    def pod_spec(self) -> Manifest:
        """The Deployment's pod spec."""
        spec: Manifest = self.pod_template["spec"]
        return spec

    @property
    def config_data(self) -> dict[str, str]:
        """The data of the chart's ConfigMap."""
        data: dict[str, str] = self.one("ConfigMap")["data"]
        return data

    @property
    def checksum(self) -> str:
        """The pod template's checksum/config annotation."""
        value: str = self.pod_template["metadata"]["annotations"]["checksum/config"]
        return value


@dataclass(frozen=True)
class Helm:
    """The pinned helm binary, run with its own empty config, cache and data homes."""

    binary: Path
    charts_dir: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The process environment: helm homes isolated from the user's, so no repo is read."""
        return {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            **self.env,
        }

    def run(self, *args: str, stdin: str = "", timeout: float = 120) -> str:
        """Run helm and return its stdout; raise HelmError with stderr when it fails."""
        result = subprocess.run(
            [str(self.binary), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise HelmError(args, result.stderr)
        return result.stdout

    def template_text(
        self,
        chart: str,
        values: Mapping[str, Any],
        *,
        release: str | None = None,
        namespace: str = NAMESPACE,
    ) -> str:
        """``helm template`` of a chart directory with ``values`` (passed on stdin)."""
        return self.run(
            "template",
            release or chart,
            str(self.charts_dir / chart),
            "--namespace",
            namespace,
            "--values",
            "-",
            stdin=yaml.safe_dump(dict(values)),
        )

    def template(
        self,
        chart: str,
        values: Mapping[str, Any],
        *,
        release: str | None = None,
        namespace: str = NAMESPACE,
    ) -> Rendered:
        """Render a chart and parse its manifests."""
        text = self.template_text(chart, values, release=release, namespace=namespace)
        return Rendered(chart, parse_manifests(text))

    def template_error(self, chart: str, values: Mapping[str, Any]) -> str:
        """Render a chart that must fail; return helm's error output."""
        try:
            self.template_text(chart, values)
        except HelmError as exc:
            return exc.stderr
        raise AssertionError(f"helm template {chart} succeeded with {dict(values)}")


def parse_manifests(text: str) -> list[Manifest]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def containers(pod_spec: Mapping[str, Any]) -> Iterator[Manifest]:
    """Every container of a pod spec, init and ephemeral containers included."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(key) or []


def walk_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string leaf of a YAML tree with its dotted path."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk_strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def built_tool(repo_root: Path, binary: str) -> Path:
    """The path of a binary built by platform/cluster/build-tools.sh (never one from PATH)."""
    script = repo_root / "platform" / "cluster" / "build-tools.sh"
    result = subprocess.run(
        [str(script), "--path", binary], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{binary} is not built: {result.stderr.strip()} "
            f"(run `make setup`, or platform/cluster/build-tools.sh)"
        )
    return Path(result.stdout.strip())
