"""`make demo`: independent rollouts of real pods, end to end on a local cluster.

It starts its own cluster with the machine's real node (platform/cluster/cluster.sh), NATS and
PostgreSQL in it as real pods (charts/nats, charts/postgres, the Secrets of platform/secrets),
and, as local processes on 127.0.0.1, the NATS that CI and the deployer talk over (the users of
platform/nats/local.conf) and the deployer; then it plays CI with the pipelines CLI in a
throw-away clone of the repository, building every image from its Dockerfile (buildah, no Docker
engine) into the cluster's registry:

1. the cluster with its real node, NATS and PostgreSQL in it, a Prometheus scraping the pods,
   the deployer;
2. every service released at 1.0.0 (built, published and waited for, four lanes in parallel);
3. an order placed through the gateway pod (a NodePort on 127.0.0.1) and paid;
4. order alone bumped to 1.1.0 under steady traffic: the deployer's plan, the live rollout of
   real pods, and the ReplicaSets of every service before and after (only order rolled);
5. a really broken order image (its process exits at start), rolled back while the previous
   ReplicaSet keeps serving;
6. a memory limit below the working set: OOM-killed, rolled back, the limit restored;
7. the traffic verdict (no request failed);
8. an order image answering 500 to a fifth of its requests, as a canary beside the stable pods:
   aborted at its first analysis, naming the success rate measured and the threshold;
9. environments: the deployer now serves dev, staging and prod; order's next release flows from
   dev to staging by itself after a soak and a metric analysis, is held at prod by a freeze that
   says until when, and is approved into prod with a reason; each environment's release and the
   DORA figures;
10. the summary.

Everything it started is stopped at the end, also on failure and on Ctrl-C; the logs stay in
<run dir>/logs. With --cluster-run-dir it uses a cluster that is up already instead (its own
namespaces there; that cluster is not stopped).

    .venv/bin/python platform/demo/demo.py [--run-dir .run/demo] [--no-color] [--helm-timeout 45]
        [--cluster-run-dir DIR]

The pieces: demo_stage.py (what every chapter uses), demo_chapters_rollouts.py,
demo_chapters_failures.py, demo_chapter_canary.py and demo_chapter_environments.py (the
chapters), demo_platform.py (cluster, NATS, PostgreSQL, Prometheus, deployer),
demo_environments.py (staging and prod beside it), demo_ci.py (the simulated CI and the images),
demo_events.py, demo_replicasets.py,
demo_traffic.py, demo_render.py (output), and demo_supervisor.py (what was started, and
stopping it). The processes, ports, tools and environments come from devkit.localstack, which
`make run` and the test stacks use too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from demo_chapter_canary import bad_canary
from demo_chapter_environments import environments_chapter
from demo_chapters_failures import broken_image, memory_limit_lowered, summary, traffic_verdict
from demo_chapters_rollouts import place_order, release_everything, roll_order, start_platform
from demo_common import REPO, DemoError, shown
from demo_render import (
    make_console,
)
from demo_stage import Demo
from demo_supervisor import Supervisor
from rich.markup import escape

from devkit.localstack.tools import MissingToolError

__all__ = ["Demo", "Supervisor", "main", "play"]


async def play(demo: Demo) -> None:
    """The whole story."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await start_platform(demo)
        base = await release_everything(demo)
        await place_order(demo)
        sha, after = await roll_order(demo, base)
        await broken_image(demo, sha, after)
        await memory_limit_lowered(demo, after)
        await traffic_verdict(demo)
        await bad_canary(demo, sha, after)
        await environments_chapter(demo, sha, await demo.platform.replica_sets())
        await summary(demo)
    finally:
        if demo.traffic is not None:
            await asyncio.to_thread(demo.traffic.stop)
        await asyncio.to_thread(demo.stop_discovery)
        await demo.events.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Play the demo; exit 0 when every step worked, 1 (with the reason) otherwise."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / ".run" / "demo",
        help="where its state and logs go (default: .run/demo)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain output")
    parser.add_argument(
        "--helm-timeout",
        type=float,
        default=45.0,
        help="seconds helm waits for a rollout before rolling back (default 45)",
    )
    parser.add_argument(
        "--cluster-run-dir",
        type=Path,
        help="run on the cluster that is up in DIR (DIR/kubeconfig, DIR/registry; it must have "
        "its real node) instead of starting one: the demo's releases go to namespaces "
        "flotilla-demo, flotilla-demo-nats and flotilla-demo-postgres there, and only "
        "flotilla-demo is deleted at the end; that cluster is not stopped",
    )
    args = parser.parse_args(argv)
    # Ctrl-C must stop the demo (and so everything it started) even when the shell that started
    # it ignores SIGINT, as shells do for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = make_console(args.no_color or bool(os.environ.get("NO_COLOR")))
    run_dir = args.run_dir.resolve()
    cluster_run_dir = args.cluster_run_dir.resolve() if args.cluster_run_dir else None
    demo = Demo(console, run_dir, args.helm_timeout, cluster_run_dir)
    console.print(
        "[bold]Flotilla demo:[/] independent rollouts of real pods, end to end on a local cluster"
    )
    code = 0
    try:
        asyncio.run(play(demo))
    except (DemoError, MissingToolError) as exc:
        console.print(f"\n[bold red]✗ the demo failed:[/] {escape(str(exc))}")
        code = 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("\n[yellow]interrupted[/]")
        code = 130
    except Exception as exc:
        console.print(f"\n[bold red]✗ the demo failed unexpectedly:[/] {escape(repr(exc))}")
        code = 1
    finally:
        # A second Ctrl-C must not leave processes behind: finish the teardown first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if code != 0:
            demo.supervisor.keep_cluster_logs()
        began = time.monotonic()
        with console.status("[dim]stopping everything…[/]"):
            stopped = demo.supervisor.stop_all()
        if stopped:
            console.print(
                f"\n  [dim]stopped {', '.join(stopped)} ({time.monotonic() - began:.1f} s)[/]"
            )
        if demo.supervisor.owns_run_dir:
            console.print(f"  [dim]logs kept in {escape(shown(demo.logs))}[/]")
    if code == 0:
        console.print(f"\n[bold green]demo finished in {time.monotonic() - demo.began:.0f} s[/]")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
