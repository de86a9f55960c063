"""The Flux controllers (source-controller, kustomize-controller, helm-controller, built by
``platform/cluster/build-tools.sh flux``) as local processes against a cluster, with their CRDs.

    with FluxControllers(kubeconfig, tmp_path / "flux") as flux:
        ...  # GitRepository, Kustomization and HelmRelease objects are reconciled now

Each controller runs without leader election and without an events recorder, with its metrics
and health probes on reserved 127.0.0.1 ports, ``concurrency`` reconciles at a time, its log in
``<directory>/<name>.log`` and its temporary files in ``<directory>/tmp/<name>``.
source-controller keeps its artifacts in ``<directory>/storage`` and serves them on
:attr:`FluxControllers.storage_url`, where the other two download them.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devkit.localstack.ports import free_port
from devkit.localstack.process import http_status, terminate
from devkit.localstack.tools import MissingToolError, built_crd_dir, built_tool

CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller")
# The kinds whose objects carry the controllers' finalizers, Kustomizations first (deleting one
# prunes what it applied, HelmReleases among them).
FLUX_RESOURCES = ",".join((
    "kustomizations.kustomize.toolkit.fluxcd.io",
    "helmreleases.helm.toolkit.fluxcd.io",
    "helmcharts.source.toolkit.fluxcd.io",
    "gitrepositories.source.toolkit.fluxcd.io",
    "helmrepositories.source.toolkit.fluxcd.io",
    "ocirepositories.source.toolkit.fluxcd.io",
    "buckets.source.toolkit.fluxcd.io",
))  # fmt: skip
BUILD_HINT = "run platform/cluster/build-tools.sh flux"


def flux_binary(name: str, repo: Path | None = None) -> Path:
    """The built binary of controller ``name``; MissingToolError saying how to build it."""
    try:
        return built_tool(name, repo)
    except MissingToolError as exc:
        raise MissingToolError(
            f"{name} is not built: {BUILD_HINT} (about 4.5 minutes the first time, cached "
            "afterwards)"
        ) from exc


@dataclass
class Controller:
    """One controller process: its command line, probe port and log."""

    name: str
    command: list[str]
    health_port: int
    log_file: Path
    tmp_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def ready(self) -> bool:
        """True once GET /readyz on its health port answers 200."""
        return http_status(f"http://127.0.0.1:{self.health_port}/readyz", timeout=1.0) == 200

    def logs(self) -> str:
        """Everything the controller logged so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class FluxControllers:
    """source-controller, kustomize-controller and helm-controller for one cluster."""

    def __init__(
        self,
        kubeconfig: Path,
        directory: Path,
        repo: Path | None = None,
        *,
        concurrency: int = 2,
        requeue_dependency: str = "5s",
        log_level: str = "info",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.directory = directory
        self.repo = repo
        self.concurrency = concurrency
        self.requeue_dependency = requeue_dependency
        self.log_level = log_level
        self.storage_port = free_port()
        self.controllers: dict[str, Controller] = {}

    @property
    def storage_url(self) -> str:
        """Where source-controller serves its artifacts (``<url>/gitrepository/...``)."""
        return f"http://127.0.0.1:{self.storage_port}"

    def _kubectl(self, *args: str, timeout: float = 60) -> str:
        kubectl = built_tool("kubectl", self.repo)
        argv = [str(kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
        return result.stdout

    def delete_objects(self, namespace: str, timeout: float = 60) -> list[str]:
        """Delete every Flux object in ``namespace`` while the controllers still run: each
        carries a finalizer only its controller removes, so a namespace deleted after
        :meth:`stop` would stay Terminating. Objects still there after ``timeout`` lose their
        finalizers; their names are returned (empty when the controllers removed them all)."""
        try:
            self._kubectl(
                "delete", FLUX_RESOURCES, "--all", "-n", namespace, "--ignore-not-found",
                "--wait", f"--timeout={int(timeout)}s", timeout=timeout + 15,
            )  # fmt: skip
            return []
        except (RuntimeError, subprocess.TimeoutExpired):
            names = self._kubectl("get", FLUX_RESOURCES, "-n", namespace, "-o", "name").split()
            for name in names:
                self._kubectl(
                    "patch", "-n", namespace, name, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}',
                )  # fmt: skip
            return names

    def install_crds(self, timeout: float = 60) -> Path:
        """Apply the controllers' CRDs (server-side) and wait until the API serves them; their
        directory."""
        crds = built_crd_dir("flux", self.repo)
        self._kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
        self._kubectl(
            "wait", "--for=condition=Established", f"--timeout={int(timeout)}s", "-f", str(crds),
            timeout=timeout + 10,
        )  # fmt: skip
        return crds

    def _common_flags(self, health_port: int) -> list[str]:
        return [
            f"--health-addr=127.0.0.1:{health_port}",
            f"--metrics-addr=127.0.0.1:{free_port()}",
            "--events-addr=",
            "--enable-leader-election=false",
            f"--concurrent={self.concurrency}",
            f"--log-level={self.log_level}",
            "--log-encoding=json",
        ]

    def _extra_flags(self, name: str) -> list[str]:
        if name == "source-controller":
            address = f"127.0.0.1:{self.storage_port}"
            return [
                f"--storage-path={self.directory / 'storage'}",
                f"--storage-addr={address}",
                f"--storage-adv-addr={address}",
            ]
        flags = [f"--requeue-dependency={self.requeue_dependency}"]
        if name == "kustomize-controller":
            flags.append(f"--concurrent-ssa={self.concurrency}")
        if name == "helm-controller":
            # Stopping waits for a running install or upgrade no longer than this.
            flags.append("--graceful-shutdown-timeout=5s")
        return flags

    def controller(self, name: str) -> Controller:
        """The process description of controller ``name`` (not started)."""
        health_port = free_port()
        command = [str(flux_binary(name, self.repo)), *self._common_flags(health_port)]
        command += self._extra_flags(name)
        return Controller(
            name=name,
            command=command,
            health_port=health_port,
            log_file=self.directory / f"{name}.log",
            tmp_dir=self.directory / "tmp" / name,
        )

    def _environment(self, controller: Controller) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "TMPDIR": str(controller.tmp_dir),
            "HOME": str(controller.tmp_dir),
        }

    def start(self, timeout: float = 60) -> None:
        """Install the CRDs, start the three controllers and wait until each is ready; on
        failure the ones started are stopped again."""
        try:
            (self.directory / "storage").mkdir(parents=True, exist_ok=True)
            self.install_crds(timeout)
            for name in CONTROLLERS:
                self._launch(self.controller(name))
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _launch(self, controller: Controller) -> None:
        controller.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.controllers[controller.name] = controller
        with controller.log_file.open("ab") as log:
            controller.process = subprocess.Popen(
                controller.command,
                env=self._environment(controller),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.controllers.values())
        while waiting:
            for controller in list(waiting):
                assert controller.process is not None
                if controller.process.poll() is not None:
                    raise RuntimeError(
                        f"{controller.name} exited with {controller.process.returncode} at "
                        f"start; its log:\n{controller.logs()[-4000:]}"
                    )
                if controller.ready():
                    waiting.remove(controller)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(c.name for c in waiting)
                raise TimeoutError(f"{names} not ready in {timeout}s; logs in {self.directory}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the controller processes this object started (SIGTERM to each PID, SIGKILL
        after 15 s) and wait for them."""
        started = [c.process for c in self.controllers.values() if c.process is not None]
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            terminate(process, grace=15)
        for controller in self.controllers.values():
            controller.process = None
        self.controllers.clear()

    def logs(self, name: str) -> str:
        """What controller ``name`` logged so far."""
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> FluxControllers:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
