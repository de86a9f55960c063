"""Paths into chart values, as reasons name them: ``extraSecretEnv[0].existingSecret``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class ValuePath(tuple[str | int, ...]):
    """Keys (mapping keys and list indexes) from the values' root."""

    def child(self, key: str | int) -> ValuePath:
        """The path one level further down."""
        return ValuePath((*self, key))

    def dotted(self) -> str:
        """The mapping keys joined by dots, as the policy's paths are written (no indexes)."""
        return ".".join(str(key) for key in self if isinstance(key, str))

    def __str__(self) -> str:
        text = ""
        for key in self:
            text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
        return text


ROOT = ValuePath()


def leaves(values: Any, path: ValuePath = ROOT) -> Iterator[tuple[ValuePath, Any]]:
    """Every value a deployment sets: scalars, lists (whole) and empty mappings, with paths."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, path.child(str(key)))
    elif path:
        yield path, values


def walk(values: Any, path: ValuePath = ROOT) -> Iterator[tuple[ValuePath, Any]]:
    """Every node under ``values``, into mappings and lists alike, with its path."""
    yield path, values
    if isinstance(values, dict):
        for key, item in values.items():
            yield from walk(item, path.child(str(key)))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from walk(item, path.child(index))


def lookup(values: Any, path: ValuePath) -> Any:
    """The value at ``path``, or None where the path does not exist."""
    for key in path:
        if isinstance(key, int):
            values = values[key] if isinstance(values, list) and key < len(values) else None
        else:
            values = values.get(key) if isinstance(values, dict) else None
        if values is None:
            return None
    return values


def shown(value: Any) -> str:
    """A value as a reason quotes it (JSON, shortened)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
