"""What a deployment will change, before it changes anything (docs/deploy-plans.md).

:func:`plan_objects` compares objects as they are with the objects as they will be. The deployer
gives it both from the API server (:mod:`deployer.liveplan`: the live objects, and a server-side
dry run of the new ones), so defaults and quantities are already as the server stores them;
:func:`plan_release` gives it two manifests (``helm get manifest`` and ``helm template``) where no
cluster can be asked. Only a change of a workload's ``.spec.template`` rolls its pods (lists
compared in order, as the Deployment controller does), so per workload (Deployment, StatefulSet,
DaemonSet) it says:

- ``install``: the workload is new; ``delete``: it goes away;
- ``rollout``: the pod template changed; ``fields`` names what (image, env, annotations, ...);
- ``scale-only``: only ``.spec.replicas`` changed;
- ``workload-only``: the workload changed outside its pod template (strategy, deadlines, its own
  labels): nothing rolls;
- ``config-only``: the workload is unchanged but a ConfigMap or Secret its pods read changed,
  so running pods keep the old configuration (also a warning);
- ``service-only``: the workload is unchanged, other resources of the release changed;
- ``no-op``: nothing in the release changed.

Normalisation before comparing parsed YAML (never text): hooks are left out (``helm get
manifest`` has none, ``helm template`` renders them); fields that are empty (``{}``, ``[]``,
null) count as absent, as the API server stores them; ``status``, ``metadata.creationTimestamp``
and the ``helm.sh/chart`` label of top-level objects are ignored (that label only names the chart
version, and changing it rolls nothing; inside a pod template every label counts); resource
quantities compare by value (``1`` = ``1000m``, ``1Gi`` = ``1024Mi``). Values of Secrets never
appear in a plan, only their key names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from deploy_contract.changes import FieldChange

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
CONFIG_KINDS = frozenset({"ConfigMap", "Secret"})
WorkloadChange = Literal[
    "install",
    "rollout",
    "scale-only",
    "workload-only",
    "config-only",
    "service-only",
    "no-op",
    "delete",
]
VALUE_LIMIT = 200
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

# Pod template paths -> the names ``WorkloadPlan.fields`` uses.
_CONTAINER_FIELDS = {
    "": "containers",
    "image": "image",
    "imagePullPolicy": "image",
    "env": "env",
    "envFrom": "env",
    "resources": "resources",
    "command": "command",
    "args": "args",
    "livenessProbe": "probes",
    "readinessProbe": "probes",
    "startupProbe": "probes",
    "securityContext": "securityContext",
    "volumeMounts": "volumes",
    "ports": "ports",
    "lifecycle": "lifecycle",
}
_POD_FIELDS = {
    "serviceAccountName": "serviceAccount",
    "automountServiceAccountToken": "serviceAccount",
    "affinity": "scheduling",
    "nodeSelector": "scheduling",
    "tolerations": "scheduling",
    "topologySpreadConstraints": "scheduling",
    "priorityClassName": "scheduling",
}
_CONTAINER_PATH = re.compile(r"(?:initContainers|containers)\[[^\]]*\]\.?(\w*)")
_QUANTITY = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(e[+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)
_MEMORY_PATH = re.compile(
    r"(?:initContainers|containers)\[([^\]]+)\]\.resources\.(limits|requests)\.memory"
)
_LIMIT_PATH = re.compile(r"(?:initContainers|containers)\[([^\]]+)\]\.resources\.limits\.(\w+)")
# Replicas changed by this factor or more are a warning (the policy sets its own threshold).
REPLICAS_WARNING_FACTOR = 2.0
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


class WorkloadPlan(BaseModel):
    """What happens to one workload and its pods."""

    kind: str
    name: str
    change: WorkloadChange
    fields: list[str] = Field(
        default_factory=list, description="What changed in the pod template (rolls the pods)."
    )
    template_changes: list[FieldChange] = Field(default_factory=list)
    spec_changes: list[FieldChange] = Field(
        default_factory=list, description="Changes outside the pod template (replicas, strategy)."
    )
    config_changes: list[str] = Field(
        default_factory=list, description="Changed ConfigMaps/Secrets the pods read, kind/name."
    )
    images: dict[str, str] = Field(default_factory=dict, description="container -> new image")


class Attention(StrEnum):
    """Kinds of planned change that may need a person (the policy can require approval)."""

    LIMIT_LOWERED = "limit-lowered"  # a container's CPU or memory limit lowered
    REPLICAS_CHANGED = "replicas-changed"  # .spec.replicas changed (by ``factor``)
    SECRET_ADDED = "secret-added"  # noqa: S105 - the pods read a Secret they did not read before


class Notice(BaseModel):
    """One change of a kind that may need a person."""

    kind: Attention
    workload: str = Field(examples=["Deployment/order"])
    detail: str = Field(examples=["container order: memory limit 256Mi -> 64Mi"])
    factor: float | None = Field(default=None, description="replicas-changed: new/old or old/new")


class ResourceChange(BaseModel):
    """A change of a resource that is not a workload; ``fields`` are paths, without values."""

    kind: str
    name: str
    change: Literal["added", "removed", "changed"]
    fields: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """What deploying the new manifests changes, per workload and per other resource."""

    service: str
    action: Literal["install", "upgrade", "no-op"]
    workloads: list[WorkloadPlan] = Field(default_factory=list)
    resources: list[ResourceChange] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    notices: list[Notice] = Field(
        default_factory=list, description="Changes that may need a person (see Attention)."
    )

    def summary(self) -> str:
        """One line for humans, e.g. ``order: rollout (image 1.0.0-a1b2c3d -> 1.1.0-b2c3d4e)``."""
        prefix = len(self.workloads) > 1
        parts = [
            f"{w.kind}/{w.name} " * prefix + _describe(w, self.resources) for w in self.workloads
        ]
        if not parts:
            parts = [f"{self.action} ({len(self.resources)} resources changed)"]
        line = f"{self.service}: {', '.join(parts)}"
        if self.warnings:
            count = len(self.warnings)
            line += f"; {count} warning{'s' if count > 1 else ''}"
        return line


def plan_release(service: str, current_manifest: str | None, new_manifest: str) -> Plan:
    """Compare the deployed manifests (None: no release yet) with the new ones, as rendered
    (without a cluster to ask). Pure."""
    return plan_objects(
        service,
        _by_key(manifest_objects(current_manifest or "")),
        _by_key(manifest_objects(new_manifest)),
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
    normalised (:func:`normalise`); ``installed``: the release exists. Pure."""
    resources = [
        change
        for key in sorted(old.keys() | new.keys())
        if key[0] not in WORKLOAD_KINDS
        for change in [_resource_change(key, old.get(key), new.get(key))]
        if change is not None
    ]
    changed_config = {f"{r.kind}/{r.name}" for r in resources if r.kind in CONFIG_KINDS}
    workloads = [
        _workload_plan(key, old.get(key), new.get(key), changed_config, bool(resources))
        for key in sorted(old.keys() | new.keys())
        if key[0] in WORKLOAD_KINDS
    ]
    warnings = [w for key, obj in sorted(new.items()) for w in _workload_warnings(key, obj)]
    notices: list[Notice] = []
    for plan in workloads:
        key = (plan.kind, plan.name)
        warnings += _change_warnings(plan, old.get(key), new.get(key))
        found = list(_notices(plan, old.get(key), new.get(key)))
        notices += found
        warnings += [_notice_warning(n) for n in found if _notice_warns(n)]
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


