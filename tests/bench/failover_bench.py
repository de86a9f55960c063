"""Failover: the deployer's standby taking over from a leader killed mid-upgrade (or stopped),
and the saga's latency while a member of a three-member NATS cluster is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import nats
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ClusterInfo
from nats.js.errors import Error as JetStreamError

from deploy_contract.events import DRIFTED_TYPE, DeployEventData, DeployPhase
from deploy_contract.promotions import PROMOTION_TYPE
from deployer.settings import DeployerSettings
from devkit.localstack.nats import NatsServer
from devkit.localstack.natscluster import NatsCluster
from devkit.localstack.process import ServiceProcess
from kit.events import CloudEvent, EventBus
from kit.events.streams import ORDERS
from tests.bench.saga_bench import RateResult, run_at_rate
from tests.bench.stats import ms, percentile, spread
from tests.deployer.deployer_stack import SERVICES, DeployerStack, metric
from tests.e2e.clustersupport import LocalCluster, create_test_namespace, unique_name
from tests.integration.saga_stack import SagaStack

SERVICE = "payment"
# helm waits this long for the upgraded pod, so the leader dies in the middle of the upgrade.
SLOW = {"podAnnotations": {"flotilla.dev/ready-after": "6s"}}
KILL_AFTER_STARTED = 1.0
POLL = 0.05
RATE = 100.0
MEMBER_LOST_AFTER = 3.0
LEASE_SECONDS = float(DeployerSettings.model_fields["lease_seconds"].default)


@dataclass(frozen=True)
class Takeover:
    """One leader gone, in seconds from the kill (or SIGTERM): until the standby leads, until
    it holds every lane, until the outcome of the deployment in flight (None: none in flight)."""

    to_lead: float
    to_every_lane: float
    to_outcome: float | None = None
    outcome: DeployPhase | None = None


@dataclass(frozen=True)
class DeployerFailover:
    """What the deployer's failover runs measured."""

    lease_seconds: float
    lanes: int
    kills: list[Takeover]
    stops: list[Takeover]


@dataclass(frozen=True)
class NatsMemberLoss:
    """The saga at a steady rate on a healthy cluster, and with a member killed in each run."""

    steady: list[RateResult]
    lost: list[RateResult]
    killed: list[str]  # the server_name killed in each lost run
    led_again: list[float]  # seconds from each kill until every stream and consumer had a leader


