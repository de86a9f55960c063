"""Observe a release's drift: its live objects against its recorded manifest (changes nothing)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deploy_contract.drift import DriftedField, DriftReport
from deployer.drift.compare import drifted_fields, kept_as_live
from deployer.drift.config import DriftRules
from deployer.plan import manifest_objects, normalise
from deployer.plan.live import as_helm_applies
from deployer.reconcile.objectkey import key_of
from deployer.reconcile.ports import LiveObjects


@dataclass(frozen=True)
class Drift:
    """One drift check of a release: the report, and the objects to apply to correct it (the
    manifest's, with the live value kept at every ignored pointer)."""

    report: DriftReport
    corrections: list[dict[str, Any]] = field(default_factory=list)


async def check_drift(
    service: str,
    objects: LiveObjects,
    manifest: str,
    rules: DriftRules,
    revision: int | None = None,
) -> Drift:
    """Compare the release's live objects with its ``manifest``; changes nothing. Raises
    :class:`deployer.adapters.kubeobjects.KubeApiError` on API errors."""
    desired = [
        as_helm_applies(obj, service, objects.namespace) for obj in manifest_objects(manifest)
    ]
    live, restored = await asyncio.gather(
        asyncio.gather(*(objects.get(key_of(obj)) for obj in desired)),
        asyncio.gather(*(objects.apply(obj, dry_run=True) for obj in desired)),
    )
    found: list[DriftedField] = []
    corrections = []
    for obj, now, wanted in zip(desired, live, restored, strict=True):
        fields = drifted_fields(
            normalise(now) if now is not None else None, normalise(wanted), rules.ignore
        )
        if fields:
            found += fields
            corrections.append(kept_as_live(obj, now or {}, rules.ignore))
    report = DriftReport(
        service=service,
        mode=rules.mode,
        checked_at=datetime.now(UTC),
        revision=revision,
        fields=found,
    )
    return Drift(report, corrections)
