"""The plan of a release: its objects as they are compared with the objects as they will be."""

from __future__ import annotations

from typing import Any, Literal

from deployer.plan.model import Notice, Plan
from deployer.plan.notices import (
    change_warnings,
    notice_warning,
    notice_warns,
    workload_notices,
    workload_warnings,
)
from deployer.plan.objects import by_key, manifest_objects
from deployer.plan.workloads import CONFIG_KINDS, WORKLOAD_KINDS, resource_change, workload_plan


def plan_release(service: str, current_manifest: str | None, new_manifest: str) -> Plan:
    """Compare the deployed manifests (None: no release yet) with the new ones, as rendered
    (without a cluster to ask). Pure."""
    return plan_objects(
        service,
        by_key(manifest_objects(current_manifest or "")),
        by_key(manifest_objects(new_manifest)),
        installed=current_manifest is not None,
    )


def plan_objects(
    service: str,
    old: dict[tuple[str, str], dict[str, Any]],
    new: dict[tuple[str, str], dict[str, Any]],
    *,
    installed: bool,
) -> Plan:
    """Compare objects by (kind, name), as they are (``old``) and as they will be (``new``), both
    normalised (:func:`~deployer.plan.objects.normalise`); ``installed``: the release exists.
    Pure."""
    resources = [
        change
        for key in sorted(old.keys() | new.keys())
        if key[0] not in WORKLOAD_KINDS
        for change in [resource_change(key, old.get(key), new.get(key))]
        if change is not None
    ]
    changed_config = {f"{r.kind}/{r.name}" for r in resources if r.kind in CONFIG_KINDS}
    workloads = [
        workload_plan(key, old.get(key), new.get(key), changed_config, bool(resources))
        for key in sorted(old.keys() | new.keys())
        if key[0] in WORKLOAD_KINDS
    ]
    warnings = [w for key, obj in sorted(new.items()) for w in workload_warnings(key, obj)]
    notices: list[Notice] = []
    for plan in workloads:
        key = (plan.kind, plan.name)
        warnings += change_warnings(plan, old.get(key), new.get(key))
        found = list(workload_notices(plan, old.get(key), new.get(key)))
        notices += found
        warnings += [notice_warning(n) for n in found if notice_warns(n)]
    if not installed:
        action: Literal["install", "upgrade", "no-op"] = "install"
    elif resources or any(w.change != "no-op" for w in workloads):
        action = "upgrade"
    else:
        action = "no-op"
    return Plan(
        service=service,
        action=action,
        workloads=workloads,
        resources=resources,
        warnings=warnings,
        notices=notices,
    )
