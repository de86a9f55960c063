"""The ReplicaSets of the services' Deployments: which one serves, and which service rolled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from demo_common import SERVICES

INSTANCE_LABEL = "app.kubernetes.io/instance"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def image_tag(image: str) -> str:
    """The tag of ``repository:tag`` (also of ``repository:tag@digest``)."""
    name = image.partition("@")[0]
    return name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""


@dataclass(frozen=True)
class ReplicaSet:
    """One ReplicaSet of a service's Deployment, as `kubectl get rs -o json` shows it."""

    service: str
    name: str
    uid: str
    revision: int
    desired: int
    ready: int
    tag: str


def parse_replica_sets(listing: Mapping[str, Any]) -> dict[str, list[ReplicaSet]]:
    """ReplicaSets per service (the Helm release label), newest revision first."""
    found: dict[str, list[ReplicaSet]] = {}
    for item in listing.get("items", []):
        meta = item.get("metadata", {})
        service = meta.get("labels", {}).get(INSTANCE_LABEL)
        if not service:
            continue
        containers = item["spec"]["template"]["spec"].get("containers", [])
        image = str(containers[0].get("image", "")) if containers else ""
        found.setdefault(service, []).append(
            ReplicaSet(
                service=service,
                name=meta["name"],
                uid=meta["uid"],
                revision=int(meta.get("annotations", {}).get(REVISION_ANNOTATION, "0")),
                desired=int(item["spec"].get("replicas") or 0),
                ready=int(item.get("status", {}).get("readyReplicas") or 0),
                tag=image_tag(image),
            )
        )
    for sets in found.values():
        sets.sort(key=lambda rs: rs.revision, reverse=True)
    return found


def serving(sets: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The ReplicaSet that runs the service's pods (the newest one with replicas)."""
    return next((rs for rs in sets if rs.desired > 0), None)


def rolled_services(
    before: Mapping[str, Sequence[ReplicaSet]], after: Mapping[str, Sequence[ReplicaSet]]
) -> dict[str, bool]:
    """Per service: True when its serving ReplicaSet is another one (new uid or revision)."""
    rolled = {}
    for service in SERVICES:
        old, new = serving(before.get(service, ())), serving(after.get(service, ()))
        rolled[service] = (
            old is None or new is None or (old.uid, old.revision) != (new.uid, new.revision)
        )
    return rolled
