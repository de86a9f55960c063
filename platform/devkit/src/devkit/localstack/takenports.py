"""Before a local stack starts: which of its ports are taken, by which process, and what to do."""

from __future__ import annotations

from collections.abc import Mapping

from devkit.localstack.portholders import PortHolder, port_holders, port_is_taken

OTHER_PORTS_HINT = "make run RUN_ARGS='--nats-port 4333 --base-port 9000'"


def _holder_lines(port: int, user: str, holders: list[PortHolder]) -> list[str]:
    if not holders:
        return [
            f"  {port} ({user}): taken, but no process of this user listens there (another "
            "user's, one in another network namespace, or one still exiting: try again)"
        ]
    return [f"  {port} ({user}): PID {holder.pid}: {holder.command}" for holder in holders]


def taken_ports_message(ports: Mapping[int, str]) -> str | None:
    """None when every port of ``ports`` (port -> what would listen there) can be bound on
    127.0.0.1; otherwise a message naming the processes that hold them and what to do."""
    taken = [port for port in ports if port_is_taken(port)]
    if not taken:
        return None
    holders = {port: port_holders(port) for port in taken}
    lines = [f"make run: port(s) {', '.join(map(str, taken))} on 127.0.0.1 already taken:"]
    for port in taken:
        lines += _holder_lines(port, ports[port], holders[port])
    pids = sorted({holder.pid for found in holders.values() for holder in found})
    stop = f"stop it (kill {' '.join(map(str, pids))})" if pids else "stop what holds them"
    lines.append(
        f"Nothing was started. Either {stop} - it may be left over from an earlier `make run` - "
        f"and run again, or choose other ports: {OTHER_PORTS_HINT}"
    )
    return "\n".join(lines)
