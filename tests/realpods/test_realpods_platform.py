"""The whole platform as real pods on the local cluster's real node: images built from the
Dockerfiles, NATS and PostgreSQL in the cluster, orders paid through the gateway pod, logs, exec
and readiness from the real processes, and pods replaced while orders flow without losing or
double-charging one."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.realpods.orderflow import (
    ORDER,
    OrderFlow,
    assert_each_order_paid_once,
    order_status,
    sign_up,
)
from tests.realpods.realcluster import (
    NODE_NAME,
    SERVICES,
    Platform,
    json_lines,
    pod_ready,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.real_node, pytest.mark.timeout(900)]


def test_every_workload_runs_as_a_real_pod_from_the_images_built_here(
    platform: Platform,
) -> None:
    pods = [
        *platform.pods(platform.namespace),
        *platform.pods("nats"),
        *platform.pods("postgres"),
    ]
    names = {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods}
    assert names >= {*SERVICES, "nats", "postgres"}
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE_NAME, pod["metadata"]["name"]
        assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        assert pod["status"]["podIP"].startswith("198.19.128."), pod["status"]["podIP"]
    for service in SERVICES:
        pushed = platform.images[service]
        for pod in platform.service_pods(service):
            (status,) = pod["status"]["containerStatuses"]
            # What the kubelet runs is what was pushed: the same manifest digest.
            assert status["imageID"].endswith(pushed.digest), (service, status["imageID"])
            assert status["image"] == pushed.image.reference


def test_an_order_placed_through_the_gateway_pod_is_paid(platform: Platform) -> None:
    with httpx.Client(base_url=platform.gateway, timeout=10) as http:
        auth = sign_up(http)
        response = http.post(
            "/api/orders", json=ORDER, headers={**auth, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        wait_until(
            lambda: order_status(http, auth, order_id) == "paid",
            timeout=30,
            what=f"order {order_id} paid",
            every=0.2,
        )
        payment = http.get(f"/api/payments/{order_id}", headers=auth)
        assert payment.status_code == 200, payment.text
    one = "SELECT count(*) FROM payments WHERE order_id = :'id'"
    assert platform.psql("payment", one, id=order_id) == "1"
    status = "SELECT status FROM orders WHERE id = :'id'"
    assert platform.psql("order", status, id=order_id) == "paid"


def test_kubectl_logs_show_the_json_logs_and_exec_reaches_the_process(
    platform: Platform,
) -> None:
    pod = platform.service_pods("order")[0]["metadata"]["name"]
    logs = platform.kubectl.run("logs", "-n", platform.namespace, pod).stdout
    records = json_lines(logs)
    assert records, logs[-2000:]
    assert {r.get("service") for r in records} == {"order"}
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    probe = (
        "import urllib.request as u; r = u.urlopen('http://127.0.0.1:8000/readyz'); "
        "print(r.status, open('/proc/1/cmdline').read().replace(chr(0), ' '))"
    )
    out = platform.kubectl.run(
        "exec", "-n", platform.namespace, pod, "--", "python", "-c", probe
    ).stdout
    assert out.startswith("200 python -m order_service.main"), out


def test_the_pods_gateway_keeps_one_mac_address_as_pods_come_and_go(platform: Platform) -> None:
    # Unpinned, the bridge would take the lowest MAC of its ports and change with every pod
    # added or removed, and pods that cached the old one would lose packets for seconds.
    bridge = Path("/sys/class/net/flotilla0")
    assert (bridge / "addr_assign_type").read_text().strip() == "3", "set, not inherited"
    mac = (bridge / "address").read_text().strip()
    deleted, staying = (p["metadata"]["name"] for p in platform.service_pods("order"))
    platform.kubectl.run("delete", "pod", "-n", platform.namespace, deleted, "--wait=true")

    def two_ready() -> bool:
        pods = platform.service_pods("order")
        return len(pods) == 2 and all(pod_ready(p) for p in pods)

    wait_until(two_ready, timeout=120, what="order back at 2 ready pods")
    assert (bridge / "address").read_text().strip() == mac
    # The pod that stayed still reaches its gateway at the address it had cached.
    arp = platform.kubectl.run(
        "exec", "-n", platform.namespace, staying, "--",
        "python", "-c", "print(open('/proc/net/arp').read())",
    ).stdout  # fmt: skip
    entries = [line.split() for line in arp.splitlines() if line.startswith("198.19.128.1 ")]
    assert entries, arp
    assert all(entry[3] == mac for entry in entries), (mac, arp)


def test_readiness_is_the_services_own_readyz(platform: Platform) -> None:
    """NATS gone: the services' /readyz answers 503 and the pods leave the endpoints; NATS back:
    they are ready again."""
    pod = platform.service_pods("order")[0]
    probe = pod["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz"
    scale = ("scale", "statefulset", "nats", "-n", "nats")
    members = platform.kubectl.json("get", "statefulset", "nats", "-n", "nats")["spec"]["replicas"]
    platform.kubectl.run(*scale, "--replicas=0")
    try:
        wait_until(
            lambda: not any(pod_ready(p) for p in platform.service_pods("order")),
            timeout=90,
            what="order pods not ready while NATS is down",
        )
        endpoints = platform.kubectl.json(
            "get", "endpointslices", "-n", platform.namespace,
            "-l", "kubernetes.io/service-name=order",
        )  # fmt: skip
        ready = [
            e
            for s in endpoints["items"]
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")
        ]
        assert ready == []
    finally:
        platform.kubectl.run(*scale, f"--replicas={members}")
    wait_until(
        lambda: all(pod_ready(p) for p in platform.service_pods("order")),
        timeout=120,
        what="order pods ready again with NATS back",
    )


def test_order_and_payment_pods_deleted_while_orders_flow_lose_and_double_charge_nothing(
    platform: Platform,
) -> None:
    before = {s: {p["metadata"]["name"] for p in platform.service_pods(s)} for s in SERVICES}
    with OrderFlow(platform, rate=4, count=60, workers=1) as flow:
        time.sleep(3)
        for service in ("order", "payment"):
            victim = sorted(before[service])[0]
            platform.kubectl.run("delete", "pod", "-n", platform.namespace, victim, "--wait=false")
            time.sleep(3)
    assert len(set(flow.placed)) == 60
    assert_each_order_paid_once(platform, flow, timeout=120)
    for service in ("order", "payment"):

        def full_strength(name: str = service) -> bool:
            pods = platform.service_pods(name)
            return len(pods) == len(before[name]) and all(pod_ready(p) for p in pods)

        wait_until(full_strength, timeout=120, what=f"{service} back at full strength")
        now = {p["metadata"]["name"] for p in platform.service_pods(service)}
        assert now != before[service], f"no {service} pod was replaced"
