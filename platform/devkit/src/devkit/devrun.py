"""`make run`: NATS (with the per-service users of platform/nats/local.conf) and every service as
local processes, their JSON logs turned into readable lines prefixed by the service name."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devkit.localstack.environment import nats_command, service_environment
from devkit.localstack.tools import nats_server_binary
from kit.layout import service_names

COLOURS = ("36", "35", "33", "32", "34", "31")
LEVEL_COLOURS = {"WARNING": "33", "ERROR": "31", "CRITICAL": "31"}
QUIET_KEYS = {"time", "level", "logger", "message", "service", "request_id", "trace_id", "span_id"}


@dataclass(frozen=True)
class LocalService:
    """One service as `make run` starts it."""

    name: str
    port_offset: int


def local_services() -> tuple[LocalService, ...]:
    """Every service folder, the gateway on the base port and the others after it by name."""
    names = sorted(service_names(), key=lambda name: (name != "gateway", name))
    return tuple(LocalService(name, offset) for offset, name in enumerate(names))


SERVICES = local_services()


def _readable(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    level = str(record.get("level", ""))
    extras = " ".join(
        f"{key}={value}"
        for key, value in record.items()
        if key not in QUIET_KEYS and value is not None
    )
    colour = LEVEL_COLOURS.get(level)
    message = f"\033[{colour}m{record['message']}\033[0m" if colour else str(record["message"])
    ids = f" trace={record['trace_id'][:8]}" if record.get("trace_id") else ""
    return f"{level[:4]:<4} {message}{(' ' + extras) if extras else ''}{ids}"


def _pump(name: str, colour: str, stream: IO[bytes], width: int) -> None:
    prefix = f"\033[{colour}m{name:>{width}} |\033[0m "
    for raw in iter(stream.readline, b""):
        sys.stdout.write(prefix + _readable(raw.decode(errors="replace").rstrip()) + "\n")
        sys.stdout.flush()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _start(
    name: str, command: list[str], env: dict[str, str], colour: str, width: int
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(name, colour, process.stdout, width), daemon=True).start()
    return process


def main(argv: list[str] | None = None) -> int:
    """Run NATS and every service until Ctrl-C or SIGTERM, then stop them in order."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--nats-port", type=int, default=4222)
    parser.add_argument("--base-port", type=int, default=8000, help="gateway port; others follow")
    parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    parser.add_argument("--nats-config", type=Path, default=Path("platform/nats/local.conf"))
    args = parser.parse_args(argv)

    ports = [args.nats_port, *(args.base_port + s.port_offset for s in SERVICES)]
    busy = [port for port in ports if not _port_is_free(port)]
    if busy:
        print(
            f"make run: port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use. Stop what "
            "listens there (another `make run`?) or choose others: "
            "make run RUN_ARGS='--nats-port 4333 --base-port 9000'",
            file=sys.stderr,
        )
        return 2

    width = max(len(s.name) for s in SERVICES)
    nats_url = f"nats://127.0.0.1:{args.nats_port}"
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    nats_argv = nats_command(
        nats_server_binary(), args.nats_port, args.run_dir / "nats", args.nats_config
    )
    processes.append(("nats", _start("nats", nats_argv, dict(os.environ), "37", width)))
    urls = {s.name: f"http://127.0.0.1:{args.base_port + s.port_offset}" for s in SERVICES}
    for index, service in enumerate(SERVICES):
        database = f"sqlite+aiosqlite:///{args.run_dir / 'data' / service.name}.db"
        env = {
            **os.environ,
            **service_environment(
                service.name, nats_url=nats_url, urls=urls, database_url=database
            ),
            "SERVICE_PORT": str(args.base_port + service.port_offset),
        }
        command = [sys.executable, "-m", f"{service.name}_service.main"]
        colour = COLOURS[index % len(COLOURS)]
        processes.append((service.name, _start(service.name, command, env, colour, width)))
    for service in SERVICES:
        print(f"{service.name:>{width}}: http://127.0.0.1:{args.base_port + service.port_offset}")
    print(f"{'nats':>{width}}: {nats_url}   (Ctrl-C stops everything)")

    try:
        while not stop.is_set():
            exited = [(name, p.returncode) for name, p in processes if p.poll() is not None]
            if exited:
                print(f"make run: {exited[0][0]} exited with {exited[0][1]}; stopping the rest")
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    # Services first (they drain into NATS), NATS last.
    for _, process in reversed(processes):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
