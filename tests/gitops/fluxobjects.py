"""Flux's objects for the gitops smoke test, and waiting on their status through kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.e2e.clustersupport import Kubectl
from tests.gitops.gitops_layout import GIT_SOURCE

Object = dict[str, Any]
HELM_RELEASE = "helmreleases.helm.toolkit.fluxcd.io"
KUSTOMIZATION = "kustomizations.kustomize.toolkit.fluxcd.io"
GIT_REPOSITORY = "gitrepositories.source.toolkit.fluxcd.io"
HELM_CHART = "helmcharts.source.toolkit.fluxcd.io"


def git_repository(url: str, secret: str) -> Object:
    """The GitRepository ``flotilla``: branch main of ``url``, basic auth from ``secret``."""
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": GIT_SOURCE},
        "spec": {
            "url": url,
            "ref": {"branch": "main"},
            "secretRef": {"name": secret},
            "interval": "10m",
            "timeout": "20s",
        },
    }


def basic_auth_secret(name: str, username: str, password: str) -> Object:
    """The Secret a GitRepository reads its basic-auth credentials from."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": {"username": username, "password": password},
    }


def kustomization(environment: str, namespace: str) -> Object:
    """The Kustomization ``flotilla-<environment>`` of ./environments/<environment>."""
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"flotilla-{environment}"},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": GIT_SOURCE},
            "path": f"./environments/{environment}",
            "prune": True,
            "targetNamespace": namespace,
            "interval": "10m",
        },
    }


def apply(kubectl: Kubectl, namespace: str, *objects: Object) -> None:
    """Apply ``objects`` in ``namespace``."""
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=document)


def get(kubectl: Kubectl, resource: str, name: str, namespace: str) -> Object:
    """The object as the API serves it."""
    found: Object = kubectl.json("get", resource, name, "-n", namespace)
    return found


def condition(obj: Object, kind: str) -> Object | None:
    """Condition ``kind`` (Ready, Released, ...) of ``obj``'s status, if it has one."""
    for found in obj.get("status", {}).get("conditions", []):
        if found.get("type") == kind:
            return dict(found)
    return None


def ready(obj: Object) -> str:
    """The status of ``obj``'s Ready condition: "True", "False", "Unknown" or "" (none yet)."""
    found = condition(obj, "Ready")
    return str(found.get("status", "")) if found else ""


def request_reconcile(kubectl: Kubectl, resource: str, name: str, namespace: str) -> str:
    """Ask the controller to reconcile the object now (reconcile.fluxcd.io/requestedAt); the
    annotation's value, which status.lastHandledReconcileAt echoes once handled."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kubectl.run(
        "annotate", "--overwrite", "-n", namespace, resource, name,
        f"reconcile.fluxcd.io/requestedAt={stamp}",
    )  # fmt: skip
    return stamp


def wait_for(
    kubectl: Kubectl,
    resource: str,
    name: str,
    namespace: str,
    check: Callable[[Object], bool],
    *,
    timeout: float,
    what: str,
) -> Object:
    """Poll the object until ``check`` holds; it, then. Fails with its last status."""
    deadline = time.monotonic() + timeout
    last: Object = {}
    while time.monotonic() < deadline:
        result = kubectl.run("get", resource, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode == 0:
            last = json.loads(result.stdout)
            if check(last):
                return last
        time.sleep(0.2)
    status = json.dumps(last.get("status"), indent=1)
    raise AssertionError(f"{resource}/{name}: not {what} in {timeout}s; status: {status}")


def helm_revisions(kubectl: Kubectl, namespace: str, release: str) -> list[int]:
    """The revisions of the helm release (its storage Secrets), in order."""
    secrets = kubectl.json(
        "get", "secrets", "-n", namespace, "-l", f"owner=helm,name={release}"
    )  # fmt: skip
    return sorted(int(item["metadata"]["labels"]["version"]) for item in secrets["items"])


def revision(commit: str) -> str:
    """How Flux names the git revision of ``commit`` on main."""
    return f"main@sha1:{commit}"
