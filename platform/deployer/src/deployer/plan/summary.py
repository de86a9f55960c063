"""The one-line summary of a plan's workloads (:meth:`deployer.plan.Plan.summary`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployer.plan.objects import image_tag

if TYPE_CHECKING:
    # Only for annotations: the model imports this module to build its summary.
    from deployer.plan.model import ResourceChange, WorkloadPlan


def describe(workload: WorkloadPlan, resources: list[ResourceChange]) -> str:
    """The summary of one workload's change, e.g. ``scale-only (replicas 2 -> 3)``."""
    if workload.change == "install":
        images = ", ".join(f"image {_short(image)}" for image in workload.images.values())
        return f"install ({images})" if images else "install"
    if workload.change == "rollout":
        moves = [
            f"image {_short(c.before)} -> {_short(c.after)}"
            for c in workload.template_changes
            if c.path.endswith(".image") and c.before and c.after
        ]
        shown_apart = {"annotations", "image"} if moves else {"annotations"}
        details = moves + [field for field in workload.fields if field not in shown_apart]
        details += [c.path for c in workload.template_changes if c.path.startswith("annotations[")]
        return f"rollout ({', '.join(details)})"
    if workload.change in ("scale-only", "workload-only"):
        shown = [
            f"{c.path.removeprefix('spec.')} {c.before or 'unset'} -> {c.after or 'unset'}"
            for c in workload.spec_changes
        ]
        return f"{workload.change} ({', '.join(shown[:3])})"
    if workload.change == "config-only":
        return f"config-only ({', '.join(workload.config_changes)} changed; pods do not roll)"
    if workload.change == "service-only":
        changed = [f"{r.kind}/{r.name} {r.change}" for r in resources]
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return f"service-only ({', '.join(changed[:3])}{more})"
    return workload.change


def _short(image: str | None) -> str:
    """An image reference shortened to its tag (or digest) for summaries."""
    if image is None:
        return "none"
    if "@" in image:
        return image.rsplit("@", 1)[1][:19]
    tag = image_tag(image)
    return tag if tag else image
