"""`make bench`: run the benchmarks and write their sections of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from devkit.testing.postgres import PostgresServer
from loadgen.report import WindowStats
from tests.bench.canary_bench import run_canary_bench
from tests.bench.deployer_bench import run_deployer_bench
from tests.bench.failover_bench import (
    failover_section,
    run_deployer_failover,
    run_nats_member_loss,
)
from tests.bench.gateway_bench import Throughput, run_gateway_bench
from tests.bench.gitops_bench import run_gitops_bench
from tests.bench.report import write_section
from tests.bench.rollout_bench import run_rollout_bench
from tests.bench.saga_bench import RateResult, run_at_rate
from tests.bench.stats import ms, percentile
from tests.integration.saga_stack import SagaStack

STEADY_RATE = 100.0
STEADY_RUNS = 3  # the machine is shared: one slow second can own a 10 s run's p99
RAMP = (50.0, 75.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0)


def _row(result: RateResult) -> str:
    return (
        f"| {result.target_per_second:.0f}/s | {result.achieved_per_second:.0f}/s | "
        f"{result.settled}/{result.orders} | {ms(result.p50)} | {ms(result.p99)} | "
        f"{result.cpu_per_order * 1000:.1f} ms | {result.loadgen_cpu_per_order * 1000:.1f} ms | "
        f"{result.machine_cpu_per_order * 1000:.1f} ms | {'yes' if result.sustained else 'no'} |"
    )


async def _saga_runs(
    new_database: Callable[[str], str], seconds: float
) -> tuple[list[RateResult], list[RateResult]]:
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        saga = SagaStack(Path(directory), new_database)
        for service in saga.services.values():
            service.env["SERVICE_LOG_LEVEL"] = "WARNING"
        await asyncio.to_thread(saga.start)
        try:
            # Warm-up at the measured rate: pools grow, statements are prepared per connection.
            await run_at_rate(saga, STEADY_RATE, 5.0)
            steady: list[RateResult] = []
            for _ in range(STEADY_RUNS):
                steady.append(await run_at_rate(saga, STEADY_RATE, seconds))
                print(_row(steady[-1]), flush=True)
            ramp: list[RateResult] = []
            for rate in RAMP:
                ramp.append(await run_at_rate(saga, rate, 5.0))
                print(_row(ramp[-1]), flush=True)
                if not ramp[-1].sustained:
                    break
        finally:
            await saga.stop()
    return steady, ramp


async def _saga_on(database: str, seconds: float) -> tuple[list[RateResult], list[RateResult]]:
    if database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="flotilla-bench-db-") as directory:
            return await _saga_runs(
                lambda name: f"sqlite+aiosqlite:///{directory}/{name}.db", seconds
            )
    postgres = PostgresServer()
    await asyncio.to_thread(postgres.start)
    try:
        return await _saga_runs(lambda _: postgres.create_database(), seconds)
    finally:
        await asyncio.to_thread(postgres.stop)


def _saga_section(
    database: str, seconds: float, steady: list[RateResult], ramp: list[RateResult]
) -> str:
    best = max((r.target_per_second for r in ramp if r.sustained), default=0.0)
    median = sorted(steady, key=lambda r: r.p99)[len(steady) // 2]
    verdict = "meets" if median.p99 <= 0.1 else "misses"
    every_p99 = ", ".join(ms(r.p99) for r in steady)
    header = (
        "| offered | achieved | paid | p50 created->paid | p99 created->paid "
        "| CPU per order: services + NATS | load generator | whole machine | sustained |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    rows = "\n".join(_row(r) for r in [*steady, *ramp])
    return f"""### On {database}

