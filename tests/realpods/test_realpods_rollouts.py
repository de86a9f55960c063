"""The seed's claims on real pods, each under steady traffic through the gateway: a rollout of
order fails no request (three times in a row), payment drains on SIGTERM and loses or repeats
no payment, really broken builds and an OOM-killing memory limit are rolled back, a ConfigMap
change rolls the pods exactly when the checksum ties it to them, and a Service edit rolls
nothing. Every deployment goes through the deployer (CI's event over NATS)."""

from __future__ import annotations

import asyncio
import time

import pytest

from deploy_contract.events import DeployPhase
from pipelines_cli.incluster import EXITS_AT_START, NEVER_READY
from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.realcluster import Platform, json_lines, wait_until
from tests.realpods.rollouts import (
    RATE,
    PodLogs,
    active,
    container,
    deploy,
    deployment,
    in_thread,
    new_image,
    no_failures,
    planned,
    replica_sets,
    settled,
    traffic,
)

pytestmark = [pytest.mark.e2e, pytest.mark.real_node, pytest.mark.timeout(900)]


async def test_order_rolls_three_times_in_a_row_without_a_failed_request(
    platform: Platform, deployer: DeployerStack
) -> None:
    for run in range(1, 4):
        image = await in_thread(new_image, platform, "order")
        before = replica_sets(platform, "order")
        with traffic(platform) as load:
            await asyncio.sleep(3)  # steady state first
            load.mark("rollout")
            outcome = await deploy(deployer, "order", image)
            await in_thread(settled, platform, "order")
            load.mark("settled")
            await asyncio.sleep(2)
        report = load.report
        assert outcome.phase is DeployPhase.SUCCEEDED, outcome
        no_failures(report, f"rollout {run} of order at {RATE:g} requests/s")
        during = report.between("rollout", "settled")
        assert during.count >= RATE * 3, during  # the rollout really happened under load
        after = replica_sets(platform, "order")
        new = active(after) - active(before)
        assert len(new) == 1, (before, after)
        assert container(platform, "order")["image"] == image


async def test_payment_rolls_while_orders_flow_and_drains_what_it_holds(
    platform: Platform, deployer: DeployerStack
) -> None:
    image = await in_thread(new_image, platform, "payment")
    old = sorted(p["metadata"]["name"] for p in platform.service_pods("payment"))
    with PodLogs(platform, old) as logs, traffic(platform, rate=20.0, post_ratio=1.0) as load:
        await asyncio.sleep(3)
        outcome = await deploy(deployer, "payment", image)
        await in_thread(settled, platform, "payment")
        await in_thread(logs.wait, 60)
        await asyncio.sleep(2)
    report = load.report
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    no_failures(report, "payment's rollout")
    placed = report.order_ids
    assert len(placed) >= 60, report.summary()
    ids = ",".join(placed)

    def every_order_paid() -> bool:
        statuses = platform.psql(
            "order",
            "SELECT status, count(*) FROM orders WHERE id = ANY(string_to_array(:'ids', ',')) "
            "GROUP BY status",
            ids=ids,
        )
        return statuses == f"paid|{len(placed)}"

    wait_until(every_order_paid, timeout=120, what="every order placed during the rollout paid")
    payments = platform.psql(
        "payment",
        "SELECT count(*), count(DISTINCT order_id) FROM payments "
        "WHERE order_id = ANY(string_to_array(:'ids', ','))",
        ids=ids,
    )
    assert payments == f"{len(placed)}|{len(placed)}", payments
    charged = platform.psql(
        "payment",
        "SELECT count(*) FROM fake_processor_charges WHERE outcome IS NOT NULL "
        "AND idempotency_key = ANY(string_to_array(:'ids', ','))",
        ids=ids,
    )
    assert charged == str(len(placed)), charged
    # Each old pod stopped on SIGTERM after finishing what it held: its consumers say so.
    for pod in old:
        drained = [
            line
            for line in json_lines("".join(logs.lines[pod]))
            if line.get("message") == ("consumer drained")
        ]
        assert drained, f"{pod} logged no drain:\n{''.join(logs.lines[pod])[-2000:]}"
        for line in drained:
            assert line["left_for_redelivery"] == 0, line
            assert line["finished_while_draining"] == line["in_flight_at_stop"], line
        assert sum(line["handled"] for line in drained) > 0, drained


@pytest.mark.parametrize(
    ("command", "reason"),
    [(EXITS_AT_START, "Error"), (NEVER_READY, "NotReady")],
    ids=["exits-at-start", "readyz-503"],
)
async def test_a_really_broken_build_is_rolled_back_while_traffic_flows(
    platform: Platform, deployer: DeployerStack, command: tuple[str, ...], reason: str
) -> None:
    serving = container(platform, "order")["image"]
    before = active(replica_sets(platform, "order"))
    image = await in_thread(new_image, platform, "order", command)
    with traffic(platform) as load:
        await asyncio.sleep(2)
        outcome = await deploy(deployer, "order", image)
        await in_thread(settled, platform, "order")
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome
    no_failures(load.report, "the broken build's rollout and rollback")
    assert outcome.pod_problems, outcome
    reasons = {p.reason for p in outcome.pod_problems}
    assert reason in reasons or (reason == "Error" and "CrashLoopBackOff" in reasons), outcome
    if reason == "NotReady":
        assert "503" in (outcome.reason or ""), outcome.reason
    assert container(platform, "order")["image"] == serving
    assert active(replica_sets(platform, "order")) == before


