"""Free loopback ports for servers started by tests.

Ports come from below the kernel's ephemeral range: a port from inside it (what binding to port 0
gives) can be taken between the check and the server's bind by any outgoing connection's local
end, e.g. a service connecting to NATS while the next service starts.
"""

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000
# Ports from 30000 up belong to the local cluster: its NodePorts (30000-30999), which kube-proxy
# answers on 127.0.0.1 whoever binds them, and kwokctl's component ports (down from 32767).
_CLUSTER_PORTS_START = 30000


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that nothing uses right now."""
    highest = min(_ephemeral_start(), _CLUSTER_PORTS_START) - count
    for _ in range(1000):
        first = random.randint(_LOWEST, highest)  # noqa: S311 - spreading, not security
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} free consecutive ports on 127.0.0.1 below {highest}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now."""
    return free_ports(1)