At a steady {STEADY_RATE:.0f} orders/s, {len(steady)} runs of {seconds:.0f} s (p99 {every_p99}),
the median run: **p50 {ms(median.p50)}, p99 {ms(median.p99)}** (target p99 <= 100 ms:
{verdict}). Highest sustained rate (every order paid, offered rate met, p99 < 1 s):
**{best:.0f} orders/s**. At {STEADY_RATE:.0f} orders/s the services and nats-server spent
**{median.cpu_per_order * 1000:.1f} ms of CPU per order** ({median.cpu_per_order * STEADY_RATE:.2f}
of the machine's 2 cores); the load generator {median.loadgen_cpu_per_order * 1000:.1f} ms, and
the whole machine {median.machine_cpu_per_order * 1000:.1f} ms (the database server and other
users' work included).

{header}
{rows}
"""


async def bench_saga(seconds: float, databases: list[str] | None = None) -> None:
    """Saga latency at a steady 100 orders/s, then a ramp to the highest sustained rate, on SQLite
    and on PostgreSQL; with ``databases`` only on those, printed and not written to the docs."""
    runs: dict[str, tuple[list[RateResult], list[RateResult]]] = {}
    for database in databases or ["sqlite", "postgresql"]:
        print(f"saga on {database}", flush=True)
        runs[database] = await _saga_on(database, seconds)
    if databases:
        return
    sqlite, postgresql = runs["sqlite"], runs["postgresql"]
    write_section(
        "saga",
        f"""## Saga latency (order created -> paid)

order and payment as real processes, a real nats-server; orders posted directly to the order
service (open loop) after a 5 s warm-up at 100/s, latency from the order's `created_at` to the
moment it was marked paid (both stamped by the order service). Everything (both services, NATS,
the database and the load generator) shares the machine's 2 cores. "CPU per order" is read from
/proc for each process (user + system, children included) from the first order offered until the
last was paid: services + NATS are order, payment and nats-server; the load generator is the
benchmark's own process (it posts the orders and polls the order database until they are paid);
the whole machine counts every process, the PostgreSQL server and other users' work included.

{_saga_section("SQLite (the embedded default)", seconds, *sqlite)}
{_saga_section("PostgreSQL (the production database)", seconds, *postgresql)}""",
    )


# What each step of the deployer's path to helm is (DeploymentRecord.to_helm_ms).
DEPLOYER_STEPS = {
    "delivery": "publish -> the deployer's handler (NATS, the consumer's fetch)",
    "dedup": "the event id looked up among the records (exactly once)",
    "intake": "intake: the policy checks, against the service's state",
    "release": "the release the event publishes, saved",
    "queued": "the deployment recorded and published `queued`",
    "lane": "waiting for its lane",
    "observe": "the release observed (known after the deployer's own last upgrade)",
    "render": "`helm template` of the new values",
    "dry-run": "the plan: each object read and server-side applied as a dry run",
    "started": "recorded and published `started`, with the plan",
    "helm": "the lane's lease renewed (the fence), the helm process started",
}


async def bench_deployer(samples: int) -> None:
    """Event -> helm start, step by step; the deployer against helm run directly, interleaved;
    concurrent against serial."""
    figures = await run_deployer_bench(Path.cwd(), samples)
    p50 = percentile(figures.event_to_helm, 0.5)
    p95 = percentile(figures.event_to_helm, 0.95)
    through = percentile(figures.through_deployer, 0.5)
    direct = percentile(figures.direct_helm, 0.5)
    ratio = through / direct
    pairs = [d / h for d, h in zip(figures.through_deployer, figures.direct_helm, strict=True)]
    concurrent = figures.concurrent_wall / figures.serial_wall
    together = (
        f"{figures.concurrent_wall:.1f} s / {figures.serial_wall:.1f} s = **{concurrent:.2f}x**"
    )
    verdict = "meets" if p50 <= 0.1 else "misses"
    ratio_verdict = "meets" if ratio <= 1.15 else "misses"
    steps = "\n".join(
        f"| {name} | {DEPLOYER_STEPS.get(name, '')} | {median:.1f} ms |"
        for name, median in figures.step_medians().items()
    )
    write_section(
        "deployer",
        f"""## Deployer

The deployer as a real process with real NATS (the local users), the pinned helm and the local
control plane; one fake node, pods ready 500 ms after they start; no other traffic. The plan
comes before helm (docs/deploy-plans.md): `helm template` and a server-side dry run of every
object are on the path from the event to helm. {samples} upgrades of order through the deployer
and {samples} of the same `helm upgrade --install --wait=watcher` run directly, interleaved (each
pair in turn first), every one to a newer image.

| measure | figure | target |
| --- | --- | --- |
| event published -> helm process started (after the plan), p50 | **{ms(p50)}** | <= 100 ms \
({verdict}) |
| event published -> helm process started, p95 | {ms(p95)} | |
| publish -> succeeded (all new pods ready) through the deployer, p50 | {through:.2f} s | |
| the same upgrade run directly, p50 | {direct:.2f} s | |
| through the deployer / directly (medians) | **{ratio:.2f}x** | <= 1.15x ({ratio_verdict}) |
| ... per pair: least / median / greatest | {min(pairs):.2f}x / \
{percentile(pairs, 0.5):.2f}x / {max(pairs):.2f}x | |
| 4 services at once (wall) / one after another | {together} | |

Event published -> helm started, step by step (the deployer times its own steps; the medians of
each, so they need not add up to the p50 above):

| step | what | p50 |
| --- | --- | --- |
{steps}
""",
    )


def _rollout_row(label: str, window: WindowStats, took: str = "") -> str:
    return (
        f"| {label} | {window.count} | {window.failed} | {window.p50_ms or 0:.0f} ms | "
        f"{window.p99_ms or 0:.0f} ms | {took} |"
    )


async def bench_rollout(runs: int) -> None:
    """Requests failed and p99 during rollouts of order on real pods, against steady state (also
    with one core busy); CI's event -> every new pod ready, against helm run directly under the
    same traffic."""
    figures = await run_rollout_bench(runs)
    steady = figures.steady
    assert steady is not None
    quiet = figures.rollouts + figures.direct_rollouts
    failed = sum(w.failed for w in quiet)
    sent = sum(w.count for w in quiet)
    worst = max((w.p99_ms or 0.0) for w in quiet)
    ratio = worst / (steady.p99_ms or 1.0)
    busy_failed = sum(w.failed for w in figures.busy_rollouts)
    busy_sent = sum(w.count for w in figures.busy_rollouts)
    busy_worst = max((w.p99_ms or 0.0) for w in figures.busy_rollouts)
    deployer = sorted(figures.through_deployer)[len(figures.through_deployer) // 2]
    helm = sorted(figures.direct_helm)[len(figures.direct_helm) // 2]
    rows = [_rollout_row("steady state", steady)]
    for i in range(runs):
        rows.append(
            _rollout_row(
                f"rollout {i + 1}, deployer",
                figures.rollouts[i],
                f"{figures.through_deployer[i]:.1f} s",
            )
        )
        rows.append(
            _rollout_row(
                f"rollout {i + 1}, helm directly",
                figures.direct_rollouts[i],
                f"{figures.direct_helm[i]:.1f} s",
            )
        )
    for i, window in enumerate(figures.busy_rollouts):
        rows.append(_rollout_row(f"rollout {i + 1}, deployer, one core busy", window))
    table = "\n".join(rows)
    write_section(
        "rollout",
        f"""## Rollouts of real pods under traffic

The whole platform as real pods on the local cluster's real node (two replicas per service,
PostgreSQL and NATS in the cluster); 50 requests/s through the gateway's NodePort (GET and POST
/api/orders, platform/loadgen, open loop). order rolls to a new image {runs} times through the
deployer (CI's event over NATS) and {runs} times as the same `helm upgrade --install --wait` run
directly, under the same traffic, the two alternating which goes first; then {runs} more times
through the deployer while another process keeps one core busy. A rollout's window runs from the
event to the old pods gone (their drain included). "new pods ready": the Deployment reports
every replica updated, ready and available.

| | requests | failed | p50 | p99 | event -> new pods ready |
| --- | --- | --- | --- | --- | --- |
{table}

- Requests failed during the rollouts: **{failed} of {sent}** (target 0); with one core busy:
  **{busy_failed} of {busy_sent}** (target 0), worst p99 {busy_worst:.0f} ms.
- p99 during the worst rollout / steady state: **{ratio:.2f}x** (target <= 2x).
- Event -> all new pods ready through the deployer / helm directly, same traffic (medians):
  {deployer:.1f} s / {helm:.1f} s = **{deployer / helm:.2f}x** (target <= 1.15x).
""",
    )


async def bench_canary(runs: int) -> None:
    """How long a bad canary takes to abort, against the configured interval x failure limit."""
    figures = await run_canary_bench(runs)
    least = figures.interval_seconds * figures.failure_limit
    rows = "\n".join(
        f"| canary {i + 1} | {a.to_analysis:.1f} s | {a.analysis_to_abort:.1f} s | "
        f"{a.analysis_to_abort / least:.2f}x | {a.failed} of {a.requests} |"
        for i, a in enumerate(figures.aborts)
    )
    took = sorted(a.analysis_to_abort for a in figures.aborts)[len(figures.aborts) // 2]
    write_section(
        "canary",
        f"""## A bad canary's abort

The whole platform as real pods on the real node, a real Prometheus scraping them every second;
50 requests/s through the gateway. order's strategy: `setWeight: 50` (1 of its 2 pods), then an
analysis of {figures.failure_limit + 1} measurements {figures.interval_seconds} s apart with
`failureLimit: {figures.failure_limit}`. The image answers 500 to a fifth of its requests
(`SERVICE_FAULT_ERROR_RATIO=0.2`), so each measurement fails; {runs} canaries. "analysis -> abort
done": from the canary's first `analysing` event to its terminal `rolled_back` (the stable pods
grown back, the canary Deployment gone); the least it can take is interval x failure limit =
{least} s.

