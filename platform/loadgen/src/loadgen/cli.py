"""`python -m loadgen` (`make load`): steady traffic through the gateway, then the summary.

Exit codes: 0 no request failed, 1 some failed (or the users could not be created), 2 bad input.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated

import typer

from loadgen.plan import (
    DEFAULT_TARGET,
    MAX_DURATION,
    MAX_IN_FLIGHT,
    MAX_RATE,
    MAX_REQUESTS,
    MAX_TIMEOUT,
    MAX_USERS,
    LoadPlan,
    PlanError,
    loopback_target,
)
from loadgen.report import LoadReport, SecondStats
from loadgen.traffic import run_load
from loadgen.users import SetupError

app = typer.Typer(
    add_completion=False,
    help="Steady open-loop traffic through the gateway (loopback only); every request counted.",
)


def _loopback(value: str) -> str:
    try:
        return loopback_target(value)
    except PlanError as error:
        raise typer.BadParameter(str(error)) from None


async def _run(plan: LoadPlan, quiet: bool) -> LoadReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def interrupted() -> None:
        # The first Ctrl-C ends the traffic and still reports; the second gives up at once.
        if stop.is_set() and main is not None:
            main.cancel()
            return
        typer.echo(
            f"stopping: waiting up to {plan.timeout:g} s for the answers due "
            "(Ctrl-C again to quit)",
            err=True,
        )
        stop.set()

    def live(second: SecondStats) -> None:
        typer.echo(second.line())

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted)
    try:
        return await run_load(plan, stop=stop, on_second=None if quiet else live)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@app.command()
def load(
    target: Annotated[
        str,
        typer.Option(
            envvar="LOADGEN_TARGET",
            callback=_loopback,
            help="The gateway's base URL; a loopback host only (make run: port 8000)",
        ),
    ] = DEFAULT_TARGET,
    rate: Annotated[
        float, typer.Option(max=MAX_RATE, help="Requests per second (more than 0)")
    ] = 50.0,
    duration: Annotated[float, typer.Option(max=MAX_DURATION, help="Seconds of traffic")] = 30.0,
    max_requests: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_REQUESTS, help="Stop after this many [default: rate*duration]"),
    ] = None,
    post_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of requests that place an order")
    ] = 0.2,
    timeout: Annotated[float, typer.Option(max=MAX_TIMEOUT, help="Seconds per request")] = 5.0,
    users: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_USERS,
            help="Users sharing the load [default: one per 25 requests/s, the gateway allows 50]",
        ),
    ] = None,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_IN_FLIGHT, help="Requests waiting for answers; beyond: dropped"
        ),
    ] = 200,
    setup_timeout: Annotated[
        float,
        typer.Option(max=MAX_DURATION, help="Seconds to wait for auth to be ready"),
    ] = 60.0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full report as JSON here")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No line per second, only the summary")] = False,
) -> None:
    """Send RATE requests/s (POST and GET /api/orders) for DURATION s, then summarise them."""
    try:
        plan = LoadPlan(
            target=target,
            rate=rate,
            duration=duration,
            max_requests=max_requests or 0,
            post_ratio=post_ratio,
            timeout=timeout,
            users=users or 0,
            max_in_flight=max_in_flight,
            setup_timeout=setup_timeout,
        )
    except PlanError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        report = asyncio.run(_run(plan, quiet))
    except SetupError as error:
        typer.secho(f"loadgen: no traffic sent: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    except asyncio.CancelledError:
        typer.secho("loadgen: interrupted; no report", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(report.summary())
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        typer.echo(f"report: {json_path}")
    raise typer.Exit(0 if report.passed else 1)
