"""Warnings about a plan's workloads, and the notices of changes that may need a person."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from deployer.plan.model import Attention, Notice, WorkloadPlan
from deployer.plan.objects import image_tag
from deployer.plan.quantities import parse_quantity
from deployer.plan.workloads import WORKLOAD_KINDS, config_refs, containers

_MEMORY_PATH = re.compile(
    r"(?:initContainers|containers)\[([^\]]+)\]\.resources\.(limits|requests)\.memory"
)
_LIMIT_PATH = re.compile(r"(?:initContainers|containers)\[([^\]]+)\]\.resources\.limits\.(\w+)")
# Replicas changed by this factor or more are a warning (the policy sets its own threshold).
REPLICAS_WARNING_FACTOR = 2.0


def workload_warnings(key: tuple[str, str], workload: dict[str, Any]) -> Iterator[str]:
    """What the new manifest of a workload lacks: limits, probes, an immutable tag."""
    kind, name = key
    if kind not in WORKLOAD_KINDS:
        return
    where = f"{kind}/{name}"
    for container in containers(workload):
        limits = container.get("resources", {}).get("limits", {})
        missing = [resource for resource in ("cpu", "memory") if resource not in limits]
        if missing:
            yield f"{where} container {container['name']} has no {' or '.join(missing)} limit"
        image = str(container.get("image", ""))
        tag = image_tag(image)
        if tag in (None, "latest"):
            what = "no tag" if tag is None else "the mutable tag 'latest'"
            yield (
                f"{where} container {container['name']} image {image!r} has {what}: pin an "
                f"immutable tag (<version>-<sha>) or a digest"
            )
    for container in containers(workload, init=False):
        probes = ("startupProbe", "livenessProbe", "readinessProbe")
        missing = [p.removesuffix("Probe") for p in probes if p not in container]
        if missing:
            yield f"{where} container {container['name']} has no {', '.join(missing)} probe"


def change_warnings(
    plan: WorkloadPlan, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> Iterator[str]:
    """Risky changes: lowered memory, configuration changing without rolling the pods, no pods."""
    where = f"{plan.kind}/{plan.name}"
    for change in plan.template_changes:
        memory = _MEMORY_PATH.fullmatch(change.path)
        before, after = parse_quantity(change.before), parse_quantity(change.after)
        if memory and before is not None and after is not None and after < before:
            container, what = memory.group(1), memory.group(2).removesuffix("s")
            risk = " (pods may be OOM-killed)" if what == "limit" else ""
            yield (
                f"{where} container {container}: memory {what} lowered "
                f"{change.before} -> {change.after}{risk}"
            )
    if plan.change != "rollout":
        for ref in plan.config_changes:
            yield (
                f"{ref} changed but the pod template of {where} did not: running pods keep the "
                f"old configuration until they restart; tie it to the template with a checksum "
                f"annotation (e.g. checksum/config)"
            )
    replicas = (new or {}).get("spec", {}).get("replicas")
    before_replicas = (old or {}).get("spec", {}).get("replicas")
    if replicas == 0 and before_replicas != 0:
        since = f" from {before_replicas}" if before_replicas is not None else ""
        yield f"{where} replicas reduced{since} to 0: the service will have no pods"


def workload_notices(
    plan: WorkloadPlan, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> Iterator[Notice]:
    """Lowered limits, changed replicas and newly read Secrets of one workload."""
    if old is None or new is None:
        return
    where = f"{plan.kind}/{plan.name}"
    for change in plan.template_changes:
        limit = _LIMIT_PATH.fullmatch(change.path)
        before, after = parse_quantity(change.before), parse_quantity(change.after)
        if limit and before is not None and after is not None and after < before:
            yield Notice(
                kind=Attention.LIMIT_LOWERED,
                workload=where,
                detail=f"container {limit.group(1)}: {limit.group(2)} limit "
                f"{change.before} -> {change.after}",
            )
    replicas = new.get("spec", {}).get("replicas")
    before_replicas = old.get("spec", {}).get("replicas")
    if (
        isinstance(replicas, int)
        and isinstance(before_replicas, int)
        and replicas != before_replicas
        and min(replicas, before_replicas) > 0
    ):
        factor = max(replicas, before_replicas) / min(replicas, before_replicas)
        yield Notice(
            kind=Attention.REPLICAS_CHANGED,
            workload=where,
            detail=f"replicas {before_replicas} -> {replicas} (x{factor:g})",
            factor=factor,
        )
    old_secrets = {ref for ref in config_refs(old) if ref.startswith("Secret/")}
    for ref in sorted(r for r in config_refs(new) if r.startswith("Secret/")):
        if ref not in old_secrets:
            yield Notice(
                kind=Attention.SECRET_ADDED, workload=where, detail=f"the pods now read {ref}"
            )


def notice_warns(notice: Notice) -> bool:
    """Whether a notice is also a warning of the plan."""
    # Lowered memory is warned about already, with the OOM risk.
    if notice.kind is Attention.LIMIT_LOWERED:
        return "memory limit" not in notice.detail
    if notice.kind is Attention.REPLICAS_CHANGED:
        return (notice.factor or 1) >= REPLICAS_WARNING_FACTOR
    return True


def notice_warning(notice: Notice) -> str:
    """A notice as the plan's warning."""
    return f"{notice.workload} {notice.detail}"
