import asyncio
from datetime import UTC, datetime

from deploy_contract.events import DeployPhase
from deployer.queue.lanes import Lanes
from deployer.records import DeploymentRecord


def record(service: str, n: int) -> DeploymentRecord:
    return DeploymentRecord(
        id=f"{service}-{n}", service=service, phase=DeployPhase.QUEUED,
        received_at=datetime.now(UTC),
    )  # fmt: skip


async def test_a_busy_lane_keeps_only_the_newest_waiting_deployment() -> None:
    ran: list[str] = []
    superseded: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def run(r: DeploymentRecord) -> None:
        ran.append(r.id)
        await release.wait()

    async def supersede(old: DeploymentRecord, new: DeploymentRecord) -> None:
        superseded.append((old.id, new.id))

    lanes = Lanes(run, supersede, max_concurrent=4)
    for n in range(10):
        await lanes.submit(record("order", n))
        await asyncio.sleep(0)
    release.set()
    await lanes.wait_idle()
    assert ran == ["order-0", "order-9"]
    assert superseded == [(f"order-{n}", f"order-{n + 1}") for n in range(1, 9)]


async def test_lanes_run_in_parallel_under_the_global_limit() -> None:
    running = 0
    peak = 0

    async def run(r: DeploymentRecord) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    async def supersede(old: DeploymentRecord, new: DeploymentRecord) -> None:
        raise AssertionError("nothing waits in these lanes")

    lanes = Lanes(run, supersede, max_concurrent=2)
    for service in ("auth", "order", "payment", "gateway"):
        await lanes.submit(record(service, 1))
    await lanes.wait_idle()
    assert peak == 2
