"""Objects of any kind, read and server-side applied through the Kubernetes API.

A release's manifest holds several kinds (Deployment, Service, ConfigMap, ...); the REST path of
each comes from API discovery (``/api/v1``, ``/apis/<group>/<version>``), asked once per group
version. Applies use helm's own field manager (``helm``) with ``force``, exactly as the deployer's
``helm upgrade --server-side=true --force-conflicts`` does, so a dry run answers what that upgrade
will store, and a real apply is the same write helm would make.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from deployer.reconcile.errors import StepError
from deployer.reconcile.objectkey import ObjectKey, key_of

FIELD_MANAGER = "helm"
_APPLY = "application/apply-patch+yaml"


class KubeApiError(StepError):
    """The API server refused a request; ``status`` is its HTTP status (0: no answer)."""

    system = "the Kubernetes API"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """No answer, a conflict, throttling or a server error: asking again may succeed."""
        return self.status in (0, 409, 429) or self.status >= 500


class KubeObjects:
    """Read and apply objects of any kind in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api = api
        self.namespace = namespace
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    async def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The live object, or None when there is none."""
        try:
            return await self._call("GET", await self._path(key), key)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def apply(
        self, obj: dict[str, Any], *, dry_run: bool, field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` as ``field_manager`` (default helm's), forcing conflicts;
        the object as stored (or as it would be stored, with ``dry_run``)."""
        key = key_of(obj)
        query = [("fieldManager", field_manager), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        return await self._call("PATCH", await self._path(key), key, body=obj, query=query)

    async def _path(self, key: ObjectKey) -> str:
        group_version = key.api_version
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        if group_version not in self._resources:
            listing = await self._call("GET", base, key)
            self._resources[group_version] = {
                item["kind"]: (item["name"], bool(item.get("namespaced")))
                for item in listing.get("resources", [])
                if "/" not in item["name"]  # subresources (deployments/scale) share the kind
            }
        found = self._resources[group_version].get(key.kind)
        if found is None:
            raise KubeApiError(
                f"the API server serves no kind {key.kind} in {group_version}", status=404
            )
        plural, namespaced = found
        scope = f"/namespaces/{self.namespace}" if namespaced else ""
        return f"{base}{scope}/{plural}/{key.name}"

    async def _call(
        self,
        method: str,
        path: str,
        key: ObjectKey,
        *,
        body: dict[str, Any] | None = None,
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = _APPLY
        try:
            response = await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
            )
            data: dict[str, Any] = json.loads(await response.read())
            return data
        except ApiException as exc:
            raise KubeApiError(
                f"{method} {key.label}: {_message(exc)}", status=int(exc.status or 0)
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeApiError(f"{method} {key.label}: no answer ({exc!r})", status=0) from None


def _message(exc: ApiException) -> str:
    """The API server's own message (its Status object), else the HTTP reason."""
    try:
        status = json.loads(exc.body or b"")
        return str(status.get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
