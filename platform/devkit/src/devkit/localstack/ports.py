"""Loopback ports for the servers the project starts on this machine, that no other part of the
stack can take between the choice and the server's bind.

Two rules make that hold:
- Ports come from 10000-29999: below the kernel's ephemeral range, where any outgoing
  connection's local end could land (what binding to port 0 gives), and below the local cluster's
  ports (its NodePorts from 30000, kwokctl's components probing down from 32767).
- Each port is reserved for the process that chose it: an exclusive lock on a file named after
  the port, in a directory every Flotilla process on the machine shares. Another test stack, the
  demo or `make run` started at the same moment skips a locked port even before its server has
  bound it. The kernel drops the lock when the process that holds it exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000
_CLUSTER_PORTS_START = 30000
LOCK_DIR_ENV = "FLOTILLA_PORT_LOCKS"
# The lock files this process holds, by port: kept open for the life of the process.
_held: dict[int, IO[bytes]] = {}


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def lock_dir() -> Path:
    """The directory of the port reservations (shared by every Flotilla process here)."""
    directory = Path(
        os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "flotilla-port-locks"
    )
    directory.mkdir(mode=0o1777, parents=True, exist_ok=True)
    return directory


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _reserve(port: int, directory: Path) -> bool:
    """Lock ``port`` for this process; False when another process holds it."""
    if port in _held:
        return False  # already handed out by this process
    # Opened close-on-exec (Python's default): a child never inherits, and so never keeps, it.
    handle = (directory / f"{port}.lock").open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _held[port] = handle
    return True


def _release(ports: list[int]) -> None:
    for port in ports:
        handle = _held.pop(port, None)
        if handle is not None:
            handle.close()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1, reserved for this process and
    free right now (nothing listens there)."""
    highest = min(_ephemeral_start(), _CLUSTER_PORTS_START) - count
    directory = lock_dir()
    for _ in range(1000):
        first = random.randint(_LOWEST, highest)  # noqa: S311 - spreading, not security
        wanted = range(first, first + count)
        taken = [port for port in wanted if _reserve(port, directory)]
        if len(taken) == count and all(_bindable(port) for port in wanted):
            return first
        _release(taken)
    raise RuntimeError(
        f"no {count} free consecutive ports on 127.0.0.1 between {_LOWEST} and {highest}: "
        f"stop other local stacks (their reservations are the locked files in {directory})"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1, reserved for this process and free right now."""
    return free_ports(1)


def wait_until_listening(
    process: subprocess.Popen[bytes], port: int, timeout: float, exited: Callable[[], str]
) -> None:
    """Wait until ``process`` accepts connections on 127.0.0.1:``port``; RuntimeError with
    ``exited()`` when it exits first, TimeoutError when it does not listen in ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(exited())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")
