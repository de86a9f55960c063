"""Plans from the API server: what an upgrade will store, compared with what is stored now.

Each object of the rendered manifest is server-side applied as a dry run, as helm will apply it
(field manager ``helm``, conflicts forced), against the live object: the answer is the object the
API server would store, after defaulting and admission. That is compared with the live object,
for every object of the release's recorded manifest and of the new one. The Deployment controller
rolls the pods exactly when the stored pod template changes (semantically: quantities by value,
list order significant), which is what :func:`deployer.plan.plan_objects` says as ``rollout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from deployer.plan.compare import plan_objects
from deployer.plan.model import Plan
from deployer.plan.objects import by_key, manifest_objects
from deployer.reconcile.objectkey import ObjectKey, key_of
from deployer.reconcile.ports import LiveObjects


async def read_live(
    objects: LiveObjects, manifest: str | None
) -> dict[ObjectKey, dict[str, Any] | None]:
    """The live object of each object of ``manifest`` (None: there is none), read at once."""
    keys = list(dict.fromkeys(key_of(obj) for obj in manifest_objects(manifest or "")))
    return dict(zip(keys, await asyncio.gather(*(objects.get(key) for key in keys)), strict=True))


async def plan_on_server(
    service: str,
    objects: LiveObjects,
    recorded_manifest: str | None,
    rendered: str,
    live: Mapping[ObjectKey, dict[str, Any] | None] | None = None,
) -> Plan:
    """The plan of deploying ``rendered`` over the release whose manifest is
    ``recorded_manifest`` (None: not installed), asked of the API server; changes nothing.
    ``live``: the objects read already (:func:`read_live`, e.g. while helm rendered); the rest
    are read now."""
    desired = [
        as_helm_applies(obj, service, objects.namespace) for obj in manifest_objects(rendered)
    ]
    read = dict(live or {})
    keys: dict[ObjectKey, None] = dict.fromkeys(
        [key_of(obj) for obj in manifest_objects(recorded_manifest or "")]
        + [key_of(obj) for obj in desired]
    )
    unread = [key for key in keys if key not in read]
    fetched, stored = await asyncio.gather(
        asyncio.gather(*(objects.get(key) for key in unread)),
        asyncio.gather(*(objects.apply(obj, dry_run=True) for obj in desired)),
    )
    read.update(zip(unread, fetched, strict=True))
    before = by_key(obj for key in keys if (obj := read[key]) is not None)
    after = by_key(stored)
    return plan_objects(service, before, after, installed=recorded_manifest is not None)


def as_helm_applies(obj: dict[str, Any], release: str, namespace: str) -> dict[str, Any]:
    """``obj`` with the ownership marks helm adds to every object it applies."""
    metadata = dict(obj.get("metadata") or {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        "meta.helm.sh/release-name": release,
        "meta.helm.sh/release-namespace": namespace,
    }
    metadata["labels"] = {**(metadata.get("labels") or {}), "app.kubernetes.io/managed-by": "Helm"}
    return {**obj, "metadata": metadata}
