"""The nats chart as a JetStream cluster: what it renders for three members (routes to each,
Parallel start, a PodDisruptionBudget, anti-affinity, the route port in the NetworkPolicy), what
it refuses (an even count), that one member renders a plain server, that the service charts list
every member, and that the rendered configuration forms a cluster of real nats-servers whose
probes behave as the StatefulSet needs."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.localstack.ports import free_port, wait_until_listening
from devkit.localstack.process import http_status, terminate
from kit.events import EventBus
from kit.events.streams import ORDERS
from kit.settings import NatsSettings
from tests.charts.chartsupport import CHARTS, Helm, Manifest, Rendered, merge, minimal_values
from tests.charts.test_chart_dependencies import (
    NATS_USERS,
    base_values,
    password_variable,
    statefulset_pod,
)
from tests.charts.test_chart_local_values import render_local

REPO = Path(__file__).parents[2]
ROUTE = "nats://nats-{i}.nats-headless.nats.svc.cluster.local:6222"
MEMBER = "nats://nats-{i}.nats-headless.nats.svc.cluster.local:4222"


def render(helm: Helm, change: dict[str, Any] | None = None) -> Rendered:
    values = merge(base_values(), change or {})
    return helm.template("nats", values, release="nats", namespace="nats")


def config_of(rendered: Rendered) -> str:
    config: str = rendered.one("ConfigMap")["data"]["nats.conf"]
    return config


def routes(config: str) -> list[str]:
    """The route URLs of the cluster block."""
    block = re.search(r"(?s)\ncluster \{.*?routes: \[(.*?)\]", config)
    assert block is not None, "no cluster block with routes"
    return block.group(1).split()


def service(rendered: Rendered, name: str) -> Manifest:
    return next(s for s in rendered.of_kind("Service") if s["metadata"]["name"] == name)


def ports_of(rendered: Rendered, kind: str) -> dict[str, int]:
    """name -> port of the container ("container") or of the headless Service ("headless")."""
    if kind == "container":
        (container,) = statefulset_pod(rendered)["containers"]
        return {p["name"]: p["containerPort"] for p in container["ports"]}
    return {p["name"]: p["port"] for p in service(rendered, "nats-headless")["spec"]["ports"]}


@pytest.fixture(scope="module")
def three(helm: Helm) -> Rendered:
    return render(helm)


def test_three_members_route_to_each_other_by_their_dns_names(helm: Helm, three: Rendered) -> None:
    workload = three.one("StatefulSet")["spec"]
    assert workload["replicas"] == 3
    assert workload["podManagementPolicy"] == "Parallel"
    assert workload["serviceName"] == "nats-headless"
    config = config_of(three)
    assert routes(config) == [ROUTE.format(i=i) for i in range(3)]
    assert "server_name: $POD_NAME" in config
    assert re.search(r"\ncluster \{\n(.*\n)*?  name: nats\n  listen: 0\.0\.0\.0:6222\n", config)
    assert "  no_advertise: true\n" in config
    assert 'store_dir: "/data/jetstream"' in config, "each member's store on its own claim"
    assert len(workload["volumeClaimTemplates"]) == 1
    assert ports_of(three, "container")["cluster"] == 6222
    assert ports_of(three, "headless")["cluster"] == 6222
    headless = service(three, "nats-headless")
    assert headless["spec"]["publishNotReadyAddresses"] is True, "members find each other unready"
    client = service(three, "nats")
    assert [p["port"] for p in client["spec"]["ports"]] == [4222], "routes are not for clients"

    five = render(helm, {"cluster": {"replicas": 5, "name": "flotilla", "noAdvertise": False}})
    assert five.one("StatefulSet")["spec"]["replicas"] == 5
    assert routes(config_of(five)) == [ROUTE.format(i=i) for i in range(5)]
    assert "  name: flotilla\n" in config_of(five)
    assert "no_advertise" not in config_of(five)


def test_one_member_at_a_time_may_go_and_members_prefer_different_nodes(three: Rendered) -> None:
    budget = three.one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    labels = three.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    anti = statefulset_pod(three)["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti, "one node must do"
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_an_affinity_given_replaces_the_default_one(helm: Helm) -> None:
    mine: dict[str, Any] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    assert statefulset_pod(render(helm, {"affinity": mine}))["affinity"] == mine


def test_the_network_policy_opens_the_route_port_between_members_only(three: Rendered) -> None:
    policy = three.one("NetworkPolicy")["spec"]
    members = {"podSelector": policy["podSelector"]}
    ingress = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert "from" not in ingress["client"], "clients from any pod by default"
    assert ingress["cluster"]["from"] == [members]
    to_members, dns = policy["egress"]
    assert to_members == {"ports": [{"port": 6222, "protocol": "TCP"}], "to": [members]}
    assert {p["port"] for p in dns["ports"]} == {53}, "route names resolve through DNS"
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_one_member_renders_a_single_server(helm: Helm) -> None:
    single = render(helm, {"cluster": {"replicas": 1}})
    assert single.one("StatefulSet")["spec"]["replicas"] == 1
    config = config_of(single)
    assert "cluster {" not in config
    assert "routes" not in config
    assert "PodDisruptionBudget" not in single.kinds, "a budget of one would block every drain"
    assert "affinity" not in statefulset_pod(single)
    assert "cluster" not in ports_of(single, "container")
    assert "cluster" not in ports_of(single, "headless")
    assert single.one("NetworkPolicy")["spec"]["egress"] == []


@pytest.mark.parametrize("replicas", [2, 4])
def test_an_even_number_of_members_is_refused_saying_why(helm: Helm, replicas: int) -> None:
    error = helm.template_error("nats", merge(base_values(), {"cluster": {"replicas": replicas}}))
    assert f"cluster.replicas is {replicas}: JetStream's RAFT needs a majority" in error
    assert "Use 1 (a single server), 3 or 5." in error


def test_the_schema_refuses_no_members(helm: Helm) -> None:
    error = helm.template_error("nats", merge(base_values(), {"cluster": {"replicas": 0}}))
    assert "at '/cluster/replicas': minimum: got 0, want 1" in error


@pytest.mark.parametrize("chart", CHARTS)
def test_the_service_charts_list_every_member_with_three_copies(
    helm: Helm, three: Rendered, chart: str
) -> None:
    members = three.one("StatefulSet")["spec"]["replicas"]
    expected = ",".join(MEMBER.format(i=i) for i in range(members))
    defaults = helm.template(chart, minimal_values(chart)).config_data
    assert defaults["NATS_URL"] == expected
    assert defaults["NATS_STREAM_REPLICAS"] == str(members)
    local_members = render_local(helm, "nats").one("StatefulSet")["spec"]["replicas"]
    local = render_local(helm, chart).config_data
    assert local["NATS_URL"] == ",".join(MEMBER.format(i=i) for i in range(local_members))
    assert local["NATS_STREAM_REPLICAS"] == str(local_members)
    single = merge(
        minimal_values(chart), {"nats": {"url": MEMBER.format(i=0), "streamReplicas": 1}}
    )
    assert helm.template(chart, single).config_data["NATS_STREAM_REPLICAS"] == "1"


# --- The rendered configuration on three real nats-servers (the version the image installs).


class Member:
    """One member of the rendered StatefulSet as a local nats-server: the chart's nats.conf with
    its addresses moved to loopback ports and its store to a temp directory."""

    def __init__(self, index: int, directory: Path) -> None:
        self.index = index
        self.directory = directory / f"nats-{index}"
        self.client, self.monitor, self.route = free_port(), free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self, config: str, members: list[Member]) -> None:
        replacements = {
            "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{self.client}",
            "http: 0.0.0.0:8222": f"http: 127.0.0.1:{self.monitor}",
            "listen: 0.0.0.0:6222": f"listen: 127.0.0.1:{self.route}",
            'store_dir: "/data/jetstream"': f'store_dir: "{self.directory / "js"}"',
            **{ROUTE.format(i=m.index): f"nats://127.0.0.1:{m.route}" for m in members},
        }
        for rendered, local in replacements.items():
            assert rendered in config, rendered
            config = config.replace(rendered, local)
        self.directory.mkdir(parents=True)
        (self.directory / "nats.conf").write_text(config)

    def start(self, passwords: dict[str, str]) -> None:
        env = {password_variable(user): password for user, password in passwords.items()}
        log = (self.directory / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [str(REPO / ".venv/bin/nats-server"), "--config", str(self.directory / "nats.conf")],
            env={"POD_NAME": f"nats-{self.index}", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until_listening(self.process, self.client, 20, lambda: self.logs())

    def logs(self) -> str:
        return (self.directory / "nats-server.log").read_text(errors="replace")

    def status(self, path: str) -> int | None:
        return http_status(f"http://127.0.0.1:{self.monitor}{path}", timeout=1)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, grace=10)


@pytest.fixture
def members(three: Rendered, tmp_path: Path) -> Iterator[list[Member]]:
    made = [Member(index, tmp_path) for index in range(3)]
    for member in made:
        member.configure(config_of(three), made)
    yield made
    for member in made:
        member.stop()


def wait_for(member: Member, path: str, status: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while member.status(path) != status:
        assert time.monotonic() < deadline, f"{path} never {status}:\n{member.logs()[-3000:]}"
        time.sleep(0.1)


async def test_the_rendered_cluster_starts_only_together_and_keeps_three_copies(
    three: Rendered, members: list[Member]
) -> None:
    (container,) = statefulset_pod(three)["containers"]
    probe_paths: dict[str, str] = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    passwords = {user: f"p{user}{free_port()}x" for user in NATS_USERS}

    # Alone, a member is live and ready but never started: with OrderedReady the StatefulSet
    # would wait on it forever before creating the second pod. Hence Parallel.
    first = members[0]
    first.start(passwords)
    wait_for(first, probe_paths["readinessProbe"], 200)
    assert first.status(probe_paths["livenessProbe"]) == 200
    await asyncio.sleep(1)
    assert first.status(probe_paths["startupProbe"]) == 503

    for member in members[1:]:
        member.start(passwords)
    for member in members:
        wait_for(member, probe_paths["startupProbe"], 200)

    url = ",".join(f"nats://127.0.0.1:{m.client}" for m in members)
    settings = NatsSettings(url=url, user="order", password=passwords["order"], stream_replicas=3)
    bus = EventBus(settings, client_name="chart-cluster-test")
    await bus.connect()
    try:
        await bus.ensure_streams([ORDERS])
        info = await bus.js.stream_info(ORDERS.name)
    finally:
        await bus.drain()
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    assert info.cluster.name == "nats"
    placed = {info.cluster.leader, *(peer.name for peer in info.cluster.replicas or [])}
    assert placed == {"nats-0", "nats-1", "nats-2"}, "server_name is the pod's name"
