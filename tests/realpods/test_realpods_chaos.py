"""A piece of the data plane dies while orders flow through the gateway pod: PostgreSQL's pod
deleted, one member of the NATS cluster deleted under 50 orders a second, NATS itself rolled
member by member. No order the API accepted is lost (each ends ``paid``) and none is charged
twice (one payment and one processor charge per order). Each test prints the outage the flow
saw (how long orders were refused, how long none was paid) and how many requests it retried."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest

from pipelines_cli.imagebuild import ensure_image
from pipelines_cli.incluster import install_release
from tests.e2e.clustersupport import REPO_ROOT
from tests.realpods.orderflow import (
    Ledgers,
    OrderFlow,
    assert_each_order_paid_once,
    longest_pause_in_payments,
)
from tests.realpods.realcluster import Platform, pod_ready, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.real_node, pytest.mark.chaos, pytest.mark.timeout(900)]

NATS_MEMBERS = 3


def pod(platform: Platform, namespace: str, name: str) -> dict[str, Any] | None:
    """One pod as the API server has it, or None while it does not exist."""
    found = platform.pods(namespace, f"statefulset.kubernetes.io/pod-name={name}")
    return found[0] if found else None


def wait_replaced(platform: Platform, namespace: str, name: str, old_uid: str) -> None:
    """Until a new pod ``name`` (another uid than ``old_uid``) is ready."""

    def replaced() -> bool:
        now = pod(platform, namespace, name)
        return now is not None and now["metadata"]["uid"] != old_uid and pod_ready(now)

    wait_until(replaced, timeout=150, what=f"{namespace}/{name} replaced and ready", every=0.5)


def uid(platform: Platform, namespace: str, name: str) -> str:
    """The uid of the running pod ``name``."""
    found = pod(platform, namespace, name)
    assert found is not None, f"no pod {namespace}/{name}"
    assert pod_ready(found), f"{namespace}/{name} is not ready"
    value: str = found["metadata"]["uid"]
    return value


def nats_members(platform: Platform) -> list[dict[str, Any]]:
    """The NATS cluster's pods, all of them ready."""
    members = platform.pods("nats", "app.kubernetes.io/name=nats")
    names = sorted(p["metadata"]["name"] for p in members)
    assert names == [f"nats-{n}" for n in range(NATS_MEMBERS)], names
    assert all(pod_ready(p) for p in members), "a NATS member is not ready"
    return members


def streams(platform: Platform, member: str = "nats-0") -> dict[str, dict[str, Any]]:
    """The JetStream streams as one NATS member's monitoring port reports them (by name: state,
    cluster); the node reaches the pods' addresses."""
    found = pod(platform, "nats", member)
    assert found is not None, f"no pod nats/{member}"
    address = found["status"]["podIP"]
    response = httpx.get(f"http://{address}:8222/jsz", params={"streams": "true"}, timeout=5)
    response.raise_for_status()
    (account,) = response.json()["account_details"]
    return {s["name"]: s for s in account["stream_detail"]}


def dead_letters(platform: Platform) -> int:
    """How many events the services have dead-lettered (the DEADLETTER stream's messages)."""
    count: int = streams(platform)["DEADLETTER"]["state"]["messages"]
    return count


def every_copy_current(platform: Platform, stream: str) -> bool:
    """Whether the leader of ``stream`` sees a copy on every other member, each caught up."""
    leader = streams(platform)[stream]["cluster"].get("leader")
    if not leader:
        return False
    replicas = streams(platform, leader)[stream]["cluster"].get("replicas", [])
    current = [leader, *(r["name"] for r in replicas if r.get("current"))]
    return sorted(current) == [f"nats-{n}" for n in range(NATS_MEMBERS)]


def each_order_paid_once(
    platform: Platform, flow: OrderFlow, dead_before: int, timeout: float
) -> Ledgers:
    """Every order of ``flow`` paid exactly once (assert_each_order_paid_once), and no event
    dead-lettered meanwhile: an ``orders.created`` dead-lettered leaves its order pending until
    someone replays it, which is why a failure names them."""
    try:
        ledgers = assert_each_order_paid_once(platform, flow, timeout)
    except AssertionError as exc:
        dead = dead_letters(platform) - dead_before
        raise AssertionError(f"{exc}; {dead} events dead-lettered meanwhile") from None
    assert dead_letters(platform) == dead_before, "events were dead-lettered"
    return ledgers


def seconds_after(moment: float, span: tuple[float, float] | None) -> str:
    """``span`` as seconds after ``moment``, for the printed report."""
    if span is None:
        return "none"
    return f"+{span[0] - moment:.1f} s .. +{span[1] - moment:.1f} s ({span[1] - span[0]:.1f} s)"


