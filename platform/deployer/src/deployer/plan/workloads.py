"""What happens to each workload (and its pods) and to each other resource of a release."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from deployer.plan.diff import diff, field_changes
from deployer.plan.model import ResourceChange, WorkloadChange, WorkloadPlan

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
CONFIG_KINDS = frozenset({"ConfigMap", "Secret"})

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


def _field(path: str) -> str:
    """The field name a pod template path belongs to (``containers[app].env[X]`` -> env)."""
    container = _CONTAINER_PATH.match(path)
    if container:
        return _CONTAINER_FIELDS.get(container.group(1), container.group(1))
    head = re.match(r"\w+", path)
    name = head.group(0) if head else path
    return _POD_FIELDS.get(name, name)


def resource_change(
    key: tuple[str, str], old: dict[str, Any] | None, new: dict[str, Any] | None
) -> ResourceChange | None:
    """What happens to one resource that is not a workload; None when nothing does."""
    kind, name = key
    if old is None:
        return ResourceChange(kind=kind, name=name, change="added")
    if new is None:
        return ResourceChange(kind=kind, name=name, change="removed")
    fields = [path for path, _, _ in diff(old, new)]
    return ResourceChange(kind=kind, name=name, change="changed", fields=fields) if fields else None


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = workload.get("spec", {}).get("template", {})
    return template


def _without_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in workload.get("spec", {}).items() if k != "template"}
    return {**workload, "spec": spec}


def containers(workload: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    """The containers of the workload's pods, init containers first unless ``init`` is False."""
    pod = _template(workload).get("spec", {})
    yield from pod.get("initContainers", []) if init else []
    yield from pod.get("containers", [])


def config_refs(workload: dict[str, Any]) -> set[str]:
    """The ConfigMaps and Secrets the workload's pods read (env, envFrom, volumes), kind/name."""
    refs = set()
    for container in containers(workload):
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


def workload_plan(
    key: tuple[str, str],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    changed_config: set[str],
    others_changed: bool,
) -> WorkloadPlan:
    """What happens to one workload, given the changed ConfigMaps/Secrets of the release and
    whether any other resource of it changed."""
    kind, name = key
    if new is None:
        return WorkloadPlan(kind=kind, name=name, change="delete")
    images = {c["name"]: str(c.get("image")) for c in containers(new, init=False)}
    if old is None:
        return WorkloadPlan(kind=kind, name=name, change="install", images=images)
    template = [
        change.model_copy(update={"path": re.sub(r"^(metadata|spec)\.", "", change.path)})
        for change in field_changes(_template(old), _template(new))
    ]
    spec = field_changes(_without_template(old), _without_template(new))
    config = sorted(config_refs(new) & changed_config)
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
