"""`make bench`: run the benchmarks and write their sections of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from tests.bench.report import write_section
from tests.bench.saga_bench import RateResult, run_at_rate
from tests.bench.stats import ms
from tests.integration.saga_stack import SagaStack

STEADY_RATE = 100.0
RAMP = (100.0, 200.0, 300.0, 400.0, 600.0, 800.0)


def _row(result: RateResult) -> str:
    return (
        f"| {result.target_per_second:.0f}/s | {result.achieved_per_second:.0f}/s | "
        f"{result.settled}/{result.orders} | {ms(result.p50)} | {ms(result.p99)} | "
        f"{'yes' if result.sustained else 'no'} |"
    )


async def bench_saga(seconds: float) -> None:
    """Saga latency at a steady 100 orders/s, then a ramp to the highest sustained rate."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        saga = SagaStack(Path(directory), lambda name: f"sqlite+aiosqlite:///{directory}/{name}.db")
        await asyncio.to_thread(saga.start)
        try:
            await run_at_rate(saga, 50, 1.0)  # warm-up: connections, caches, JIT-free Python
            steady = await run_at_rate(saga, STEADY_RATE, seconds)
            print(_row(steady), flush=True)
            ramp: list[RateResult] = []
            for rate in RAMP:
                ramp.append(await run_at_rate(saga, rate, 5.0))
                print(_row(ramp[-1]), flush=True)
                if not ramp[-1].sustained:
                    break
        finally:
            await saga.stop()
    best = max((r.target_per_second for r in ramp if r.sustained), default=0.0)
    header = (
        "| offered | achieved | paid | p50 created->paid | p99 created->paid | sustained |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    verdict = "meets" if steady.p99 <= 0.1 else "misses"
    write_section(
        "saga",
        f"""## Saga latency (order created -> paid)

order and payment as real processes on SQLite, a real nats-server; orders posted directly to
the order service (open loop), latency from the order's `created_at` to the moment it was marked
paid (both stamped by the order service).

At a steady {STEADY_RATE:.0f} orders/s for {seconds:.0f} s: **p50 {ms(steady.p50)}, p99
{ms(steady.p99)}** (target p99 <= 100 ms: {verdict}).

Highest sustained rate (every order paid, offered rate met, p99 < 1 s): **{best:.0f} orders/s**.

{header}
{_row(steady)}
{chr(10).join(_row(r) for r in ramp)}
""",
    )


def main() -> int:
    """Run the selected benchmarks."""
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--only", choices=["saga"], action="append")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    selected = set(args.only or ["saga"])
    if "saga" in selected:
        asyncio.run(bench_saga(args.seconds))
    print("wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