def report(event: str, moment: float, flow: OrderFlow, ledgers: Ledgers) -> tuple[float, float]:
    """Print what the flow saw of ``event`` (at ``moment``): when orders were refused, the
    longest pause in payments (returned), the orders and retries."""
    pause = longest_pause_in_payments(ledgers.paid_at, moment)
    print(
        f"\n{event}; orders refused {seconds_after(moment, flow.outage_after(moment))}; "
        f"no order paid {seconds_after(moment, pause)}. {flow.summary()}; "
        f"{ledgers.charge_attempts} processor attempts for {ledgers.charges} charges"
    )
    return pause


def test_postgres_deleted_while_orders_flow_loses_and_double_charges_nothing(
    platform: Platform,
) -> None:
    old = uid(platform, "postgres", "postgres-0")
    dead_before = dead_letters(platform)
    with OrderFlow(platform, rate=4, workers=4) as flow:
        time.sleep(5)
        deleted_at = time.time()
        platform.kubectl.run("delete", "pod", "-n", "postgres", "postgres-0", "--wait=false")
        wait_replaced(platform, "postgres", "postgres-0", old)
        ready_at = time.time()
        # Orders keep flowing once the new pod is ready, until they are accepted again.
        wait_until(
            lambda: any(a.ok and a.at > ready_at for a in flow.attempts),
            timeout=60,
            what="an order accepted after PostgreSQL came back",
            every=0.5,
        )
        time.sleep(3)
    ledgers = each_order_paid_once(platform, flow, dead_before, timeout=120)
    pause = report(
        f"PostgreSQL pod deleted: new pod ready {ready_at - deleted_at:.1f} s after the delete",
        deleted_at,
        flow,
        ledgers,
    )
    print(f"orders paid again {pause[1] - deleted_at:.1f} s after the delete")
    # The delete was felt: orders were refused while the database was away (else this test
    # would prove nothing), and payments paused.
    assert flow.outage_after(deleted_at) is not None, "no request failed: was PostgreSQL away?"
    assert pause[1] - pause[0] > 1, pause


def test_a_nats_member_deleted_under_50_orders_a_second_loses_and_double_charges_nothing(
    platform: Platform,
) -> None:
    # The leader of the stream the orders go to: the member whose loss asks most of the others.
    victim = streams(platform)["ORDERS"]["cluster"]["leader"]
    dead_before = dead_letters(platform)
    old = uid(platform, "nats", victim)
    with OrderFlow(platform, rate=50, workers=32, users=5) as flow:
        time.sleep(5)
        deleted_at = time.time()
        platform.kubectl.run("delete", "pod", "-n", "nats", victim, "--wait=false")
        wait_replaced(platform, "nats", victim, old)
        ready_at = time.time()
        time.sleep(5)
    ledgers = each_order_paid_once(platform, flow, dead_before, timeout=150)
    report(
        f"NATS member {victim} (the ORDERS stream's leader) deleted: back and ready "
        f"{ready_at - deleted_at:.1f} s after the delete",
        deleted_at,
        flow,
        ledgers,
    )
    assert flow.achieved_rate() >= 0.8 * flow.rate, flow.summary()
    wait_until(
        lambda: every_copy_current(platform, "ORDERS"),
        timeout=60,
        what="the ORDERS stream on all three members again, every copy current",
    )


def test_a_rollout_of_nats_under_traffic_loses_and_double_charges_nothing(
    platform: Platform,
) -> None:
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in nats_members(platform)}
    dead_before = dead_letters(platform)
    image = ensure_image(
        REPO_ROOT, "nats", platform.cluster.registry, tag=f"rollout-{secrets.token_hex(4)}"
    ).image.reference
    with OrderFlow(platform, rate=50, workers=32, users=5) as flow:
        time.sleep(5)
        began = time.time()
        install_release(REPO_ROOT, platform.cluster, "nats", image, namespace="nats", timeout=300)
        rolled = time.time() - began
        time.sleep(3)
    ledgers = each_order_paid_once(platform, flow, dead_before, timeout=150)
    report(f"NATS rolled to {image} in {rolled:.1f} s (helm upgrade --wait)", began, flow, ledgers)
    revision = platform.kubectl.json("get", "statefulset", "nats", "-n", "nats")["status"]
    assert revision["currentRevision"] == revision["updateRevision"], revision
    for member in nats_members(platform):
        name = member["metadata"]["name"]
        assert member["metadata"]["uid"] != before[name], f"{name} was not replaced"
        # The pod's spec, not its status: the kubelet may name the same image by its first tag.
        assert member["spec"]["containers"][0]["image"] == image, name
        labels = member["metadata"]["labels"]
        assert labels["controller-revision-hash"] == revision["updateRevision"], name
