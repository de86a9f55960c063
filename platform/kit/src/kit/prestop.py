"""The preStop hook of a service container: ``python -m kit.prestop SECONDS``.

It tells the service process (PID 1 of the container) to start draining (see
:mod:`kit.draining`), then waits ``SECONDS`` while Kubernetes takes the pod out of the
endpoints and clients finish with their connections; the kubelet sends SIGTERM afterwards.
Kept free of heavy imports: it runs once per pod stop, inside the container's limits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

# What the service takes as "start draining" (kit.draining listens for it).
DRAIN_SIGNAL = signal.SIGUSR1
SERVICE_PID = 1


def service_is_pid_1() -> bool:
    """Whether PID 1 is a Python process (the service in its container, not a host's init)."""
    try:
        command = Path(f"/proc/{SERVICE_PID}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return b"python" in Path(command.decode(errors="replace")).name.encode()


def main(argv: list[str]) -> int:
    """Signal the service to drain, then wait the given seconds; 2 on a bad argument."""
    try:
        seconds = float(argv[0]) if argv else 5.0
    except ValueError:
        print(f"kit.prestop: {argv[0]!r} is not a number of seconds", file=sys.stderr)
        return 2
    if service_is_pid_1():
        try:
            os.kill(SERVICE_PID, DRAIN_SIGNAL)
        except OSError as exc:  # still wait: the endpoints need the time either way
            print(f"kit.prestop: could not signal the service: {exc}", file=sys.stderr)
    else:
        print("kit.prestop: PID 1 is not the service; waiting only", file=sys.stderr)
    time.sleep(max(seconds, 0.0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