# ---- parsing and normalisation --------------------------------------------------------------


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


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {object_key(obj): normalise(obj) for obj in objects}


def _prune(value: Any) -> Any:
    """``value`` without null, empty-map and empty-list fields (the API server drops them)."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity (``500m``, ``256Mi``, ``1e3``) as a number; None if it is not one."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix.startswith("e"):
        return number.scaleb(int(suffix[1:]))
    return number.scaleb(_DECIMAL.get(suffix, 0))


# ---- diffing ----------------------------------------------------------------------------------


def _diff(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, before, after) for every differing leaf; named lists are matched by name."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = f"{path}[{key}]" if re.search(r"[./]", str(key)) else f"{path}.{key}".lstrip(".")
            yield from _diff(old.get(key), new.get(key), sub)
    elif _named(old) and _named(new):
        before = {item["name"]: item for item in old}
        after = {item["name"]: item for item in new}
        for name in sorted(before.keys() | after.keys(), key=lambda n: (n not in before, n)):
            yield from _diff(before.get(name), after.get(name), f"{path}[{name}]")
        # Order counts (the controller compares lists in order): the same items moved.
        kept_before = [name for name in before if name in after]
        kept_after = [name for name in after if name in before]
        if kept_before != kept_after:
            yield f"{path}(order)", ", ".join(kept_before), ", ".join(kept_after)
    elif old != new and not _same_quantity(path, old, new):
        yield path, old, new


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """Every differing leaf of two normalised objects, with its values as plans show them."""
    return [FieldChange(path=p, before=_shown(b), after=_shown(a)) for p, b, a in _diff(old, new)]


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


def _shown(value: Any) -> str | None:
    """A value as shown in a plan: scalars as text, structures as compact JSON, cut short."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."


def _field(path: str) -> str:
    """The field name a pod template path belongs to (``containers[app].env[X]`` -> env)."""
    container = _CONTAINER_PATH.match(path)
    if container:
        return _CONTAINER_FIELDS.get(container.group(1), container.group(1))
    head = re.match(r"\w+", path)
    name = head.group(0) if head else path
    return _POD_FIELDS.get(name, name)


# ---- resources and workloads ------------------------------------------------------------------


def _resource_change(
    key: tuple[str, str], old: dict[str, Any] | None, new: dict[str, Any] | None
) -> ResourceChange | None:
    kind, name = key
    if old is None:
        return ResourceChange(kind=kind, name=name, change="added")
    if new is None:
        return ResourceChange(kind=kind, name=name, change="removed")
    fields = [path for path, _, _ in _diff(old, new)]
    return ResourceChange(kind=kind, name=name, change="changed", fields=fields) if fields else None


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = workload.get("spec", {}).get("template", {})
    return template


