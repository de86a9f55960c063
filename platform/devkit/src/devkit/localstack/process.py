"""Run a service as a real uvicorn process on a free loopback port, as tests and `make run` do."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from devkit.localstack.ports import free_port

# How long a process the tests start may take to answer. Generous on purpose: it is a safety
# net, not a measurement, and on a two-core machine running two test workers (the ones beside
# the real node at a lower priority) a Python service's imports alone can take ten seconds.
START_TIMEOUT_SECONDS = 60.0


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to a process this program started (by its PID), then SIGKILL after ``grace``
    seconds if it is still there; returns once it has exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServiceProcess:
    """A service process whose output goes to a log file; stopped only by the test that made it."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.port = port or free_port()
        self.log_path = log_dir / f"{name}.log"
        self.env = {
            **os.environ,
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(self.port),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the service answers HTTP."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the process and wait until /healthz answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; its log:\n{self.logs()}")
            if self.http_status("/healthz") == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not become live in {timeout}s; log:\n{self.logs()}")

    def http_status(self, path: str) -> int | None:
        """The HTTP status of GET ``path``, or None when nothing answers."""
        return http_status(self.base_url + path)

    def wait_until(self, path: str, status: int, timeout: float = 20.0) -> None:
        """Poll GET ``path`` until it answers ``status``."""
        deadline = time.monotonic() + timeout
        last: int | None = None
        while time.monotonic() < deadline:
            last = self.http_status(path)
            if last == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}{path} answered {last}, not {status}, for {timeout}s")

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process."""
        if self.process is not None:
            self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit and return its code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s if the process is still there."""
        if self.process is not None:
            terminate(self.process, grace=20)

    def kill(self) -> None:
        """kill -9: no shutdown handlers run."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def logs(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
