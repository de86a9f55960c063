"""Differences between two normalised objects, leaf by leaf, as plans show them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from deploy_contract.changes import FieldChange
from deployer.plan.quantities import parse_quantity

VALUE_LIMIT = 200


def diff(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, before, after) for every differing leaf; named lists are matched by name."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = f"{path}[{key}]" if re.search(r"[./]", str(key)) else f"{path}.{key}".lstrip(".")
            yield from diff(old.get(key), new.get(key), sub)
    elif _named(old) and _named(new):
        before = {item["name"]: item for item in old}
        after = {item["name"]: item for item in new}
        for name in sorted(before.keys() | after.keys(), key=lambda n: (n not in before, n)):
            yield from diff(before.get(name), after.get(name), f"{path}[{name}]")
        # Order counts (the controller compares lists in order): the same items moved.
        kept_before = [name for name in before if name in after]
        kept_after = [name for name in after if name in before]
        if kept_before != kept_after:
            yield f"{path}(order)", ", ".join(kept_before), ", ".join(kept_after)
    elif old != new and not _same_quantity(path, old, new):
        yield path, old, new


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """Every differing leaf of two normalised objects, with its values as plans show them."""
    return [FieldChange(path=p, before=shown(b), after=shown(a)) for p, b, a in diff(old, new)]


def _named(value: Any) -> bool:
    """A list of objects with unique names (containers, volumes, env, ports...)."""
    if not isinstance(value, list) or not value:
        return False
    names = [item.get("name") if isinstance(item, dict) else None for item in value]
    return None not in names and len(set(names)) == len(names)


def _same_quantity(path: str, old: Any, new: Any) -> bool:
    if "resources." not in path or old is None or new is None:
        return False
    before, after = parse_quantity(old), parse_quantity(new)
    return before is not None and before == after


def shown(value: Any) -> str | None:
    """A value as shown in a plan: scalars as text, structures as compact JSON, cut short."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."