| | event -> analysis | analysis -> abort done | / ({least} s) | requests failed |
| --- | --- | --- | --- | --- |
{rows}

- A bad canary aborts **{took / least:.2f}x** the configured interval x failure limit after its
  analysis starts (median): the rest is the abort's own helm upgrades (the stable pod started
  again, the canary removed).
""",
    )


async def bench_gitops(samples: int) -> None:
    """GitOps against push: event -> commit pushed, and -> new pods ready through Flux / helm."""
    figures = await run_gitops_bench(Path.cwd(), samples)
    commit = percentile(figures.event_to_commit, 0.5)
    flux = percentile(figures.through_flux, 0.5)
    helm = percentile(figures.through_helm, 0.5)
    rows = "\n".join(
        f"| {n + 1} | {c:.2f} s | {f:.2f} s | {h:.2f} s |"
        for n, (c, f, h) in enumerate(
            zip(figures.event_to_commit, figures.through_flux, figures.through_helm, strict=True)
        )
    )
    write_section(
        "gitops",
        f"""## GitOps against push

Two deployers on one local control plane (one fake node, pods ready 500 ms after they start),
each with its own NATS: one runs helm (push), one commits to a git repository on 127.0.0.1 that
the real Flux controllers (source-, kustomize- and helm-controller, local processes) apply
(docs/gitops.md). The same deployment of order, alternately through each, {samples} times.

