"""The plan's verdict against the Deployment controller's, on the local control plane.

For each change of a corpus (chart values, and edits of the rendered manifest), the deployer's
plan is asked of the API server (plan/live.py) over the release as it is; then the change is
applied with helm exactly as the deployer applies it, and the controller's answer is read from the
Deployment's ``deployment.kubernetes.io/revision`` annotation (it moves when, and only when, the
controller rolls the pods to a new pod template). Every verdict must agree.

Both kinds of change are installed through one small chart whose only template is the manifest
(``.Files.Get``), so a hand-edited manifest goes through helm like a rendered one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.adapters.cluster import Cluster
from deployer.adapters.helm import SERVER_SIDE_APPLY
from deployer.intake.chartvalues import merge
from deployer.plan import REVISION_ANNOTATION, Plan
from deployer.plan.live import plan_on_server
from tests.e2e.clustersupport import Helm, Kubectl

RELEASE = "order"
BASE_VALUES: dict[str, Any] = {
    "image": {"repository": "registry.local/order-service", "tag": "1.0.0-aaaaaaa"},
    "replicaCount": 2,
    "database": {"existingSecret": "order-database"},
    # Two env variables, two volumes and mounts: the reordering cases need them.
    "identity": {"existingSecret": "flotilla-identity"},
    "nats": {"existingSecret": "order-nats", "credsKey": "creds"},
}
Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class Change:
    """One corpus entry: chart values over the base, and/or an edit of the rendered objects."""

    name: str
    values: dict[str, Any] | None = None
    edit: Callable[[Objects], None] | None = None


def find(objects: Objects, kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def pod(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: Objects) -> dict[str, Any]:
    first: dict[str, Any] = pod(objects)["containers"][0]
    return first


Edit = Callable[[Objects], None]


def on_pod(**fields: Any) -> Edit:
    """Set fields of the pod spec."""
    return lambda objects: pod(objects).update(fields)


def on_container(**fields: Any) -> Edit:
    """Set fields of the order container."""
    return lambda objects: container(objects).update(fields)


def on_metadata(kind: str, key: str, entries: dict[str, str], template: bool = False) -> Edit:
    """Add labels or annotations to an object, or to the Deployment's pod template."""

    def run(objects: Objects) -> None:
        target = find(objects, kind)
        metadata = target["spec"]["template"]["metadata"] if template else target["metadata"]
        metadata.setdefault(key, {}).update(entries)

    return run


def reorder(where: Callable[[Objects], list[Any]]) -> Edit:
    """Swap the first two items of a list."""

    def run(objects: Objects) -> None:
        items = where(objects)
        items[0], items[1] = items[1], items[0]

    return run


def labels_reversed(objects: Objects) -> None:
    metadata = find(objects, "Deployment")["spec"]["template"]["metadata"]
    metadata["labels"] = dict(reversed(list(metadata["labels"].items())))


def ports_protocol(objects: Objects) -> None:
    for port in container(objects)["ports"]:
        port["protocol"] = "TCP"


def memory_request_in_ki(objects: Objects) -> None:
    container(objects)["resources"]["requests"]["memory"] = "131072Ki"


def recreate(objects: Objects) -> None:
    find(objects, "Deployment")["spec"]["strategy"] = {"type": "Recreate"}


def service_port_added(objects: Objects) -> None:
    ports = find(objects, "Service")["spec"]["ports"]
    ports.append({"name": "extra", "port": 9999, "targetPort": 9999})


def config_edited(objects: Objects) -> None:
    find(objects, "ConfigMap")["data"]["SERVICE_LOG_LEVEL"] = "DEBUG"


def readiness_success_threshold(objects: Objects) -> None:
    container(objects)["readinessProbe"]["successThreshold"] = 1


def env_added(objects: Objects) -> None:
    container(objects)["env"].append({"name": "EXTRA", "value": "1"})


def limits(**quantities: str) -> dict[str, Any]:
    return {"resources": {"limits": quantities}}


