"""Drift: fields of a release's live objects that no longer say what its manifest says.

Observe: each object of the release's recorded manifest is read live, and dry-run applied as helm
applies it (server-side, field manager ``helm``, conflicts forced): the answer is the object with
every field of the manifest restored, and nothing else touched. Choose: the fields where the two
differ, minus the ignored JSON pointers (``/spec/replicas`` when an HPA owns the count), are the
drift; a deleted object is drift too. Act, per service mode: ``off`` (not checked), ``warn``
(reported, left alone) or ``correct`` (the drifted objects are applied again, for real, and what
changed back is reported).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deploy_contract.drift import DriftedField, DriftMode, DriftReport
from deployer.acts.correct_drift import correct_drift
from deployer.kubeobjects import KubeObjects, key_of
from deployer.plan import field_changes, manifest_objects, normalise
from deployer.plan.live import as_helm_applies


class IgnoreRule(BaseModel):
    """JSON pointers (RFC 6901) left out of drift, on the objects of ``kind`` (and ``name``)."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, examples=[["/spec/replicas"]])
    kind: str | None = Field(default=None, examples=["Deployment"])
    name: str | None = None

    @field_validator("paths")
    @classmethod
    def _pointers(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not a JSON pointer: start it with '/'")
        return paths

    def applies_to(self, kind: str, name: str) -> bool:
        """True when the rule covers the object ``kind``/``name``."""
        return self.kind in (None, kind) and self.name in (None, name)


class DriftRules(BaseModel):
    """A service's drift mode and ignore rules."""

    model_config = ConfigDict(extra="forbid")

    mode: DriftMode = DriftMode.WARN
    ignore: list[IgnoreRule] = Field(default_factory=list)


class DriftConfig(BaseModel):
    """Drift rules: ``default`` for every service, ``services`` per service (used whole)."""

    model_config = ConfigDict(extra="forbid")

    default: DriftRules = Field(default_factory=DriftRules)
    services: dict[str, DriftRules] = Field(default_factory=dict)

    def rules(self, service: str) -> DriftRules:
        """The rules of ``service``."""
        return self.services.get(service, self.default)


def load_drift_config(text: str | None) -> DriftConfig:
    """The drift rules from JSON or YAML text (DEPLOYER_DRIFT); None: warn on everything."""
    if not text:
        return DriftConfig()
    try:
        return DriftConfig.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise ValueError(f"DEPLOYER_DRIFT is not JSON or YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'drift'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"DEPLOYER_DRIFT is invalid: {problems}") from None


# ---- choose (pure) -------------------------------------------------------------------------


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


# ---- observe and act -------------------------------------------------------------------------


async def check_drift(
    service: str,
    objects: KubeObjects,
    manifest: str,
    rules: DriftRules,
    revision: int | None = None,
) -> DriftReport:
    """Compare the release's live objects with its ``manifest``; in ``correct`` mode apply the
    drifted objects again. Raises :class:`deployer.kubeobjects.KubeApiError` on API errors."""
    desired = [
        as_helm_applies(obj, service, objects.namespace) for obj in manifest_objects(manifest)
    ]
    live, restored = await asyncio.gather(
        asyncio.gather(*(objects.get(key_of(obj)) for obj in desired)),
        asyncio.gather(*(objects.apply(obj, dry_run=True) for obj in desired)),
    )
    found: list[DriftedField] = []
    drifted_objects = []
    for obj, now, wanted in zip(desired, live, restored, strict=True):
        fields = drifted_fields(
            normalise(now) if now is not None else None, normalise(wanted), rules.ignore
        )
        if fields:
            found += fields
            drifted_objects.append(kept_as_live(obj, now or {}, rules.ignore))
    corrected = False
    if found and rules.mode is DriftMode.CORRECT:
        await correct_drift(objects, drifted_objects)
        corrected = True
    return DriftReport(
        service=service,
        mode=rules.mode,
        checked_at=datetime.now(UTC),
        revision=revision,
        fields=found,
        corrected=corrected,
    )
