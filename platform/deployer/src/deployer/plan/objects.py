"""A release's objects as plans compare them: parsed from a manifest, normalised, keyed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

# libyaml's safe loader parses a release's manifest about ten times faster (it is on the path
# from a pipeline event to helm); the pure-Python one where libyaml is missing.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
_SERVER_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
)


def manifest_objects(manifest: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest, as written; hooks are left out, as helm leaves them
    out of a release's manifest."""
    return [
        doc
        for doc in yaml.load_all(manifest, Loader=_LOADER)
        if isinstance(doc, dict)
        and doc.get("kind")
        and "helm.sh/hook" not in (doc.get("metadata") or {}).get("annotations", {})
    ]


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as plans compare it: without empty fields, status and what the API server or a
    controller keeps about it (managed fields, versions, the Deployment's revision)."""
    pruned: dict[str, Any] = _prune(obj)
    pruned.pop("status", None)
    metadata = pruned.setdefault("metadata", {})
    for field in _SERVER_METADATA:
        metadata.pop(field, None)
    metadata.get("labels", {}).pop("helm.sh/chart", None)
    annotations = metadata.get("annotations", {})
    annotations.pop(REVISION_ANNOTATION, None)
    if not annotations:
        metadata.pop("annotations", None)
    return pruned


def object_key(obj: dict[str, Any]) -> tuple[str, str]:
    """(kind, name) of an object."""
    return str(obj["kind"]), str((obj.get("metadata") or {}).get("name", ""))


def by_key(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects normalised (:func:`normalise`), by (kind, name), as plans take them."""
    return {object_key(obj): normalise(obj) for obj in objects}


def _prune(value: Any) -> Any:
    """``value`` without null, empty-map and empty-list fields (the API server drops them)."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def image_tag(image: str) -> str | None:
    """The image's tag; "" for a digest reference (immutable), None when it has neither."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None
