"""How `make run` ends: on the first SIGTERM after load, every time; at once on a second signal;
with nothing left behind when it is killed; and not at all when its ports are taken (it says who
holds them). Real processes on free loopback ports, nothing mocked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean

import pytest

from devkit.localstack.portholders import port_is_taken
from devkit.localstack.stopsignals import exit_status
from tests.integration.devrun_process import DevRun

# Stops on the first SIGTERM in 20 runs out of 20 after load: the signal path and both stop
# stages, with the gateway alone. The whole stack costs four times as much a cycle (four Python
# services to boot on two cores: 20 cycles took 240-280 s), so it runs fewer here.
STOP_CYCLES = 20
FULL_STACK_STOP_CYCLES = 5
LOAD_REQUESTS = 300
# How long a stop may take: the services stop together, then NATS; about 1 s when idle.
STOP_BOUND_SECONDS = 15.0
# After a second signal or a SIGKILL: killing and reaping, no graceful shutdown.
AT_ONCE_SECONDS = 3.0
STACK_SIZE = 5  # NATS and the four services


def load_everything(run: DevRun) -> None:
    """Users register and sign in, then place and read orders through the gateway."""
    report = run.load(LOAD_REQUESTS)
    assert len(report.results) == LOAD_REQUESTS
    assert report.counts["ok"] >= LOAD_REQUESTS * 0.9, report.summary()


def load_the_gateway(run: DevRun) -> None:
    """Requests the gateway answers alone (401 without a token, 200 for its liveness)."""
    statuses = run.poke(LOAD_REQUESTS)
    assert set(statuses) == {401, 200}, statuses


def stop_after_load(run: DevRun, load: Callable[[DevRun], None], stack_size: int) -> float:
    """Start ``run``, ``load`` it, SIGTERM it and check that it ended cleanly within the bound,
    leaving no process and no port behind; how long the stop took."""
    with run.running():
        assert len(run.stack) == stack_size, [p.command() for p in run.stack]
        load(run)
        started = time.monotonic()
        run.signal(signal.SIGTERM)
        status = run.wait(timeout=STOP_BOUND_SECONDS)
        took = time.monotonic() - started
        assert status == 0, run.output()
        assert run.leftovers(timeout=0) == ""
        return took


def report_stops(stops: list[float]) -> None:
    """Print how long the stops took (pytest -s shows it)."""
    print(f"{len(stops)} stops after SIGTERM: max {max(stops):.2f}s, mean {mean(stops):.2f}s")


@pytest.mark.timeout(FULL_STACK_STOP_CYCLES * 30)
def test_make_run_stops_on_the_first_sigterm_after_load_every_time(
    repo_root: Path, tmp_path: Path
) -> None:
    report_stops(
        [
            stop_after_load(DevRun(repo_root, tmp_path / f"run{n}"), load_everything, STACK_SIZE)
            for n in range(FULL_STACK_STOP_CYCLES)
        ]
    )


@pytest.mark.timeout(STOP_CYCLES * 10)
def test_make_run_of_the_gateway_alone_stops_on_the_first_sigterm_after_load_every_time(
    repo_root: Path, tmp_path: Path
) -> None:
    """The same signal path and stop stages (a service, then NATS) at a quarter of the cost."""
    report_stops(
        [
            stop_after_load(
                DevRun(repo_root, tmp_path / f"run{n}", ("gateway",)), load_the_gateway, 2
            )
            for n in range(STOP_CYCLES)
        ]
    )


def test_a_second_signal_while_stopping_ends_make_run_at_once(
    repo_root: Path, tmp_path: Path
) -> None:
    with DevRun(repo_root, tmp_path).running() as run:
        # A service that does not stop: frozen, it cannot act on the SIGTERM make run sends.
        stuck = next(p for p in run.stack if "payment_service" in p.command())
        subprocess.run(["kill", "-STOP", str(stuck.pid)], check=True)
        run.signal(signal.SIGTERM)
        run.wait_for_output("SIGTERM: stopping", timeout=5)
        time.sleep(0.5)
        assert run.process is not None
        assert run.process.poll() is None
        started = time.monotonic()
        run.signal(signal.SIGINT)
        status = run.wait(timeout=AT_ONCE_SECONDS)
        assert time.monotonic() - started < AT_ONCE_SECONDS
        assert status == exit_status(signal.SIGINT), run.output()
        assert "SIGINT while stopping: killing everything" in run.output()
        assert run.leftovers(timeout=AT_ONCE_SECONDS) == ""


def test_make_run_killed_with_sigkill_leaves_no_process_and_frees_its_ports(
    repo_root: Path, tmp_path: Path
) -> None:
    with DevRun(repo_root, tmp_path).running() as run:
        # Its children start nothing of their own: the kernel's parent-death signal, which
        # reaches children only, is then enough.
        assert len(run.stack) == STACK_SIZE, [p.command() for p in run.stack]
        run.load(LOAD_REQUESTS // 3)
        run.signal(signal.SIGKILL)
        assert run.wait(timeout=AT_ONCE_SECONDS) == -signal.SIGKILL
        assert run.leftovers(timeout=AT_ONCE_SECONDS) == ""


HOLDER = "import socket, sys, time; s = socket.create_server(('127.0.0.1', int(sys.argv[1]))); "
HOLDER += "print('listening', flush=True); time.sleep(120)"


def test_make_run_refuses_taken_ports_naming_the_holder(repo_root: Path, tmp_path: Path) -> None:
    run = DevRun(repo_root, tmp_path)
    taken = run.base_port + 2
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(taken), "port-holder-of-the-test"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"listening\n"
        run.start()
        assert run.wait(timeout=20) == 2
        output = run.output()
        assert f"{taken} ({run.ports[taken]}): PID {holder.pid}:" in output
        assert "port-holder-of-the-test" in output
        assert f"kill {holder.pid}" in output
        assert "--base-port" in output  # the other way out: other ports
        assert " | " not in output  # nothing started, nothing printed a log line
        assert not any(port_is_taken(port) for port in run.ports if port != taken)
    finally:
        run.kill()
        holder.kill()
        holder.wait()