CORPUS = [
    # No change at all, and changes the API server stores identically.
    Change("nothing changes", values={}),
    Change("memory limit in another unit (0.25Gi = 256Mi)", values=limits(memory="0.25Gi")),
    Change("cpu limit in another unit (0.5 = 500m)", values=limits(cpu="0.5")),
    Change("memory request in Ki (131072Ki = 128Mi)", edit=memory_request_in_ki),
    Change("dnsPolicy set to its default", edit=on_pod(dnsPolicy="ClusterFirst")),
    Change("restartPolicy set to its default", edit=on_pod(restartPolicy="Always")),
    Change("schedulerName set to its default", edit=on_pod(schedulerName="default-scheduler")),
    Change("terminationMessagePath set to its default",
           edit=on_container(terminationMessagePath="/dev/termination-log")),
    Change("terminationMessagePolicy set to its default",
           edit=on_container(terminationMessagePolicy="File")),
    Change("container port protocol set to its default", edit=ports_protocol),
    Change("readiness successThreshold set to its default", edit=readiness_success_threshold),
    Change("an empty annotations map on the pod template",
           edit=on_metadata("Deployment", "annotations", {}, template=True)),
    Change("pod labels written in another order", edit=labels_reversed),
    # The workload outside its pod template: nothing rolls.
    Change("replicas 2 -> 3", values={"replicaCount": 3}),
    Change("revisionHistoryLimit", values={"revisionHistoryLimit": 3}),
    Change("minReadySeconds", values={"minReadySeconds": 5}),
    Change("progressDeadlineSeconds", values={"progressDeadlineSeconds": 300}),
    Change("strategy maxSurge", values={"rollingUpdate": {"maxSurge": 1}}),
    Change("strategy maxUnavailable", values={"rollingUpdate": {"maxUnavailable": 1}}),
    Change("strategy Recreate", edit=recreate),
    Change("a label on the Deployment", edit=on_metadata("Deployment", "labels", {"team": "a"})),
    Change("an annotation on the Deployment",
           edit=on_metadata("Deployment", "annotations", {"example.com/owner": "team-a"})),
    Change("autoscaling on (replicas left to the HPA)", values={"autoscaling": {"enabled": True}}),
    # Other resources of the release: nothing rolls.
    Change("Service port", values={"service": {"port": 8080}}),
    Change("Service annotation",
           values={"service": {"annotations": {"example.com/lb": "internal"}}}),
    Change("a Service port added", edit=service_port_added),
    Change("PodDisruptionBudget", values={"podDisruptionBudget": {"maxUnavailable": 2}}),
    Change("ServiceAccount annotation",
           values={"serviceAccount": {"annotations": {"example.com/role": "order"}}}),
    Change("ConfigMap edited without its checksum", edit=config_edited),
    # The pod template: the pods roll.
    Change("image tag", values={"image": {"tag": "1.1.0-bbbbbbb"}}),
    Change("image pull policy", values={"image": {"pullPolicy": "Always"}}),
    Change("memory limit 256Mi -> 512Mi", values=limits(memory="512Mi")),
    Change("cpu request 50m -> 100m", values={"resources": {"requests": {"cpu": "100m"}}}),
    Change("config value (checksum/config moves)", values={"config": {"logLevel": "DEBUG"}}),
    Change("an extra config variable", values={"config": {"extra": {"FEATURE_X": "on"}}}),
    Change("a pod annotation", values={"podAnnotations": {"example.com/note": "x"}}),
    Change("a pod label", values={"podLabels": {"team": "orders"}}),
    Change("readiness period", values={"probes": {"readiness": {"periodSeconds": 10}}}),
    Change("liveness failure threshold", values={"probes": {"liveness": {"failureThreshold": 5}}}),
    Change("preStop sleep", values={"lifecycle": {"preStopSleepSeconds": 10}}),
    Change("tmp volume size", values={"tmpSizeLimit": "128Mi"}),
    Change("nodeSelector", values={"nodeSelector": {"example.com/disk": "ssd"}}),
    Change("a toleration", values={"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
    Change("a secret env variable", values={"extraSecretEnv": [
        {"name": "API_KEY", "existingSecret": "order-extra", "key": "api-key"}]}),
    Change("env variables reordered", edit=reorder(lambda o: container(o)["env"])),
    Change("volume mounts reordered", edit=reorder(lambda o: container(o)["volumeMounts"])),
    Change("volumes reordered", edit=reorder(lambda o: pod(o)["volumes"])),
    Change("an env variable added in the manifest", edit=env_added),
    Change("a pod template annotation added in the manifest",
           edit=on_metadata("Deployment", "annotations", {"example.com/at": "now"}, template=True)),
]  # fmt: skip


class RawChart:
    """A chart whose one template is a given manifest, installed as the deployer installs."""

    def __init__(self, directory: Path, helm: Helm, namespace: str) -> None:
        self.directory = directory
        self.helm = helm
        self.namespace = namespace
        directory.mkdir()
        (directory / "templates").mkdir()
        (directory / "Chart.yaml").write_text(
            "apiVersion: v2\nname: order\nversion: 0.1.0\nappVersion: corpus\n"
        )
        (directory / "templates" / "manifest.yaml").write_text('{{ .Files.Get "manifest.yaml" }}')

    def install(self, manifest: str) -> None:
        (self.directory / "manifest.yaml").write_text(manifest)
        self.helm.run(
            "upgrade", "--install", RELEASE, str(self.directory), "--namespace", self.namespace,
            "--reset-values", *SERVER_SIDE_APPLY,
        )  # fmt: skip

    def recorded(self) -> str:
        return self.helm.run("get", "manifest", RELEASE, "--namespace", self.namespace).stdout


def rendered(helm: Helm, chart: Path, namespace: str, values: dict[str, Any]) -> Objects:
    out = helm.run(
        "template", RELEASE, str(chart), "--namespace", namespace, "--values", "-",
        stdin=json.dumps(values),
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if isinstance(doc, dict)]


def settled_revision(kubectl: Kubectl, namespace: str) -> str:
    """The Deployment's revision once the controller observed its latest generation."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        deployment = kubectl.json("get", "deployment", RELEASE, "--namespace", namespace)
        observed = deployment.get("status", {}).get("observedGeneration", 0)
        if observed >= deployment["metadata"]["generation"]:
            return str(deployment["metadata"]["annotations"].get(REVISION_ANNOTATION))
        time.sleep(0.1)
    raise AssertionError("the Deployment controller did not observe the latest generation")


def pods_roll(plan: Plan) -> bool:
    return any(w.kind == "Deployment" and w.change == "rollout" for w in plan.workloads)


# 40-odd helm installs against a real API server: ~95 s alone, more on a loaded 2-core CI machine;
# the limit only catches a hang.
@pytest.mark.timeout(360)
def test_plans_agree_with_the_deployment_controller(
    repo_root: Path, tmp_path: Path, helm: Helm, kubectl: Kubectl, namespace: str
) -> None:
    assert len(CORPUS) >= 40
    assert len({change.name for change in CORPUS}) == len(CORPUS)
    chart = repo_root / "charts" / RELEASE
    raw = RawChart(tmp_path / "raw", helm, namespace)
    base = yaml.safe_dump_all(rendered(helm, chart, namespace, BASE_VALUES))
    raw.install(base)
    loop = asyncio.new_event_loop()
    objects = loop.run_until_complete(Cluster.connect(helm.kubeconfig, namespace))
    disagreements, verdicts = [], []
    try:
        for change in CORPUS:
            raw.install(base)  # every change starts from the base release
            before = settled_revision(kubectl, namespace)
            docs = rendered(helm, chart, namespace, merge(BASE_VALUES, change.values or {}))
            if change.edit is not None:
                change.edit(docs)
            manifest = yaml.safe_dump_all(docs)
            plan = loop.run_until_complete(
                plan_on_server(RELEASE, objects.objects, raw.recorded(), manifest)
            )
            raw.install(manifest)
            rolled = settled_revision(kubectl, namespace) != before
            verdicts.append((change.name, rolled))
            print(f"{'rolled ' if rolled else 'stayed '} {change.name}: {plan.summary()}")
            if pods_roll(plan) != rolled:
                disagreements.append(
                    f"{change.name}: the plan says {plan.summary()!r}, the controller "
                    f"{'rolled' if rolled else 'did not roll'} the pods"
                )
            if change.name == "nothing changes":
                assert plan.action == "no-op", plan.summary()
    finally:
        loop.run_until_complete(objects.close())
        loop.close()
    assert not disagreements, "\n".join(disagreements)
    # The corpus exercises both answers.
    assert {rolled for _, rolled in verdicts} == {True, False}
