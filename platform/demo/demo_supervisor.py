"""The demo's processes and cluster: started in their own sessions, remembered in a state file,
and stopped in order at the end, on a failure, on Ctrl-C, or by the next run after a kill -9.

On a cluster the demo did not start (``--cluster-run-dir``) it deletes only what it created
there: the namespace of its service releases."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from demo_common import CLUSTER_SH, REPO, DemoError, tail

STATE_FILE = "demo-state.json"
# What the demo creates in its run directory (and removes again before the next run).
RUN_SUBDIRS = (
    "logs",
    "nats",
    "data",
    "values",
    "values-staging",
    "values-prod",
    "helm",
    "checkout",
    "cluster",
)


@dataclass
class Managed:
    """A long-running process the demo started (in its own session, so Ctrl-C reaches only the
    demo, which then stops it in order)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str


class Supervisor:
    """Starts and stops the demo's processes and its cluster; remembers them in a state file so
    that the next run can clean up after a demo that was killed (kill -9) midway."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.processes: list[Managed] = []
        self.cluster_name: str | None = None
        # On a cluster the demo did not start: (kubectl, kubeconfig, namespace) to delete; also,
        # in either mode, the namespaces of the environments it adds.
        self.namespaces: list[tuple[str, str, str]] = []
        self.owns_run_dir = False  # not before prepare() found no other demo there

    @property
    def cluster_dir(self) -> Path:
        """cluster.sh's run directory of the demo's cluster."""
        return self.run_dir / "cluster"

    # Before anything starts: refuse a demo that is running in this directory, reap a dead one.

    def prepare(self) -> None:
        """Clean up what a previous, killed demo left in the run directory, then reset it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state_path = self.run_dir / STATE_FILE
        if state_path.exists():
            try:
                state = json.loads(state_path.read_text())
            except ValueError:
                state = {}
            owner = int(state.get("pid", 0))
            if owner and owner != os.getpid() and "demo.py" in " ".join(_cmdline(owner)):
                raise DemoError(
                    f"another demo (pid {owner}) is running in {self.run_dir}: wait for it to "
                    "finish, or give this one another directory with --run-dir"
                )
            for entry in state.get("processes", []):
                stop_group(int(entry["pid"]), self.marker)
            if state.get("cluster"):
                self._cluster_down(str(state["cluster"]))
            for entry in state.get("namespaces") or []:
                kubectl, kubeconfig, namespace = (str(part) for part in entry)
                delete_namespace(kubectl, kubeconfig, namespace, self.logs)
        self.owns_run_dir = True
        for name in RUN_SUBDIRS:
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self._save()

    @property
    def marker(self) -> bytes:
        """What the command line or environment of every process of this run names."""
        return str(self.run_dir).encode()

    def _save(self) -> None:
        state = {
            "pid": os.getpid(),
            "cluster": self.cluster_name,
            "namespaces": [list(entry) for entry in self.namespaces],
            "processes": [{"name": m.name, "pid": m.process.pid} for m in self.processes],
        }
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def start(self, name: str, argv: list[str], env: Mapping[str, str], url: str) -> Managed:
        """Start ``argv`` with its output in logs/<name>.log."""
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        managed = Managed(name, process, log, url)
        self.processes.append(managed)
        self._save()
        return managed

    def stop(self, managed: Managed) -> None:
        """Stop one process (and what it started), and forget it."""
        if managed.process.poll() is None:
            managed.process.terminate()
            try:
                managed.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                managed.process.kill()
                managed.process.wait()
        stop_group(managed.process.pid, self.marker)
        self.processes = [m for m in self.processes if m is not managed]
        self._save()

    def check(self, managed: Managed) -> None:
        """Raise DemoError (with the end of its log) when the process has exited."""
        code = managed.process.poll()
        if code is not None:
            raise DemoError(
                f"{managed.name} exited with code {code}; the end of {managed.log}:\n"
                + tail(managed.log)
            )

    def set_cluster(self, name: str) -> None:
        """Remember the cluster (before it starts, so a killed start is cleaned up too)."""
        self.cluster_name = name
        self._save()

    def add_namespace(self, kubectl: str, kubeconfig: str, namespace: str) -> None:
        """Remember a namespace the demo creates (before it creates it), to delete it at the end
        when the cluster stays (on a cluster it started, the cluster goes)."""
        self.namespaces.append((kubectl, kubeconfig, namespace))
        self._save()

    def stop_all(self) -> list[str]:
        """Stop every process (the deployer first, NATS last), then delete the cluster (or, on
        a cluster the demo did not start, the namespace of its releases)."""
        stopped: list[str] = []
        if not self.owns_run_dir:
            return stopped
        nats_procs = [m for m in self.processes if m.name == "nats"]
        others = [m for m in self.processes if m.name != "nats"]
        for group in (others, nats_procs):
            for managed in group:
                if managed.process.poll() is None:
                    managed.process.terminate()
            for managed in group:
                try:
                    managed.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    managed.process.kill()
                    managed.process.wait()
                # What it started and left behind: the deployer's helm, for one.
                stop_group(managed.process.pid, self.marker)
                stopped.append(managed.name)
        self.processes = []
        if self.cluster_name is None:
            for entry in self.namespaces:
                delete_namespace(*entry, self.logs)
                stopped.append(f"namespace {entry[2]} (deleting)")
        self.namespaces = []
        if self.cluster_name is not None:
            self._cluster_down(self.cluster_name)
            stopped.append(f"cluster {self.cluster_name}")
            self.cluster_name = None
        self._save()
        return stopped

    def keep_cluster_logs(self) -> None:
        """Copy the cluster components' logs into logs/cluster (before the cluster is deleted)."""
        if self.cluster_name is None:
            return
        source = self.cluster_dir / "kwok" / "clusters" / self.cluster_name / "logs"
        if source.is_dir():
            shutil.copytree(source, self.logs / "cluster", dirs_exist_ok=True)

    def _cluster_down(self, name: str) -> None:
        if not (self.cluster_dir / "kwok" / "clusters" / name).exists():
            return
        with (
            (self.logs / "cluster.log").open("a")
            if self.logs.is_dir()
            else open(os.devnull, "w") as out
        ):
            subprocess.run(
                [str(CLUSTER_SH), "down", "--run-dir", str(self.cluster_dir), "--name", name],
                stdout=out,
                stderr=out,
                timeout=120,
                check=False,
            )


def delete_namespace(kubectl: str, kubeconfig: str, namespace: str, logs: Path) -> None:
    """Delete ``namespace`` and its pods without waiting (the next run waits until it is gone)."""
    with (logs / "commands.log").open("a") if logs.is_dir() else open(os.devnull, "w") as out:
        subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, "delete", "namespace", namespace,
             "--ignore-not-found", "--wait=false"],
            stdout=out,
            stderr=out,
            timeout=60,
            check=False,
        )  # fmt: skip


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _group_members(pgid: int, marker: bytes) -> list[int]:
    """The live processes of process group ``pgid`` whose command line or environment contains
    ``marker`` (so a recycled group id never matches someone else's processes)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces.
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            if (
                marker in (proc / "cmdline").read_bytes()
                or marker in (proc / "environ").read_bytes()
            ):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def stop_group(pgid: int, marker: bytes, grace: float = 10.0) -> None:
    """SIGTERM the demo's processes in group ``pgid`` (each process the demo starts leads its
    own), then SIGKILL what is left after ``grace`` seconds."""
    members = _group_members(pgid, marker)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while members and time.monotonic() < deadline:
        time.sleep(0.1)
        members = _group_members(pgid, marker)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
