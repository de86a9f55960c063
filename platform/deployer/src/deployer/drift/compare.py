"""The drift of one object: a pure comparison of the live object with what its manifest says."""

from __future__ import annotations

from typing import Any

from deploy_contract.drift import DriftedField
from deployer.drift.config import IgnoreRule
from deployer.plan import field_changes


def _parts(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def without_pointer(obj: Any, pointer: str) -> Any:
    """``obj`` without the value at the JSON pointer (unchanged when there is none). Pure."""
    parts = _parts(pointer)
    return _remove(obj, parts) if parts else obj


def kept_as_live(obj: dict[str, Any], live: dict[str, Any], ignore: list[IgnoreRule]) -> Any:
    """``obj`` with the live value at every ignored pointer, so that applying it changes no
    ignored field (an HPA's replica count stays). Pure."""
    kind, name = str(obj.get("kind", "")), str(obj.get("metadata", {}).get("name", ""))
    result: Any = obj
    for rule in ignore:
        if rule.applies_to(kind, name):
            for pointer in rule.paths:
                parts = _parts(pointer)
                found, value = _lookup(live, parts)
                if found and parts:
                    result = _put(result, parts, value)
    return result


def _lookup(value: Any, parts: list[str]) -> tuple[bool, Any]:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _put(value: Any, parts: list[str], new: Any) -> Any:
    if not parts:
        return new
    head, rest = parts[0], parts[1:]
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        return [*value[:index], _put(value[index], rest, new), *value[index + 1 :]]
    if isinstance(value, dict):
        return {**value, head: _put(value.get(head, {}), rest, new)}
    return value


def _remove(value: Any, parts: list[str]) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict) and head in value:
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _remove(value[head], rest)}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        if not rest:
            return value[:index] + value[index + 1 :]
        return [*value[:index], _remove(value[index], rest), *value[index + 1 :]]
    return value


def drifted_fields(
    live: dict[str, Any] | None, desired: dict[str, Any], ignore: list[IgnoreRule]
) -> list[DriftedField]:
    """The drift of one object: ``live`` (None: deleted) against ``desired``, both normalised,
    without the ignored pointers. Pure."""
    kind = str(desired.get("kind", ""))
    name = str(desired.get("metadata", {}).get("name", ""))
    label = f"{kind}/{name}"
    if live is None:
        return [DriftedField(object=label, path="(object)", before=None, after="present")]
    for rule in ignore:
        if rule.applies_to(kind, name):
            for pointer in rule.paths:
                live, desired = without_pointer(live, pointer), without_pointer(desired, pointer)
    return [
        DriftedField(object=label, **change.model_dump()) for change in field_changes(live, desired)
    ]
