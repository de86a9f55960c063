"""Pod discovery for the local Prometheus: a thread that lists a namespace's pods every second
and hands their scrape targets to the server (Debian's Prometheus has no Kubernetes discovery of
its own; see devkit.localstack.prometheus)."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devkit.localstack.prometheus import PrometheusServer, Target, pod_targets

log = logging.getLogger(__name__)


class PodDiscovery:
    """Keeps ``server``'s targets equal to the running pods of ``namespaces`` (listed with
    ``kubectl``), until stopped."""

    def __init__(
        self,
        server: PrometheusServer,
        kubectl: Path,
        kubeconfig: Path,
        namespaces: Sequence[str],
        every: float = 1.0,
    ) -> None:
        self.server = server
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.namespaces = tuple(namespaces)
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: list[Target] | None = None

    def pods(self) -> list[dict[str, Any]]:
        """The pods of every watched namespace, as the API server has them."""
        found: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            listed = subprocess.run(
                [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "get", "pods",
                 "-n", namespace, "-o", "json"],
                capture_output=True, text=True, timeout=20, check=True,
            )  # fmt: skip
            found += json.loads(listed.stdout)["items"]
        return found

    def refresh(self) -> list[Target]:
        """List the pods once and update the server's targets when they changed."""
        targets = sorted(pod_targets(self.pods(), self.namespaces), key=lambda t: t[0])
        if targets != self._last:
            self.server.set_targets(targets)
            self._last = targets
        return targets

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except (subprocess.SubprocessError, ValueError, OSError) as exc:
                log.warning("pod discovery: listing the pods failed", extra={"error": repr(exc)})

    def start(self) -> None:
        """List the pods now, then every ``every`` seconds in a thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="pod-discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