class DeployWatch:
    """Every deploy event of one service as CI sees it published, with when it arrived."""

    def __init__(self, bus: EventBus, service: str) -> None:
        self._bus = bus
        self._service = service
        self._seen: dict[str, list[tuple[DeployPhase, float]]] = defaultdict(list)
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> DeployWatch:
        self._subscription = await self._bus.nc.subscribe(
            f"deploy.{self._service}.>", cb=self._on_message
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        arrived = time.monotonic()
        event = CloudEvent.from_bytes(msg.data)
        if event.type in (DRIFTED_TYPE, PROMOTION_TYPE):
            return
        data = DeployEventData.model_validate(event.data)
        self._seen[data.deployment_id].append((data.phase, arrived))

    async def first(self, deployment_id: str, terminal: bool, timeout: float) -> float:
        """When (time.monotonic()) the deployment's first STARTED event (or, with
        ``terminal``, its first terminal event) arrived; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for phase, arrived in self._seen[deployment_id]:
                if phase.terminal if terminal else phase is DeployPhase.STARTED:
                    return arrived
            if time.monotonic() > deadline:
                phases = [phase.value for phase, _ in self._seen[deployment_id]]
                wanted = "a terminal event" if terminal else "its started event"
                raise AssertionError(
                    f"deployment {deployment_id} sent no {wanted} in {timeout} s (it sent "
                    f"{phases}); the replicas' logs follow"
                )
            await asyncio.sleep(POLL)


async def _seconds_until(
    process: ServiceProcess, name: str, value: float, since: float, timeout: float
) -> float:
    """Seconds from ``since`` until ``process``'s metric ``name`` reads ``value``."""
    while await metric(process, name) != value:
        if time.monotonic() - since > timeout:
            raise AssertionError(
                f"{process.name}: {name} not {value} {timeout} s after the leader went"
            )
        await asyncio.sleep(POLL)
    return time.monotonic() - since


def _children(pid: int) -> list[str]:
    """The command names of the processes ``pid`` started (read from /proc)."""
    names: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(FileNotFoundError):
                    names.append(Path(f"/proc/{child}/comm").read_text().strip())
    return names


def _kill_mid_helm(process: ServiceProcess) -> None:
    """kill -9 the deployer ``process`` while it runs helm (that helm then gets SIGTERM, which
    the deployer asks the kernel for)."""
    assert process.process is not None, f"{process.name} is not running"
    running = _children(process.process.pid)
    process.kill()
    if "helm" not in running:
        raise AssertionError(
            f"{process.name} ran no helm when it was killed (it ran {running}): the upgrade was "
            "not in flight; lengthen the new pod's ready-after (SLOW) or kill sooner "
            "(KILL_AFTER_STARTED)"
        )


@contextlib.contextmanager
def _logs_on_failure(*processes: ServiceProcess) -> Iterator[None]:
    """A failure inside says what each process logged last (the bench's directory is gone
    once it fails)."""
    try:
        yield
    except Exception as exc:
        tails = "".join(f"\n--- {p.name}:\n{p.logs()[-3000:]}" for p in processes)
        raise AssertionError(f"{exc}{tails}") from exc


async def _start_standby(process: ServiceProcess) -> None:
    await asyncio.to_thread(process.start)
    await asyncio.to_thread(process.wait_until, "/readyz", 200, 30)
    if await metric(process, "deployer_leader") != 0:
        raise AssertionError(f"{process.name} came back as the leader, not as the standby")


async def _kill_mid_upgrade(
    stack: DeployerStack, leader: ServiceProcess, standby: ServiceProcess, tag: str, timeout: float
) -> Takeover:
    async with DeployWatch(stack.ci, SERVICE) as watch:
        deployment = await stack.publish(SERVICE, tag, values=SLOW)
        started = await watch.first(deployment, terminal=False, timeout=30)
        await asyncio.sleep(started + KILL_AFTER_STARTED - time.monotonic())
        killed = time.monotonic()
        _kill_mid_helm(leader)
        to_lead, to_every_lane, outcome = await asyncio.gather(
            _seconds_until(standby, "deployer_leader", 1, killed, timeout),
            _seconds_until(standby, "deployer_held_lanes", len(SERVICES), killed, timeout),
            watch.first(deployment, terminal=True, timeout=timeout),
        )
    ended = await stack.outcome(deployment, timeout=30)  # exactly one terminal event stored
    return Takeover(to_lead, to_every_lane, outcome - killed, ended.phase)


async def _stop_gracefully(
    leader: ServiceProcess, standby: ServiceProcess, timeout: float
) -> Takeover:
    stopped = time.monotonic()
    leader.signal(signal.SIGTERM)
    to_lead, to_every_lane = await asyncio.gather(
        _seconds_until(standby, "deployer_leader", 1, stopped, timeout),
        _seconds_until(standby, "deployer_held_lanes", len(SERVICES), stopped, timeout),
    )
    await asyncio.to_thread(leader.wait, 30)
    return Takeover(to_lead, to_every_lane)


async def _failovers(
    stack: DeployerStack, replicas: tuple[ServiceProcess, ServiceProcess], kills: int, stops: int
) -> tuple[list[Takeover], list[Takeover]]:
    installed = await stack.outcome(await stack.publish(SERVICE, "1.0.0-a1b2c3d"))
    if installed.phase is not DeployPhase.SUCCEEDED:
        raise AssertionError(f"installing {SERVICE} ended {installed.phase.value}: {installed}")
    leader, standby = replicas
    timeout = 9 * LEASE_SECONDS
    killed: list[Takeover] = []
    for n in range(kills):
        with _logs_on_failure(leader, standby):
            if await metric(leader, "deployer_leader") != 1:
                raise AssertionError(f"{leader.name} was expected to lead")
            tag = f"1.{n + 1}.0-b2c3d4e"
            killed.append(await _kill_mid_upgrade(stack, leader, standby, tag, timeout))
            print(f"kill -9 {n + 1}: {killed[-1]}", flush=True)
            await _start_standby(leader)
        leader, standby = standby, leader
    stopped: list[Takeover] = []
    for n in range(stops):
        with _logs_on_failure(leader, standby):
            stopped.append(await _stop_gracefully(leader, standby, timeout))
            print(f"SIGTERM {n + 1}: {stopped[-1]}", flush=True)
            await _start_standby(leader)
        leader, standby = standby, leader
    return killed, stopped


async def run_deployer_failover(kills: int, stops: int) -> DeployerFailover:
    """Two deployer replicas (the default lease) on a kwok cluster: the leader killed -9 in the
    middle of an upgrade ``kills`` times, then stopped with SIGTERM ``stops`` times; the one
    gone comes back as the standby each time."""
    repo = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        workdir = Path(directory)
        cluster = await asyncio.to_thread(
            LocalCluster.start, workdir / "kwok", unique_name("failover")
        )
        try:
            namespace = "bench"
            stack = DeployerStack(
                repo, workdir, cluster.kubeconfig, namespace, env={"DEPLOYER_REPLICA_ID": "a"}
            )
            await asyncio.to_thread(create_test_namespace, stack.kubectl, namespace)
            await stack.start()
            standby = stack.replica("b")
            try:
                await _start_standby(standby)
                killed, stopped = await _failovers(stack, (stack.deployer, standby), kills, stops)
            finally:
                standby.stop()
                await stack.stop()
        finally:
            cluster.delete()
    return DeployerFailover(LEASE_SECONDS, len(SERVICES), killed, stopped)


def _all_current(info: ClusterInfo | None, copies: int) -> bool:
    """A leader and ``copies`` - 1 current followers."""
    followers = (info.replicas or []) if info is not None else []
    return (
        info is not None
        and bool(info.leader)
        and len(followers) == copies - 1
        and all(peer.current for peer in followers)
    )


async def _until_every_copy_current(cluster: NatsCluster, timeout: float = 60) -> None:
    """Wait until every stream and consumer has a leader and all its copies current (a member
    back from the dead has caught up)."""
    await asyncio.to_thread(cluster.wait_until_healthy, timeout)
    nc = await nats.connect(servers=cluster.url.split(","), connect_timeout=2)
    js = nc.jetstream(timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            behind: list[str] = []
            try:
                for stream in await js.streams_info():
                    name = stream.config.name or "?"
                    if not _all_current(stream.cluster, len(cluster.members)):
                        behind.append(name)
                    for consumer in await js.consumers_info(name):
                        if not _all_current(consumer.cluster, len(cluster.members)):
                            behind.append(f"{name}/{consumer.name}")
            except (JetStreamError, TimeoutError) as exc:
                behind.append(repr(exc))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"NATS copies not current {timeout} s after the restart: {behind}; see the "
                    f"nats-server.log of each member under {cluster.directory}"
                )
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def _orders_leader(cluster: NatsCluster) -> NatsServer:
    """The member leading the ORDERS stream, where the order service's events land first."""
    nc = await nats.connect(servers=cluster.url.split(","), connect_timeout=2)
    try:
        info = await nc.jetstream(timeout=2).stream_info(ORDERS.name)
    finally:
        await nc.close()
    if info.cluster is None or not info.cluster.leader:
        raise AssertionError(f"the ORDERS stream has no leader now: {info}")
    return cluster.member(info.cluster.leader)


def _every_order_paid(saga: SagaStack, result: RateResult, run: str) -> RateResult:
    if result.settled != result.orders or result.failed_requests:
        tails = "".join(f"\n--- {p.name}:\n{p.logs()[-3000:]}" for p in saga.services.values())
        raise AssertionError(
            f"{run}: {result.settled} of {result.orders} orders paid within 30 s of the last "
            f"one, {result.failed_requests} not placed ({', '.join(result.errors)}): the saga "
            f"lost, stalled or refused orders; the services' logs follow{tails}"
        )
    return result


async def _every_leader(js: JetStreamContext) -> list[str]:
    """The leader of every stream and consumer ("" where there is none now)."""
    found: list[str] = []
    for stream in await js.streams_info():
        found.append((stream.cluster.leader if stream.cluster else None) or "")
        for consumer in await js.consumers_info(stream.config.name or ""):
            found.append((consumer.cluster.leader if consumer.cluster else None) or "")
    return found


async def _until_led_again(survivors: list[str], killed: str, since: float) -> float:
    """Seconds from ``since`` until every stream and consumer is led by a member other than
    ``killed``, asked of the ``survivors``."""
    nc = await nats.connect(servers=survivors, connect_timeout=2)
    js = nc.jetstream(timeout=0.5)
    try:
        while True:
            with contextlib.suppress(JetStreamError, TimeoutError):
                leaders = await _every_leader(js)
                if all(leader and leader != killed for leader in leaders):
                    return time.monotonic() - since
            if time.monotonic() - since > 60:
                raise TimeoutError(f"the NATS cluster had no new leaders 60 s after {killed} died")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def _losing_a_member(
    saga: SagaStack, cluster: NatsCluster, member: NatsServer, seconds: float
) -> tuple[RateResult, float]:
    survivors = [m.url for m in cluster.members if m is not member]

    async def kill_soon() -> float:
        await asyncio.sleep(MEMBER_LOST_AFTER)
        killed = time.monotonic()
        await asyncio.to_thread(member.kill)  # kill -9 of the PID its NatsServer started
        return await _until_led_again(survivors, cluster.name_of(member), killed)

    killer = asyncio.create_task(kill_soon())
    try:
        result = await run_at_rate(saga, RATE, seconds)
    finally:
        led_again = await killer
    return result, led_again


async def run_nats_member_loss(runs: int, seconds: float) -> NatsMemberLoss:
    """order and payment (SQLite) over a three-member NATS cluster with three copies of every
    stream: ``runs`` steady runs at 100 orders/s, then ``runs`` in which the ORDERS stream's
    leader is killed -9 ``MEMBER_LOST_AFTER`` s in (brought back, and caught up, between
    runs)."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        root = Path(directory)
        cluster = NatsCluster(root / "nats-cluster")
        await asyncio.to_thread(cluster.start)
        try:
            saga = SagaStack(
                root, lambda name: f"sqlite+aiosqlite:///{root}/{name}.db", nats_url=cluster.url
            )
            for service in saga.services.values():
                service.env["SERVICE_LOG_LEVEL"] = "WARNING"
                service.env["NATS_STREAM_REPLICAS"] = str(len(cluster.members))
            await asyncio.to_thread(saga.start)
            try:
                await _until_every_copy_current(cluster)
                await run_at_rate(saga, RATE, 5.0)  # warm-up, as the saga bench does
                steady: list[RateResult] = []
                for n in range(runs):
                    result = await run_at_rate(saga, RATE, seconds)
                    steady.append(_every_order_paid(saga, result, f"steady run {n + 1}"))
                    print(f"steady {n + 1}: {steady[-1]}", flush=True)
                lost: list[RateResult] = []
                killed: list[str] = []
                led_again: list[float] = []
                for n in range(runs):
                    member = await _orders_leader(cluster)
                    killed.append(cluster.name_of(member))
                    result, took = await _losing_a_member(saga, cluster, member, seconds)
                    led_again.append(took)
                    lost.append(_every_order_paid(saga, result, f"run {n + 1} losing {killed[-1]}"))
                    print(f"lost {killed[-1]} {n + 1}: {lost[-1]}", flush=True)
                    await asyncio.to_thread(member.start)
                    await _until_every_copy_current(cluster)
            finally:
                await saga.stop()
        finally:
            await asyncio.to_thread(cluster.stop)
    return NatsMemberLoss(steady, lost, killed, led_again)


def _seconds(values: list[float], lease: float) -> str:
    least, median, most = spread(values)
    return f"{least:.1f} s | **{median:.1f} s** | {most:.1f} s | {median / lease:.2f}x"


def _deployer_text(figures: DeployerFailover) -> str:
    lease = figures.lease_seconds
    kills, stops = figures.kills, figures.stops
    outcomes = [k.to_outcome for k in kills if k.to_outcome is not None]
    phases = [k.outcome.value for k in kills if k.outcome is not None]
    ended = ", ".join(f"`{phase}` {phases.count(phase)}" for phase in sorted(set(phases)))
    rows = (
        "\n".join(
            f"| kill -9 {n + 1} | {k.to_lead:.1f} s | {k.to_every_lane:.1f} s | "
            f"{k.to_outcome or 0:.1f} s ({k.outcome.value if k.outcome else '?'}) |"
            for n, k in enumerate(kills)
        )
        + "\n"
        + "\n".join(
            f"| SIGTERM {n + 1} | {s.to_lead:.1f} s | {s.to_every_lane:.1f} s | |"
            for n, s in enumerate(stops)
        )
    )
    return f"""### The deployer's standby taking over

Two deployer replicas as local processes (real NATS, the pinned helm, a local control plane with
fake nodes), the default lease of {lease:.0f} s (the standby tries for the leader lease every
{lease / 10:.0f} s). {len(kills)} times: an upgrade of {SERVICE} whose new pod turns ready 6 s
after it starts; {KILL_AFTER_STARTED:.0f} s after its `started` event, while its helm waits for
that pod, the leader is killed -9 (its helm then gets SIGTERM, which the deployer asks the kernel
for, and fails its upgrade or leaves it pending). Times run from the kill to: the standby's
`deployer_leader` 1; its `deployer_held_lanes` {figures.lanes} (every service's lane); the
deployment's one terminal event (a single one stored each time; they were: {ended}), which comes
after the new leader has brought the release out of the state the killed helm left it in and
upgraded it again (the new pod's 6 s included). The one killed comes back as the standby, and
the roles alternate. Then {len(stops)} graceful stops (SIGTERM) of the leader, nothing in
flight: the leases are handed back rather than left to expire. Ratios are to the lease, which
runs from the leader's last renewal (before the kill), so a standby may lead in less.

| | min | median | max | median / lease |
| --- | --- | --- | --- | --- |
| kill -9 -> the standby leads | {_seconds([k.to_lead for k in kills], lease)} |
| kill -9 -> the standby holds every lane | {_seconds([k.to_every_lane for k in kills], lease)} |
| kill -9 -> the deployment's outcome | {_seconds(outcomes, lease)} |
| SIGTERM -> the standby leads | {_seconds([s.to_lead for s in stops], lease)} |
| SIGTERM -> the standby holds every lane | {_seconds([s.to_every_lane for s in stops], lease)} |

| run | -> leads | -> every lane | -> outcome |
| --- | --- | --- | --- |
{rows}
"""


def _rate_row(run: str, result: RateResult, led_again: float | None = None) -> str:
    return (
        f"| {run} | {result.achieved_per_second:.0f}/s | {result.settled}/{result.orders} | "
        f"{ms(result.p50)} | {ms(result.p99)} | {result.machine_cpu_per_order * 1000:.1f} ms | "
        f"{'' if led_again is None else f'{led_again:.1f} s'} |"
    )


def _nats_text(figures: NatsMemberLoss, seconds: float) -> str:
    steady_p99 = percentile([r.p99 for r in figures.steady], 0.5)
    lost_p99 = percentile([r.p99 for r in figures.lost], 0.5)
    rows = "\n".join(
        [_rate_row(f"steady {n + 1}", r) for n, r in enumerate(figures.steady)]
        + [
            _rate_row(f"{name} killed -9 {n + 1}", r, took)
            for n, (name, r, took) in enumerate(
                zip(figures.killed, figures.lost, figures.led_again, strict=True)
            )
        ]
    )
    paid = sum(r.settled for r in [*figures.steady, *figures.lost])
    cores = os.cpu_count() or 1
    spread_text = " / ".join(f"{value:.1f} s" for value in spread(figures.led_again))
    spent = percentile([r.machine_cpu_per_order for r in figures.steady], 0.5)
    budget = cores / RATE  # CPU seconds per order that keep every core busy
    saturated = (
        ":\n  saturated, so the steady p99 is mostly queueing, and the ratio is compressed by it"
        if spent >= 0.95 * budget
        else ""
    )
    return f"""### The saga while a NATS member is lost

order and payment as local processes on SQLite over a three-member NATS cluster (three
nats-server processes routed together, as the nats chart runs them); NATS_URL lists all three and
NATS_STREAM_REPLICAS=3 keeps a copy of every stream on each. Orders at {RATE:.0f}/s, open loop,
after a 5 s warm-up; latency created -> paid as in the saga section. {len(figures.steady)} steady
runs of {seconds:.0f} s, then {len(figures.lost)} runs of {seconds:.0f} s in which the member
leading the ORDERS stream is killed -9 {MEMBER_LOST_AFTER:.0f} s in (the survivors elect new
leaders; a service connected to it reconnects to another); it is restarted between runs and the
next run waits until every stream and consumer has all its copies current again. "kill -> all
led again": until every stream and consumer has a leader among the survivors. The baseline
is this section's steady runs, not the single-server figures above. "machine CPU per order"
counts everything the shared machine ran during the run (and until its orders were paid), other
users' work included.

| run | achieved | paid | p50 created->paid | p99 created->paid | machine CPU per order \
| kill -> all led again |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

- p99 with a member lost / steady (medians of the runs): {ms(lost_p99)} / {ms(steady_p99)} =
  **{lost_p99 / steady_p99:.2f}x**.
- In the steady runs the machine spent {spent * 1000:.1f} ms of CPU per order (median, all its
  work counted; {budget * 1000:.0f} ms at {RATE:.0f}/s keeps its {cores} cores busy){saturated}.
- A member lost: every stream and consumer led again {spread_text} after the kill (min /
  median / max).
- Every order was paid in every run ({paid} orders; the bench fails otherwise).
"""


def failover_section(deployer: DeployerFailover, loss: NatsMemberLoss, seconds: float) -> str:
    """The `failover` section of docs/benchmarks.md."""
    return f"""## Failover

{_deployer_text(deployer)}
{_nats_text(loss, seconds)}"""