def _without_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in workload.get("spec", {}).items() if k != "template"}
    return {**workload, "spec": spec}


def _containers(workload: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    pod = _template(workload).get("spec", {})
    yield from pod.get("initContainers", []) if init else []
    yield from pod.get("containers", [])


def _config_refs(workload: dict[str, Any]) -> set[str]:
    """The ConfigMaps and Secrets the workload's pods read (env, envFrom, volumes), kind/name."""
    refs = set()
    for container in _containers(workload):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                refs.add(f"ConfigMap/{source['configMapRef'].get('name')}")
            if "secretRef" in source:
                refs.add(f"Secret/{source['secretRef'].get('name')}")
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                refs.add(f"ConfigMap/{ref['configMapKeyRef'].get('name')}")
            if "secretKeyRef" in ref:
                refs.add(f"Secret/{ref['secretKeyRef'].get('name')}")
    for volume in _template(workload).get("spec", {}).get("volumes", []):
        sources = [volume, *volume.get("projected", {}).get("sources", [])]
        for source in sources:
            if "configMap" in source:
                refs.add(f"ConfigMap/{source['configMap'].get('name')}")
            if "secret" in source:
                secret = source["secret"]
                refs.add(f"Secret/{secret.get('secretName') or secret.get('name')}")
    return refs


def _workload_plan(
    key: tuple[str, str],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    changed_config: set[str],
    others_changed: bool,
) -> WorkloadPlan:
    kind, name = key
    if new is None:
        return WorkloadPlan(kind=kind, name=name, change="delete")
    images = {c["name"]: str(c.get("image")) for c in _containers(new, init=False)}
    if old is None:
        return WorkloadPlan(kind=kind, name=name, change="install", images=images)
    template = [
        FieldChange(path=p, before=_shown(b), after=_shown(a))
        for p, b, a in _diff(_template(old), _template(new))
    ]
    template = [
        change.model_copy(update={"path": re.sub(r"^(metadata|spec)\.", "", change.path)})
        for change in template
    ]
    spec = [
        FieldChange(path=p, before=_shown(b), after=_shown(a))
        for p, b, a in _diff(_without_template(old), _without_template(new))
    ]
    config = sorted(_config_refs(new) & changed_config)
    change: WorkloadChange
    if template:
        change = "rollout"
    elif spec:
        change = "scale-only" if [c.path for c in spec] == ["spec.replicas"] else "workload-only"
    elif config:
        change = "config-only"
    else:
        change = "service-only" if others_changed else "no-op"
    return WorkloadPlan(
        kind=kind,
        name=name,
        change=change,
        fields=sorted({_field(c.path) for c in template}),
        template_changes=template,
        spec_changes=spec,
        config_changes=config,
        images=images,
    )


# ---- warnings ---------------------------------------------------------------------------------


def _workload_warnings(key: tuple[str, str], workload: dict[str, Any]) -> Iterator[str]:
    """What the new manifest of a workload lacks: limits, probes, an immutable tag."""
    kind, name = key
    if kind not in WORKLOAD_KINDS:
        return
    where = f"{kind}/{name}"
    for container in _containers(workload):
        limits = container.get("resources", {}).get("limits", {})
        missing = [resource for resource in ("cpu", "memory") if resource not in limits]
        if missing:
            yield f"{where} container {container['name']} has no {' or '.join(missing)} limit"
        image = str(container.get("image", ""))
        tag = _tag(image)
        if tag in (None, "latest"):
            what = "no tag" if tag is None else "the mutable tag 'latest'"
            yield (
                f"{where} container {container['name']} image {image!r} has {what}: pin an "
                f"immutable tag (<version>-<sha>) or a digest"
            )
    for container in _containers(workload, init=False):
        probes = ("startupProbe", "livenessProbe", "readinessProbe")
        missing = [p.removesuffix("Probe") for p in probes if p not in container]
        if missing:
            yield f"{where} container {container['name']} has no {', '.join(missing)} probe"


def _tag(image: str) -> str | None:
    """The image's tag; "" for a digest reference (immutable), None when it has neither."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def _change_warnings(
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


def _notices(
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
    old_secrets = {ref for ref in _config_refs(old) if ref.startswith("Secret/")}
    for ref in sorted(r for r in _config_refs(new) if r.startswith("Secret/")):
        if ref not in old_secrets:
            yield Notice(
                kind=Attention.SECRET_ADDED, workload=where, detail=f"the pods now read {ref}"
            )


def _notice_warns(notice: Notice) -> bool:
    # Lowered memory is warned about already, with the OOM risk.
    if notice.kind is Attention.LIMIT_LOWERED:
        return "memory limit" not in notice.detail
    if notice.kind is Attention.REPLICAS_CHANGED:
        return (notice.factor or 1) >= REPLICAS_WARNING_FACTOR
    return True


def _notice_warning(notice: Notice) -> str:
    return f"{notice.workload} {notice.detail}"


def _describe(workload: WorkloadPlan, resources: list[ResourceChange]) -> str:
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
    tag = _tag(image)
    return tag if tag else image
