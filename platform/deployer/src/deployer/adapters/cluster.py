"""The Kubernetes API of the release namespace: rollout progress (the Deployment and its
ReplicaSets) and objects of any kind (:class:`deployer.adapters.kubeobjects.KubeObjects`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from deploy_contract.events import PodProblem, RolloutProgress
from deployer.adapters.kubeobjects import KubeObjects
from deployer.reconcile.podproblems import pod_problems

log = logging.getLogger(__name__)

OnProgress = Callable[[RolloutProgress], Awaitable[None]]
INSTANCE_LABEL = "app.kubernetes.io/instance"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TRACK_LABEL = "flotilla.dev/track"


class Cluster:
    """A Kubernetes API client for the namespace the releases live in."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api = api
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self.objects = KubeObjects(api, namespace)

    @classmethod
    async def connect(
        cls, kubeconfig: Path | None, namespace: str, context: str | None = None
    ) -> Cluster:
        """From a kubeconfig file (its ``context``, default the current one), or the pod's
        service account when there is none."""
        configuration = client.Configuration()
        if kubeconfig is not None:
            await config.load_kube_config(
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(client.ApiClient(configuration=configuration), namespace)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._api.close()

    async def progress(self, release: str, track: str = "stable") -> RolloutProgress | None:
        """Replica counts of the release's Deployment and ready pods per ReplicaSet; ``track``
        ``canary``: of its canary Deployment (the one labelled ``flotilla.dev/track=canary``)."""
        selector = f"{INSTANCE_LABEL}={release}"
        deployments = await _items(
            self._apps.list_namespaced_deployment(
                self.namespace, label_selector=selector, _preload_content=False
            )
        )
        tracked = [d for d in deployments if _track(d) == track]
        if not tracked:
            return None
        deployment = tracked[0]
        status = deployment.get("status") or {}
        replica_sets = await _items(
            self._apps.list_namespaced_replica_set(
                self.namespace, label_selector=selector, _preload_content=False
            )
        )
        mine = [rs for rs in replica_sets if _owned_by(rs, deployment["metadata"]["uid"])]
        owned = {
            rs["metadata"]["name"]: (rs.get("status") or {}).get("readyReplicas") or 0
            for rs in mine
            if (rs.get("spec") or {}).get("replicas") or (rs.get("status") or {}).get("replicas")
        }
        newest = max(mine, key=_revision, default=None)
        problems = await self.new_pod_problems(selector, newest) if newest is not None else []
        return RolloutProgress(
            desired=(deployment.get("spec") or {}).get("replicas") or 0,
            updated=status.get("updatedReplicas") or 0,
            ready=status.get("readyReplicas") or 0,
            available=status.get("availableReplicas") or 0,
            replica_sets=owned,
            problems=problems,
        )

    async def new_pod_problems(
        self, selector: str, replica_set: dict[str, Any]
    ) -> list[PodProblem]:
        """What keeps the pods of ``replica_set`` (the rollout's new one) from being ready."""
        listed = await _items(
            self._core.list_namespaced_pod(
                self.namespace, label_selector=selector, _preload_content=False
            )
        )
        pods = [pod for pod in listed if _owned_by(pod, replica_set["metadata"]["uid"])]
        problems = pod_problems(pods)
        if any(problem.reason == "NotReady" for problem in problems):
            events = await _items(
                self._core.list_namespaced_event(
                    self.namespace,
                    field_selector="involvedObject.kind=Pod,reason=Unhealthy",
                    _preload_content=False,
                )
            )
            names = {pod["metadata"]["name"] for pod in pods}
            mine = [event for event in events if event["involvedObject"]["name"] in names]
            problems = pod_problems(pods, mine)
        return problems

    async def watch(
        self, release: str, on_progress: OnProgress, every: float = 0.5, track: str = "stable"
    ) -> None:
        """Report each change of the release's progress (of ``track``) until cancelled."""
        last: RolloutProgress | None = None
        while True:
            try:
                current = await self.progress(release, track)
            except Exception as exc:  # the API may hiccup; progress is best effort
                log.warning("could not read rollout progress", extra={"error": repr(exc)})
                current = None
            if current is not None and current != last:
                last = current
                with contextlib.suppress(Exception):
                    await on_progress(current)
            await asyncio.sleep(every)


async def _items(listing: Awaitable[Any]) -> list[dict[str, Any]]:
    """The items of a list call made with ``_preload_content=False``, as the API sends them
    (plain JSON, camelCase): the rollout is watched every half second while helm waits, and
    building the client's typed objects of every ReplicaSet and pod costs far more CPU."""
    response = await listing
    items: list[dict[str, Any]] = json.loads(await response.read()).get("items") or []
    return items


def _track(deployment: dict[str, Any]) -> str:
    """``canary`` for a canary Deployment, ``stable`` for the release's own."""
    labels = deployment["metadata"].get("labels") or {}
    return str(labels.get(TRACK_LABEL, "stable"))


def _owned_by(owned: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in owned["metadata"].get("ownerReferences") or [])


def _revision(replica_set: dict[str, Any]) -> int:
    annotations = replica_set["metadata"].get("annotations") or {}
    try:
        return int(annotations.get(REVISION_ANNOTATION, 0))
    except ValueError:
        return 0
