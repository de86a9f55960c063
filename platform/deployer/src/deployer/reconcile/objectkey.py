"""How the deployer names a Kubernetes object of a manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ObjectKey:
    """Identifies an object of a manifest: its kind and name (apiVersion says where it lives)."""

    api_version: str
    kind: str
    name: str

    @property
    def label(self) -> str:
        """``Kind/name``, as plans and drift reports name objects."""
        return f"{self.kind}/{self.name}"


def key_of(obj: dict[str, Any]) -> ObjectKey:
    """The key of a manifest object."""
    return ObjectKey(
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(obj.get("metadata", {}).get("name", "")),
    )