| | event -> commit pushed | event -> new pods ready (Flux) | event -> new pods ready (helm) |
| --- | --- | --- | --- |
{rows}

- CI's event -> the commit pushed, p50: **{commit * 1000:.0f} ms** (intake, plan, then fetch,
  commit and push).
- CI's event -> all new pods ready, p50: through Flux {flux:.2f} s, through helm {helm:.2f} s:
  **{flux / helm:.2f}x**.
""",
    )


async def bench_failover(kills: int, stops: int, runs: int, seconds: float) -> None:
    """The deployer's standby taking over (kill -9 and SIGTERM of the leader); the saga's p99
    while a NATS member is lost, against steady state."""
    deployer = await run_deployer_failover(kills, stops)
    loss = await run_nats_member_loss(runs, seconds)
    write_section("failover", failover_section(deployer, loss, seconds))


def _throughput_row(name: str, t: Throughput) -> str:
    return f"| {name} | {t.per_second:.0f} | {ms(t.p50)} | {ms(t.p99)} | {t.errors} |"


async def bench_gateway(seconds: float) -> None:
    """Throughput and latency through the gateway against calling order directly."""
    connections = 16
    direct, through = await run_gateway_bench(Path.cwd(), connections, seconds)
    ratio = through.per_second / direct.per_second
    verdict = "meets" if ratio >= 0.5 else "misses"
    write_section(
        "gateway",
        f"""## Gateway against direct

`GET /orders/{{id}}` on the order service (SQLite), {connections} keep-alive connections, closed
loop, {seconds:.0f} s per run, direct and through the gateway alternated twice (best of each), one
aiohttp client process. Through the gateway every request also has its JWT verified, its rate
limit checked and its identity signed, and crosses a second process.

| path | requests/s | p50 | p99 | errors |
| --- | --- | --- | --- | --- |
{_throughput_row("direct to order", direct)}
{_throughput_row("through the gateway", through)}

Gateway / direct: **{ratio:.2f}x** (target >= 0.5x: {verdict}).
""",
    )


def main() -> int:
    """Run the selected benchmarks."""
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "--only",
        choices=["gateway", "saga", "deployer", "gitops", "rollout", "canary", "failover"],
        action="append",
    )
    parser.add_argument(
        "--saga-database",
        choices=["sqlite", "postgresql"],
        action="append",
        help="run the saga on this database only, print its figures, leave the docs alone",
    )
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--canaries", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--failover-kills", type=int, default=5)
    parser.add_argument("--failover-stops", type=int, default=3)
    parser.add_argument("--failover-nats-runs", type=int, default=3)
    args = parser.parse_args()
    every = ["gateway", "saga", "deployer", "gitops", "rollout", "canary", "failover"]
    selected = set(args.only or every)
    if "gateway" in selected:
        asyncio.run(bench_gateway(args.seconds))
    if "saga" in selected:
        asyncio.run(bench_saga(args.seconds, args.saga_database))
    if "deployer" in selected:
        asyncio.run(bench_deployer(args.samples))
    if "gitops" in selected:
        asyncio.run(bench_gitops(args.samples))
    if "rollout" in selected:
        asyncio.run(bench_rollout(args.rollouts))
    if "canary" in selected:
        asyncio.run(bench_canary(args.canaries))
    if "failover" in selected:
        kills, stops, runs = args.failover_kills, args.failover_stops, args.failover_nats_runs
        asyncio.run(bench_failover(kills, stops, runs, args.seconds))
    print("wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
