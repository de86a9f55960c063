"""A JetStream cluster of real nats-server processes on 127.0.0.1: what the nats chart runs in
Kubernetes (three members routed to each other), for the tests that lose a member."""

from __future__ import annotations

import time
from pathlib import Path

from devkit.localstack.nats import NatsServer
from devkit.localstack.ports import free_port
from devkit.localstack.process import http_status

CLUSTER_NAME = "flotilla-local"


class NatsCluster:
    """``size`` members, each a :class:`NatsServer` with its own store, client, route and
    monitoring ports, routed to every member (as the chart's routes list every pod)."""

    def __init__(self, directory: Path, size: int = 3, users_config: Path | None = None) -> None:
        if size < 1 or size % 2 == 0:
            raise ValueError(f"a JetStream cluster of {size} members has no majority: use 1, 3, 5")
        self.directory = directory
        self.users_config = users_config
        self.names = [f"{CLUSTER_NAME}-{index}" for index in range(size)]
        self.members = [
            NatsServer(directory / name, config_file=directory / f"{name}.conf")
            for name in self.names
        ]
        self.route_ports = [free_port() for _ in self.names]
        self.monitor_ports = [free_port() for _ in self.names]

    @property
    def url(self) -> str:
        """Every member's client URL, comma-separated: what NATS_URL holds for a cluster."""
        return ",".join(member.url for member in self.members)

    def member(self, server_name: str) -> NatsServer:
        """The member whose server_name is ``server_name`` (as JetStream reports leaders)."""
        return self.members[self.names.index(server_name)]

    def name_of(self, member: NatsServer) -> str:
        """The server_name of ``member``."""
        return self.names[self.members.index(member)]

    def start(self, timeout: float = 30.0) -> None:
        """Start every member and wait until each one reports JetStream healthy (the members
        have elected a meta leader and caught up with it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for index, member in enumerate(self.members):
            assert member.config_file is not None
            member.config_file.write_text(self._config(index))
        try:
            for member in self.members:
                member.start()
            self.wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_until_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running member answers 200 on /healthz (JetStream current)."""
        running = [i for i, member in enumerate(self.members) if member.pid is not None]
        deadline = time.monotonic() + timeout
        waiting = running
        while waiting:
            waiting = [i for i in running if http_status(self._health_url(i), timeout=1) != 200]
            if not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(self.names[i] for i in waiting)
                raise TimeoutError(
                    f"NATS cluster members {names} not healthy within {timeout}s; see the "
                    f"nats-server.log of each under {self.directory}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every member this cluster started."""
        for member in self.members:
            member.stop()

    def _health_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.monitor_ports[index]}/healthz"

    def _config(self, index: int) -> str:
        # Client port and store come from the command line (devkit.localstack.environment).
        routes = ", ".join(f"nats://127.0.0.1:{port}" for port in self.route_ports)
        lines = []
        if self.users_config is not None:
            # Its users and limits, copied (nats-server includes only relative paths); the
            # server_name below replaces the one it sets.
            lines.append(self.users_config.read_text())
        lines += [
            f"server_name: {self.names[index]}",
            f"http: 127.0.0.1:{self.monitor_ports[index]}",
            "cluster {",
            f"  name: {CLUSTER_NAME}",
            f"  listen: 127.0.0.1:{self.route_ports[index]}",
            # Clients use the URLs they were given, as the services do in Kubernetes.
            "  no_advertise: true",
            f"  routes: [{routes}]",
            "}",
        ]
        return "\n".join(lines) + "\n"
