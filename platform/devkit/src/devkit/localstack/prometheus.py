"""A real Prometheus (Debian's package, installed by `make tools`) on a reserved loopback port,
scraping the targets it is given.

Debian builds Prometheus without its Kubernetes service discovery (``kubernetes_sd_configs`` is
not a known field of its configuration), so targets reach it through a file it watches
(``file_sd_configs``): static ones for tests, and the pods of a cluster through
:func:`pod_targets`, which applies the rules a Kubernetes pod discovery would have relabelled with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit.localstack.ports import free_port
from devkit.localstack.process import http_status, terminate
from devkit.localstack.tools import MissingToolError

DEBIAN_BINARY = Path("/usr/bin/prometheus")
JOB = "flotilla"
PART_OF_LABEL = "app.kubernetes.io/part-of"
NAME_LABEL = "app.kubernetes.io/name"
TRACK_LABEL = "flotilla.dev/track"
DEFAULT_TRACK = "stable"
METRICS_PORT_NAME = "http"

# A scrape target: its address ("127.0.0.1:8000") and the labels its series get
# (for Flotilla's pods: namespace, service, pod and track).
Target = tuple[str, Mapping[str, str]]


def prometheus_binary() -> str:
    """The prometheus binary: Debian's package, else one on PATH."""
    if DEBIAN_BINARY.exists():
        return str(DEBIAN_BINARY)
    found = shutil.which("prometheus")
    if found is None:
        raise MissingToolError(
            "prometheus not found: run `make tools` "
            "(platform/monitoring/install-prometheus.sh installs Debian's package)"
        )
    return found


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def pod_targets(
    pods: Iterable[Mapping[str, Any]], namespaces: Collection[str] | None = None
) -> list[Target]:
    """The scrape targets of Kubernetes pods, given as the API serves them (camelCase JSON, e.g.
    the items of `kubectl get pods -o json`): the pending and running pods with an IP labelled
    app.kubernetes.io/part-of=flotilla (in ``namespaces`` when given), on their pod IP and their
    container port named http. Labels: namespace, service (app.kubernetes.io/name), pod and track
    (flotilla.dev/track; stable when the pod has none, as stable pods carry no track label)."""
    targets: list[Target] = []
    for pod in pods:
        metadata = pod.get("metadata", {})
        labels = metadata.get("labels") or {}
        namespace = metadata.get("namespace", "")
        ip = pod.get("status", {}).get("podIP")
        if labels.get(PART_OF_LABEL) != "flotilla" or not ip:
            continue
        if namespaces is not None and namespace not in namespaces:
            continue
        # A starting pod too (it has its IP): scraped from its first second, not one discovery
        # round after it started.
        if pod.get("status", {}).get("phase") not in ("Pending", "Running"):
            continue
        ports = [
            port["containerPort"]
            for container in pod.get("spec", {}).get("containers", [])
            for port in container.get("ports") or []
            if port.get("name") == METRICS_PORT_NAME
        ]
        for port in ports[:1]:
            target_labels = {
                "namespace": namespace,
                "service": labels.get(NAME_LABEL, ""),
                "pod": metadata.get("name", ""),
                "track": labels.get(TRACK_LABEL) or DEFAULT_TRACK,
            }
            targets.append((f"{ip}:{port}", target_labels))
    return targets


class PrometheusServer:
    """One prometheus process on 127.0.0.1 with its storage, configuration, targets file and log
    in ``directory``; every target is scraped on /metrics each ``scrape_interval`` seconds."""

    def __init__(
        self, directory: Path, targets: Sequence[Target] = (), scrape_interval: float = 2.0
    ) -> None:
        self.directory = directory
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.config_file = directory / "prometheus.yml"
        self.targets_file = directory / "targets.json"
        self.log_file = directory / "prometheus.log"
        self._targets = list(targets)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the HTTP API answers (``<url>/api/v1/query``)."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The configuration this server runs with (written as JSON, which is valid YAML)."""
        interval = _duration(self.scrape_interval)
        return {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    # The file is watched; the refresh only backs the watch up.
                    "file_sd_configs": [
                        {"files": [str(self.targets_file)], "refresh_interval": "5s"}
                    ],
                }
            ],
        }

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Scrape ``targets`` from now on (a running server picks the change up by itself)."""
        self._targets = list(targets)
        groups = [{"targets": [address], "labels": dict(labels)} for address, labels in targets]
        self.directory.mkdir(parents=True, exist_ok=True)
        # Replaced in one rename: the watching server never reads a half-written file.
        partial = self.targets_file.with_suffix(".json.tmp")
        partial.write_text(json.dumps(groups, indent=2))
        os.replace(partial, self.targets_file)

    def command(self) -> list[str]:
        """Write the configuration and the targets file; the command line that serves them (for
        a supervisor of its own, such as the demo's; :meth:`start` runs it itself)."""
        binary = prometheus_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.config(), indent=2))
        self.set_targets(self._targets)
        return [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]

    def ready(self) -> bool:
        """True once GET /-/ready answers 200."""
        return http_status(self.url + "/-/ready") == 200

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until GET /-/ready answers 200."""
        command = self.command()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited at start; its log:\n{self.logs()}")
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"prometheus was not ready on port {self.port} within {timeout}s; log:\n{self.logs()}"
        )

    def healthy_targets(self) -> int:
        """How many targets the last scrape reached."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:  # noqa: S310
            body = json.load(response)
        return sum(1 for t in body["data"]["activeTargets"] if t["health"] == "up")

    def wait_for_targets(self, count: int, timeout: float = 20.0) -> None:
        """Wait until ``count`` targets have been scraped successfully. (New targets take up to
        5 s to be picked up: Prometheus passes discovered targets on at that pace.)"""
        deadline = time.monotonic() + timeout
        while (healthy := self.healthy_targets()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prometheus scraped {healthy} of {count} targets within {timeout}s; "
                    f"see {self.url}/targets and the log {self.log_file}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server process this object started (SIGTERM to its PID), and wait for it."""
        if self._process is not None:
            terminate(self._process, grace=15)
        self._process = None

    def logs(self) -> str:
        """Everything the server logged so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