async def test_crashing_new_pods_end_the_wait_long_before_any_deadline(
    platform: Platform, deployer: DeployerStack
) -> None:
    # No progress deadline to speak of and helm waiting 180 s: the deployer itself sees the new
    # containers crash, restart and crash again, and stops helm, which rolls back.
    serving = container(platform, "order")["image"]
    image = await in_thread(new_image, platform, "order", EXITS_AT_START)
    with traffic(platform) as load:
        await asyncio.sleep(2)
        began = time.monotonic()
        outcome = await deploy(deployer, "order", image, {"progressDeadlineSeconds": 600})
        took = time.monotonic() - began
        await in_thread(settled, platform, "order")
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome
    assert (outcome.reason or "").startswith("stopped waiting: the new pods cannot run"), outcome
    assert "context canceled" in (outcome.reason or ""), outcome.reason
    assert any(p.restarts >= 2 and p.exit_code == 1 for p in outcome.pod_problems or []), outcome
    assert took < 120, f"{took:.0f} s: the deployer waited for helm's 180 s timeout"
    no_failures(load.report, "the crashing build's rollout and rollback")
    assert container(platform, "order")["image"] == serving
    assert deployment(platform, "order")["spec"]["progressDeadlineSeconds"] != 600


async def test_a_memory_limit_below_the_working_set_is_oomkilled_and_rolled_back(
    platform: Platform, deployer: DeployerStack
) -> None:
    limits = container(platform, "order")["resources"]["limits"]
    image = await in_thread(new_image, platform, "order")
    lowered = {"resources": {"requests": {"memory": "48Mi"}, "limits": {"memory": "48Mi"}}}
    with traffic(platform) as load:
        await asyncio.sleep(2)
        outcome = await deploy(deployer, "order", image, lowered)
        await in_thread(settled, platform, "order")
    no_failures(load.report, "the OOM-killed rollout and its rollback")
    warnings = (await planned(deployer, outcome))["warnings"]
    assert any("memory limit lowered" in w and "OOM" in w for w in warnings), warnings
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome
    killed = [p for p in outcome.pod_problems or [] if p.reason == "OOMKilled"]
    assert killed, outcome
    assert {p.container for p in killed} == {"order"}, killed
    assert "OOMKilled" in (outcome.reason or ""), outcome.reason
    assert "container order" in (outcome.reason or ""), outcome.reason
    assert container(platform, "order")["resources"]["limits"] == limits


async def test_a_config_change_rolls_the_pods_exactly_when_the_checksum_ties_them(
    platform: Platform, deployer: DeployerStack
) -> None:
    image = container(platform, "order")["image"]
    # The link cut: the pod template no longer carries checksum/config (this itself rolls once).
    unlinked = {"config": {"rollOnChange": False}}
    assert (await deploy(deployer, "order", image, unlinked)).phase is DeployPhase.SUCCEEDED
    await in_thread(settled, platform, "order")
    before = replica_sets(platform, "order")
    changed = {"config": {"rollOnChange": False, "logLevel": "DEBUG"}}
    outcome = await deploy(deployer, "order", image, changed)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    warnings = (await planned(deployer, outcome))["warnings"]
    assert any("running pods keep the old configuration" in w for w in warnings), warnings
    assert replica_sets(platform, "order") == before
    configmap = platform.kubectl.json("get", "configmap", "order", "-n", platform.namespace)
    assert configmap["data"]["SERVICE_LOG_LEVEL"] == "DEBUG"
    assert set(started_log_levels(platform).values()) == {"INFO"}
    # With the checksum: exactly one new ReplicaSet, whose pods run with the new value.
    outcome = await deploy(deployer, "order", image, {"config": {"logLevel": "DEBUG"}})
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    await in_thread(settled, platform, "order")
    after = replica_sets(platform, "order")
    assert len(set(after) - set(before)) == 1, (before, after)
    assert set(started_log_levels(platform).values()) == {"DEBUG"}
    # Back to the values the other tests expect.
    assert (await deploy(deployer, "order", image)).phase is DeployPhase.SUCCEEDED
    await in_thread(settled, platform, "order")


def started_log_levels(platform: Platform) -> dict[str, str]:
    """Each running order pod's log level, as its process reported it at start."""
    levels = {}
    for pod in platform.service_pods("order"):
        name = pod["metadata"]["name"]
        logs = platform.kubectl.run("logs", "-n", platform.namespace, name).stdout
        started = [line for line in json_lines(logs) if line.get("message") == "service started"]
        assert started, f"{name} logged no start:\n{logs[-2000:]}"
        levels[name] = started[-1]["log_level"]
    return levels


async def test_a_service_edit_rolls_nothing_and_traffic_flows_on(
    platform: Platform, deployer: DeployerStack
) -> None:
    image = container(platform, "order")["image"]
    pods = {p["metadata"]["name"] for p in platform.service_pods("order")}
    before = replica_sets(platform, "order")
    edited = {"service": {"annotations": {"flotilla.dev/edited": "realpods"}}}
    with traffic(platform) as load:
        await asyncio.sleep(2)
        outcome = await deploy(deployer, "order", image, edited)
        await asyncio.sleep(3)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    no_failures(load.report, "the Service edit")
    plan = await planned(deployer, outcome)
    assert [w["change"] for w in plan["workloads"] if w["kind"] == "Deployment"] != ["rollout"]
    assert any(r["kind"] == "Service" for r in plan["resources"]), plan
    service = platform.kubectl.json("get", "service", "order", "-n", platform.namespace)
    assert service["metadata"]["annotations"]["flotilla.dev/edited"] == "realpods"
    assert replica_sets(platform, "order") == before
    assert {p["metadata"]["name"] for p in platform.service_pods("order")} == pods
