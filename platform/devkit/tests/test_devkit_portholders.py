"""Which process holds a port, read from /proc, and the message `make run` prints when its ports
are taken. Real sockets and processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from devkit.localstack.portholders import port_holders, port_is_taken
from devkit.localstack.ports import free_port
from devkit.localstack.takenports import taken_ports_message

LISTENER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
print("listening", flush=True)
sys.stdin.read()
"""


@contextmanager
def listener(host: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A process of its own listening on ``host``:``port`` until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", LISTENER, host, str(port), "a-listener-of-the-test"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"listening\n"
        yield process
    finally:
        process.kill()
        process.wait()


def test_an_ipv4_listener_is_named_by_pid_and_command_line() -> None:
    port = free_port()
    with listener("127.0.0.1", port) as process:
        assert port_is_taken(port)
        [holder] = port_holders(port)
        assert holder.pid == process.pid
        assert holder.command.startswith(sys.executable + " -c ")
        assert holder.command.endswith(f"127.0.0.1 {port} a-listener-of-the-test")
    assert not port_is_taken(port)
    assert port_holders(port) == []


def test_an_ipv6_listener_is_found_too() -> None:
    port = free_port()
    with listener("::1", port) as process:
        assert [holder.pid for holder in port_holders(port)] == [process.pid]


def test_connections_of_a_server_that_just_stopped_do_not_take_its_port() -> None:
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its end waits in TIME_WAIT on the port
    client.close()
    server.close()
    assert not port_is_taken(port)


def test_the_message_names_the_holder_and_both_ways_out() -> None:
    taken, free = free_port(), free_port()
    assert taken_ports_message({free: "nats"}) is None
    with listener("127.0.0.1", taken) as process:
        message = taken_ports_message({free: "nats", taken: "gateway"})
    assert message is not None
    assert f"port(s) {taken} on 127.0.0.1 already taken" in message
    assert f"{taken} (gateway): PID {process.pid}: " in message
    assert "a-listener-of-the-test" in message
    assert f"stop it (kill {process.pid})" in message
    assert "--nats-port 4333 --base-port 9000" in message
    assert str(free) not in message
