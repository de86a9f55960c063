"""`make run`: NATS (with the per-service users of platform/nats/local.conf) and every service as
local processes, their JSON logs turned into readable lines prefixed by the service name.

It refuses to start when one of its ports is taken, naming the process that holds it. The first
Ctrl-C, SIGTERM or SIGHUP stops the services together, then NATS (each given a grace period, then
killed); a second one kills everything at once. The children die with it even when it is killed
with SIGKILL (devkit.localstack.lifeline)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devkit.localstack.children import Child, Children
from devkit.localstack.environment import nats_command, service_environment
from devkit.localstack.stopsignals import exit_status, hold_stop_signals, next_stop_signal
from devkit.localstack.takenports import taken_ports_message
from devkit.localstack.tools import nats_server_binary
from kit.layout import service_names

COLOURS = ("36", "35", "33", "32", "34", "31")
NATS_COLOUR = "37"
# Above the services' own graceful shutdown (kit's SERVICE_SHUTDOWN_TIMEOUT_SECONDS, 20 s).
SERVICE_GRACE_SECONDS = 25.0
NATS_GRACE_SECONDS = 10.0
WATCH_SECONDS = 0.5
PORTS_TAKEN = 2
CHILD_FAILED = 1


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--nats-port", type=int, default=4222)
    parser.add_argument("--base-port", type=int, default=8000, help="gateway port; others follow")
    parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    parser.add_argument("--nats-config", type=Path, default=Path("platform/nats/local.conf"))
    parser.add_argument(
        "--services",
        type=_service_selection,
        default=SERVICES,
        help="comma-separated services to run (default: all); each keeps its port",
    )
    return parser


def _service_selection(text: str) -> tuple[LocalService, ...]:
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = wanted - {s.name for s in SERVICES}
    if unknown or not wanted:
        known = ", ".join(s.name for s in SERVICES)
        raise argparse.ArgumentTypeError(f"not a service: {', '.join(sorted(unknown))} ({known})")
    return tuple(s for s in SERVICES if s.name in wanted)


def planned_ports(
    nats_port: int, base_port: int, services: tuple[LocalService, ...] = SERVICES
) -> dict[int, str]:
    """Every port `make run` listens on (running ``services``), with what listens there."""
    ports = {nats_port: "nats"}
    ports.update({base_port + s.port_offset: s.name for s in services})
    return ports


def _start_all(children: Children, args: argparse.Namespace) -> None:
    width = max(len(name) for name in ["nats", *(s.name for s in SERVICES)])
    nats_url = f"nats://127.0.0.1:{args.nats_port}"
    nats_argv = nats_command(
        nats_server_binary(), args.nats_port, args.run_dir / "nats", args.nats_config
    )
    children.start("nats", nats_argv, os.environ, _prefix("nats", NATS_COLOUR, width))
    urls = {s.name: f"http://127.0.0.1:{args.base_port + s.port_offset}" for s in SERVICES}
    for index, service in enumerate(SERVICES):
        if service not in args.services:
            continue
        database = f"sqlite+aiosqlite:///{args.run_dir / 'data' / service.name}.db"
        env = {
            **os.environ,
            **service_environment(
                service.name, nats_url=nats_url, urls=urls, database_url=database
            ),
            "SERVICE_PORT": str(args.base_port + service.port_offset),
        }
        command = [sys.executable, "-m", f"{service.name}_service.main"]
        prefix = _prefix(service.name, COLOURS[index % len(COLOURS)], width)
        children.start(service.name, command, env, prefix)
    for service in args.services:
        print(f"{service.name:>{width}}: {urls[service.name]}")
    print(f"{'nats':>{width}}: {nats_url}   (Ctrl-C stops everything; a second Ctrl-C at once)")
    sys.stdout.flush()


def _prefix(name: str, colour: str, width: int) -> str:
    return f"\033[{colour}m{name:>{width}} |\033[0m "


def _say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def _watch(children: Children) -> Child | None:
    """Until a stop signal (None) or a child exiting on its own (that child)."""
    while True:
        received = next_stop_signal(WATCH_SECONDS)
        if received is not None:
            _say(f"{received.name}: stopping (the services, then NATS); again to stop at once")
            return None
        exited = children.first_exited()
        if exited is not None:
            _say(f"{exited.name} exited with {exited.process.returncode}; stopping the rest")
            return exited


def _stop(children: Children) -> int:
    """Stop the services together (they drain into NATS), then NATS; the exit status."""
    services = [child for child in children.started if child.name != "nats"]
    nats = [child for child in children.started if child.name == "nats"]
    killed: list[str] = []
    for stage, grace in ((services, SERVICE_GRACE_SECONDS), (nats, NATS_GRACE_SECONDS)):
        result = children.stop_stage(stage, grace)
        if result.interrupted_by is not None:
            _say(f"{result.interrupted_by.name} while stopping: killing everything")
            children.kill_all()
            return exit_status(result.interrupted_by)
        killed += result.killed
    if killed:
        _say(f"killed {', '.join(killed)}: not stopped within the grace period")
        return CHILD_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run NATS and every service until Ctrl-C, SIGTERM or SIGHUP, then stop them in order."""
    args = _parser().parse_args(argv)
    taken = taken_ports_message(planned_ports(args.nats_port, args.base_port, args.services))
    if taken is not None:
        print(taken, file=sys.stderr)
        return PORTS_TAKEN
    # Before any thread or child starts: they inherit the mask (see stopsignals).
    hold_stop_signals()
    children = Children()
    try:
        _start_all(children, args)
        exited = _watch(children)
        status = _stop(children)
        return CHILD_FAILED if exited is not None and status == 0 else status
    finally:
        children.kill_all()  # whatever is left, also after an error
        children.drain_output()


if __name__ == "__main__":
    raise SystemExit(main())
