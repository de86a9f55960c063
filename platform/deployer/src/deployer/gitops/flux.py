"""Flux's objects of one environment, through the Kubernetes API: the GitRepository and the
Kustomization the deployer sets up, and the HelmReleases its commits describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployer.adapters.kubeobjects import KubeObjects
from deployer.gitops.config import GitOpsSpec
from deployer.gitops.layout import SOURCE_NAME, environment_folder, kustomization_name
from deployer.reconcile.objectkey import ObjectKey

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
HELM_API = "helm.toolkit.fluxcd.io/v2"
SETUP_MANAGER = "flotilla-deployer"
REQUEST_MANAGER = "flotilla-deployer-requests"  # its own: the setup's fields stay as applied
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def source_key() -> ObjectKey:
    """The environment's GitRepository."""
    return ObjectKey(SOURCE_API, "GitRepository", SOURCE_NAME)


def kustomization_key(environment: str) -> ObjectKey:
    """The environment's Kustomization."""
    return ObjectKey(KUSTOMIZE_API, "Kustomization", kustomization_name(environment))


def release_key(service: str) -> ObjectKey:
    """The HelmRelease of ``service``."""
    return ObjectKey(HELM_API, "HelmRelease", service)


def setup_objects(environment: str, namespace: str, spec: GitOpsSpec) -> list[dict[str, Any]]:
    """The GitRepository and the Kustomization that make Flux apply ``environment``'s folder
    of the repository into ``namespace``."""
    interval = f"{spec.interval_seconds}s"
    source: dict[str, Any] = {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": SOURCE_NAME},
        "spec": {"url": spec.source_url, "ref": {"branch": spec.branch}, "interval": interval},
    }
    if spec.secret_ref:
        source["spec"]["secretRef"] = {"name": spec.secret_ref}
    kustomization = {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": kustomization_name(environment)},
        "spec": {
            "interval": interval,
            "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
            "path": f"./{environment_folder(environment)}",
            "prune": True,
            "targetNamespace": namespace,
        },
    }
    return [source, kustomization]


class FluxObjects:
    """Flux's objects in one namespace."""

    def __init__(self, objects: KubeObjects) -> None:
        self._objects = objects

    @property
    def namespace(self) -> str:
        """Where they live."""
        return self._objects.namespace

    async def set_up(self, environment: str, spec: GitOpsSpec) -> None:
        """Apply the environment's GitRepository and Kustomization (idempotent)."""
        for obj in setup_objects(environment, self.namespace, spec):
            await self._objects.apply(obj, dry_run=False, field_manager=SETUP_MANAGER)

    async def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The object (None: there is none)."""
        return await self._objects.get(key)

    async def request_reconcile(self, key: ObjectKey) -> str:
        """Ask Flux to reconcile the object now, as ``flux reconcile`` does; the token its
        status echoes in ``lastHandledReconcileAt`` once handled."""
        token = datetime.now(UTC).isoformat(timespec="microseconds")
        request = {
            "apiVersion": key.api_version,
            "kind": key.kind,
            "metadata": {"name": key.name, "annotations": {REQUESTED_AT: token}},
        }
        await self._objects.apply(request, dry_run=False, field_manager=REQUEST_MANAGER)
        return token
