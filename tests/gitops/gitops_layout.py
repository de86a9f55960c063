"""The gitops repository layout as the deployer writes it, one commit per deployment, in a clone
of the repository Flux reads:

    charts/<service>/<version>-<digest12>/           the chart (with its vendored charts/), its
                                                     Chart.yaml version "<version>+<digest12>"
    environments/<env>/kustomization.yaml            resources: one entry per service folder
    environments/<env>/<service>/kustomization.yaml  the HelmRelease, a ConfigMap of values.yaml
    environments/<env>/<service>/kustomizeconfig.yaml  the ConfigMap's hashed name into valuesFrom
    environments/<env>/<service>/helmrelease.yaml
    environments/<env>/<service>/values.yaml
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GIT_SOURCE = "flotilla"


def chart_digest(chart: Path) -> str:
    """12 hex of a sha256 over the chart directory's files (paths and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        digest.update(path.relative_to(chart).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def write_yaml(path: Path, document: dict[str, Any]) -> None:
    """``document`` as YAML at ``path`` (directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def copy_chart(source: Path, worktree: Path, service: str) -> str:
    """Copy chart ``source`` to charts/<service>/<version>-<digest12>/ with its version
    rewritten to <version>+<digest12>; that folder's path in the repository."""
    metadata = yaml.safe_load((source / "Chart.yaml").read_text())
    version = str(metadata["version"])
    digest = chart_digest(source)
    folder = f"charts/{service}/{version}-{digest}"
    target = worktree / folder
    if not target.exists():
        shutil.copytree(source, target)
        metadata["version"] = f"{version}+{digest}"
        write_yaml(target / "Chart.yaml", metadata)
    return folder


def helm_release(service: str, chart_folder: str, timeout: str) -> dict[str, Any]:
    """The HelmRelease of ``service``: the chart folder of the GitRepository, the values of the
    generated ConfigMap, no retries, a failed upgrade rolled back."""
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": service},
        "spec": {
            "releaseName": service,
            "interval": "10m",
            "timeout": timeout,
            "chart": {
                "spec": {
                    "chart": f"./{chart_folder}",
                    "reconcileStrategy": "ChartVersion",
                    "sourceRef": {"kind": "GitRepository", "name": GIT_SOURCE},
                }
            },
            "valuesFrom": [
                {"kind": "ConfigMap", "name": f"{service}-values", "valuesKey": "values.yaml"}
            ],
            "install": {"remediation": {"retries": 0}},
            "upgrade": {
                "remediation": {
                    "retries": 0,
                    "strategy": "rollback",
                    "remediateLastFailure": True,
                }
            },
        },
    }


KUSTOMIZE_CONFIG = {
    "nameReference": [
        {
            "kind": "ConfigMap",
            "version": "v1",
            "fieldSpecs": [{"path": "spec/valuesFrom/name", "kind": "HelmRelease"}],
        }
    ]
}


@dataclass
class GitopsClone:
    """A clone of the gitops repository that commits the layout and pushes it."""

    path: Path
    charts: Path

    def git(self, *args: str) -> str:
        """Run git in the clone (a fixed identity, no user configuration); its stdout."""
        command = ["git", "-c", "user.name=Deployer", "-c", "user.email=deployer@flotilla.invalid"]
        command += ["-c", "init.defaultBranch=main", *args]
        env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path), "GIT_TERMINAL_PROMPT": "0"}
        result = subprocess.run(
            command, cwd=self.path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout

    @classmethod
    def clone(cls, url: str, path: Path, charts: Path) -> GitopsClone:
        """Clone ``url`` (the empty repository is fine) into ``path``."""
        path.mkdir(parents=True)
        clone = cls(path, charts)
        clone.git("clone", "-q", url, ".")
        return clone

    def write_service(
        self, environment: str, service: str, values: dict[str, Any], timeout: str = "20s"
    ) -> str:
        """Write ``service``'s chart copy and its folder in ``environment``; the chart folder."""
        chart_folder = copy_chart(self.charts / service, self.path, service)
        folder = self.path / "environments" / environment / service
        write_yaml(
            folder / "kustomization.yaml",
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["helmrelease.yaml"],
                "configMapGenerator": [{"name": f"{service}-values", "files": ["values.yaml"]}],
                "configurations": ["kustomizeconfig.yaml"],
            },
        )
        write_yaml(folder / "kustomizeconfig.yaml", KUSTOMIZE_CONFIG)
        write_yaml(folder / "helmrelease.yaml", helm_release(service, chart_folder, timeout))
        write_yaml(folder / "values.yaml", values)
        services = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        write_yaml(
            folder.parent / "kustomization.yaml",
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": services,
            },
        )
        return chart_folder

    def commit_and_push(self, message: str) -> str:
        """Commit everything, push main; the commit's id."""
        self.git("add", "--all")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD").strip()
