"""The files of an environment's desired state in the repository (pure: paths to text).

One folder per environment and service, which Flux's kustomize-controller applies and a
HelmRelease names the chart and the values of::

    environments/<environment>/kustomization.yaml          its services' folders
    environments/<environment>/<service>/helmrelease.yaml  the chart reference, remediation
    environments/<environment>/<service>/values.yaml       the values (the image by tag, digest)
    environments/<environment>/<service>/kustomization.yaml
    environments/<environment>/<service>/kustomizeconfig.yaml
    charts/<service>/<version>-<digest>/                   the chart, named by its content

The values go into a ConfigMap generated from ``values.yaml``, its name suffixed with the
content's hash: a change of values is a change of the HelmRelease (a new generation), so Flux
upgrades that release alone; a commit that touches another folder upgrades nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

ENVIRONMENTS = PurePosixPath("environments")
CHARTS = PurePosixPath("charts")
SOURCE_NAME = "flotilla"
DEPLOYMENT_ANNOTATION = "flotilla.dev/deployment"
HEADER = "# Written by the Flotilla deployer: one commit per deployment.\n"


@dataclass(frozen=True)
class ServiceRelease:
    """What one environment runs of one service: the chart (its folder in the repository), the
    values, and the deployment that wrote it."""

    environment: str
    service: str
    chart_path: PurePosixPath
    values: Mapping[str, Any]
    deployment_id: str
    timeout_seconds: float
    history_max: int = 10


def service_folder(environment: str, service: str) -> PurePosixPath:
    """The folder of ``service`` in ``environment``."""
    return ENVIRONMENTS / environment / service


def environment_folder(environment: str) -> PurePosixPath:
    """The folder of ``environment``."""
    return ENVIRONMENTS / environment


def kustomization_name(environment: str) -> str:
    """The Flux Kustomization that applies ``environment``'s folder."""
    return f"{SOURCE_NAME}-{environment}"


def service_files(release: ServiceRelease) -> dict[PurePosixPath, str]:
    """The files of ``release``'s folder."""
    folder = service_folder(release.environment, release.service)
    values_map = f"{release.service}-values"
    return {
        folder / "helmrelease.yaml": _yaml(helm_release(release, values_map)),
        folder / "values.yaml": _yaml(dict(release.values)),
        folder / "kustomization.yaml": _yaml(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["helmrelease.yaml"],
                "configMapGenerator": [{"name": values_map, "files": ["values.yaml"]}],
                "configurations": ["kustomizeconfig.yaml"],
            }
        ),
        folder / "kustomizeconfig.yaml": _yaml(
            {
                "nameReference": [
                    {
                        "kind": "ConfigMap",
                        "version": "v1",
                        "fieldSpecs": [{"path": "spec/valuesFrom/name", "kind": "HelmRelease"}],
                    }
                ]
            }
        ),
    }


def helm_release(release: ServiceRelease, values_map: str) -> dict[str, Any]:
    """The HelmRelease of ``release``: its chart from the repository, its values from the
    generated ConfigMap; a failed upgrade is rolled back at once (no retries: the deployer
    reports it and a person decides), and Flux corrects drift."""
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": release.service,
            "annotations": {DEPLOYMENT_ANNOTATION: release.deployment_id},
        },
        "spec": {
            "releaseName": release.service,
            "interval": "10m",
            "timeout": f"{round(release.timeout_seconds)}s",
            "maxHistory": release.history_max,
            "chart": {
                "spec": {
                    "chart": f"./{release.chart_path}",
                    "reconcileStrategy": "ChartVersion",
                    "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
                }
            },
            "valuesFrom": [{"kind": "ConfigMap", "name": values_map, "valuesKey": "values.yaml"}],
            "install": {"remediation": {"retries": 0}},
            "upgrade": {
                "remediation": {
                    "retries": 0,
                    "remediateLastFailure": True,
                    "strategy": "rollback",
                }
            },
            "driftDetection": {"mode": "enabled"},
        },
    }


def environment_kustomization(services: list[str]) -> str:
    """The kustomization of an environment's folder: one resource per service folder."""
    return _yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(services),
        }
    )


def chart_path_of(helm_release_text: str) -> PurePosixPath | None:
    """The chart folder a helmrelease.yaml names (None: it names none)."""
    document = yaml.safe_load(helm_release_text) or {}
    chart = document.get("spec", {}).get("chart", {}).get("spec", {}).get("chart")
    return PurePosixPath(str(chart).removeprefix("./")) if chart else None


def _yaml(document: Mapping[str, Any]) -> str:
    return HEADER + yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)
