"""Which process holds a TCP port on this machine, read from /proc (Linux): the listening sockets
of /proc/net/tcp and /proc/net/tcp6 by inode, and the processes whose /proc/<pid>/fd links point
at those inodes. Processes of other users cannot be read without privileges; they are reported as
unknown rather than guessed at."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TCP_TABLES = (PROC / "net" / "tcp", PROC / "net" / "tcp6")
LISTEN_STATE = "0A"  # TCP_LISTEN in the tables' hexadecimal st column


@dataclass(frozen=True)
class PortHolder:
    """A process with a socket listening on the port: its PID and command line."""

    pid: int
    command: str


def port_is_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not bind ``host``:``port`` now, as the local servers bind it
    (with SO_REUSEADDR, so the TIME_WAIT connections of a server that just stopped do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def listening_inodes(port: int) -> set[int]:
    """The inodes of the sockets listening on TCP ``port`` (any address, IPv4 or IPv6)."""
    inodes: set[int] = set()
    for table in TCP_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6 on this machine, or no /proc
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN_STATE:
                continue
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[9] != "0":
                inodes.add(int(fields[9]))
    return inodes


def _command_line(pid: str) -> str:
    try:
        raw = (PROC / pid / "cmdline").read_bytes()
    except OSError:
        return "?"
    parts = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if parts:
        return " ".join(parts)
    try:  # a kernel thread or a zombie: no arguments, only a name
        return f"[{(PROC / pid / 'comm').read_text().strip()}]"
    except OSError:
        return "?"


def socket_owners(inodes: set[int]) -> list[PortHolder]:
    """The processes (readable by this user) with a descriptor on one of the socket ``inodes``."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: list[PortHolder] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.listdir(entry / "fd")
        except OSError:
            continue  # another user's process, or gone meanwhile
        for descriptor in descriptors:
            try:
                target = os.readlink(entry / "fd" / descriptor)
            except OSError:
                continue
            if target in wanted:
                owners.append(PortHolder(int(entry.name), _command_line(entry.name)))
                break
    return sorted(owners, key=lambda holder: holder.pid)


def port_holders(port: int) -> list[PortHolder]:
    """The processes listening on TCP ``port``, as far as this user can see them."""
    inodes = listening_inodes(port)
    return socket_owners(inodes) if inodes else []
