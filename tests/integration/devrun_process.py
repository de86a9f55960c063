"""`make run` (devkit.devrun) as a real process on ports of its own, for the tests of how it stops:
start it, wait until every service is ready, record the processes it started, load it through the
gateway, signal it, and check that nothing of it is left."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from devkit.devrun import SERVICES, planned_ports
from devkit.localstack.portholders import port_holders, port_is_taken
from devkit.localstack.ports import free_port, free_ports
from devkit.localstack.process import http_status
from devkit.testing.processes import ProcessIdentity, descendants_of, wait_until_gone
from loadgen.plan import LoadPlan
from loadgen.report import LoadReport
from loadgen.traffic import run_load

READY_SECONDS = 90.0


class DevRun:
    """One `make run` process: NATS and every service on free loopback ports of its own."""

    def __init__(
        self, repo_root: Path, directory: Path, services: tuple[str, ...] | None = None
    ) -> None:
        self.repo_root = repo_root
        self.directory = directory
        self.services = services
        self.base_port = free_ports(len(SERVICES))
        self.nats_port = free_port()
        chosen = tuple(s for s in SERVICES if services is None or s.name in services)
        self.ports = planned_ports(self.nats_port, self.base_port, chosen)
        self.log_path = directory / "make-run.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.stack: list[ProcessIdentity] = []

    @property
    def gateway(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.base_port}"

    def command(self) -> list[str]:
        """`make run`'s command line with this run's ports and directory."""
        return [
            sys.executable, "-m", "devkit.devrun",
            "--nats-port", str(self.nats_port),
            "--base-port", str(self.base_port),
            "--run-dir", str(self.directory / "run"),
            *(["--services", ",".join(self.services)] if self.services else []),
        ]  # fmt: skip

    def start(self) -> None:
        """Start `make run` (not waiting for anything)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.repo_root, stdout=log, stderr=subprocess.STDOUT
            )

    @contextmanager
    def running(self) -> Iterator[DevRun]:
        """Start it and wait until its stack is ready; whatever is left of it is killed after."""
        self.start()
        try:
            self.wait_ready()
            yield self
        finally:
            self.kill()

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        """Wait until every service answers /readyz with 200, then record the processes of the
        stack (everything below `make run`)."""
        assert self.process is not None
        urls = [
            f"http://127.0.0.1:{port}/readyz" for port, name in self.ports.items() if name != "nats"
        ]
        deadline = time.monotonic() + timeout
        while not all(http_status(url) == 200 for url in urls):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"make run exited with {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"make run not ready in {timeout}s:\n{self.output()}")
            time.sleep(0.1)
        self.stack = descendants_of(self.process.pid)

    def load(self, requests: int) -> LoadReport:
        """Send ``requests`` requests through the gateway (orders placed and read by users that
        register and sign in first) and return what each did."""
        plan = LoadPlan(target=self.gateway, rate=150, max_requests=requests, users=6, timeout=10)
        return asyncio.run(run_load(plan))

    def poke(self, requests: int) -> list[int | None]:
        """Send ``requests`` requests that the gateway answers alone, 8 at a time: orders and
        payments without a token (401) and its liveness (200); the HTTP status of each, None when
        nothing answered."""
        paths = ["/api/orders", "/api/payments/some-order", "/healthz"]
        urls = [self.gateway + paths[n % len(paths)] for n in range(requests)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(http_status, urls))

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to `make run`."""
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for `make run` to exit and return its status."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        """What `make run` printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Wait until `make run` has printed ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f"make run did not print {text!r}:\n{self.output()}")
            time.sleep(0.02)

    def leftovers(self, timeout: float) -> str:
        """What is left of the stack after up to ``timeout`` seconds: processes still alive and
        ports still taken, described; "" as soon as nothing is."""
        deadline = time.monotonic() + timeout
        alive = wait_until_gone(self.stack, timeout)
        taken = [port for port in self.ports if port_is_taken(port)]
        while taken and time.monotonic() < deadline:
            time.sleep(0.05)
            taken = [port for port in taken if port_is_taken(port)]
        lines = [f"process {p.pid} still alive: {p.command()}" for p in alive]
        lines += [f"port {p} ({self.ports[p]}) still taken by {port_holders(p)}" for p in taken]
        return "\n".join(lines)

    def kill(self) -> None:
        """After a failed test: SIGKILL `make run` and every process of its stack still alive."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in self.stack:
            process.kill()
