"""`make demo`: independent rollouts, end to end on the local control plane.

It starts its own cluster with the machine's real node (platform/cluster/cluster.sh), NATS and
PostgreSQL in it as real pods (charts/nats, charts/postgres, the Secrets of platform/secrets),
and, as local processes on 127.0.0.1, the NATS that CI and the deployer talk over (the users of
platform/nats/local.conf) and the deployer; then it plays CI with the pipelines CLI in a
throw-away clone of the repository, building every image from its Dockerfile (buildah, no Docker
engine) into the cluster's registry:

1. every service released at 1.0.0 (built, published and waited for, four lanes in parallel);
2. an order placed through the gateway pod (a NodePort on 127.0.0.1) and paid;
3. order alone bumped to 1.1.0: the deployer's plan, the live rollout of real pods, and the
   ReplicaSets of every service before and after, proving that only order rolled;
4. a really broken order image (its process exits at start) that fails and is rolled back,
   while the previous ReplicaSet keeps serving.

Everything it started is stopped at the end, also on failure and on Ctrl-C; the logs stay in
<run dir>/logs.

    .venv/bin/python platform/demo/demo.py [--run-dir .run/demo] [--no-color] [--helm-timeout 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from deployer.contract import DeployEventData, DeployPhase
from deployer.plan import Plan
from kit.events import CloudEvent, InvalidEventError, PermanentEventError
from kit.testing.nats_server import nats_server_binary
from kit.testing.ports import free_port
from pipelines_cli.buildah import BUILD_LOG_ENV
from pipelines_cli.incluster import (
    Cluster,
    build_services,
    install_dependencies,
    local_values,
    push_variant,
)

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "platform" / "cluster" / "cluster.sh"
BUILD_TOOLS = REPO / "platform" / "cluster" / "build-tools.sh"
NATS_CONFIG = REPO / "platform" / "nats" / "local.conf"
PIPELINES_SRC = REPO / "pipelines" / "src"
SERVICES = ("gateway", "auth", "order", "payment")
NAMESPACE = "flotilla-demo"
# The images' names; the real node resolves every registry to the cluster's own.
REGISTRY = "ghcr.io/flotilla"
# What the broken build runs instead of the service: it exits at start, never Ready.
BROKEN_COMMAND = ("python", "-c", "raise SystemExit('broken build: exits at start')")
INSTANCE_LABEL = "app.kubernetes.io/instance"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
STATE_FILE = "demo-state.json"
# Pipeline run ids of the simulated CI (each demo has a fresh NATS, so they never collide).
RUN_ID_PREFIX = "demo"
# What the demo creates in its run directory (and removes again before the next run).
RUN_SUBDIRS = ("logs", "nats", "data", "values", "helm", "checkout", "cluster")
DEPLOY_TIMEOUT = 120.0
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Flotilla Demo",
    "GIT_AUTHOR_EMAIL": "demo@flotilla.invalid",
    "GIT_COMMITTER_NAME": "Flotilla Demo",
    "GIT_COMMITTER_EMAIL": "demo@flotilla.invalid",
}


def local_password(user: str) -> str:
    """The public development password of a platform/nats/local.conf user."""
    return f"{user}-local-only"


class DemoError(Exception):
    """A step failed; the message says what, and where to look."""


# ---- processes ------------------------------------------------------------------------------


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

    def check(self, managed: Managed) -> None:
        """Raise DemoError (with the end of its log) when the process has exited."""
        code = managed.process.poll()
        if code is not None:
            raise DemoError(
                f"{managed.name} exited with code {code}; the end of {managed.log}:\n"
                + _tail(managed.log)
            )

    def set_cluster(self, name: str) -> None:
        """Remember the cluster (before it starts, so a killed start is cleaned up too)."""
        self.cluster_name = name
        self._save()

    def stop_all(self) -> list[str]:
        """Stop every process (services and deployer first, NATS last) and the cluster."""
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


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Result:
    """A finished short command."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        """The command, its exit code and the end of its output."""
        output = (self.stderr.strip() or self.stdout.strip())[-1500:]
        return f"`{shlex.join(self.argv)}` exited with {self.code}: {output}"


async def run(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    check: bool = True,
) -> Result:
    """Run a short command (output appended to ``log``); killed if the demo is interrupted."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd or REPO,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        # The whole process group (its own session): cluster.sh's kwokctl must not go on alone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await _reap(process)
        raise
    result = Result(list(argv), process.returncode or 0, out.decode(), err.decode())
    with log.open("a") as record:
        record.write(f"$ {shlex.join(result.argv)}\n{result.stdout}{result.stderr}")
        record.write(f"[exit {result.code}]\n\n")
    if check and result.code != 0:
        raise DemoError(result.explain())
    return result


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Wait for a killed process to exit, through further cancellations (asyncio.run cancels the
    tasks a cancelled gather() left running), so it is reaped before the event loop closes."""
    while True:
        try:
            await process.wait()
        except asyncio.CancelledError:
            continue
        return


def built_tool(binary: str) -> Path:
    """A binary built by platform/cluster/build-tools.sh (never one from PATH)."""
    result = subprocess.run(
        [str(BUILD_TOOLS), "--path", binary], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DemoError(
            f"{binary} is not built: run `make cluster-tools` (platform/cluster/build-tools.sh; "
            f"about 10 minutes the first time, cached afterwards). {result.stderr.strip()}"
        )
    return Path(result.stdout.strip())


# ---- deploy events --------------------------------------------------------------------------


class DeployEvents:
    """Every ``deploy.>`` event, read as CI's NATS user (a core subscription made before
    anything is deployed, so nothing is missed)."""

    def __init__(self) -> None:
        self.events: list[DeployEventData] = []
        self._changed = asyncio.Condition()
        self._nc: Any = None

    async def connect(self, url: str) -> None:
        """Connect as the ``ci`` user and subscribe to ``deploy.>``."""
        self._nc = await nats.connect(
            servers=[url], user="ci", password=local_password("ci"), name="flotilla-demo"
        )
        await self._nc.subscribe("deploy.>", cb=self._on_message)

    async def close(self) -> None:
        """Drain the connection."""
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    async def _on_message(self, msg: Any) -> None:
        try:
            data = CloudEvent.from_bytes(msg.data).data_as(DeployEventData)
        except (InvalidEventError, PermanentEventError):
            return  # not a deploy event this demo can show
        async with self._changed:
            self.events.append(data)
            self._changed.notify_all()

    async def _after(self, index: int, limit: float) -> list[DeployEventData]:
        """The events after the first ``index`` ones, as soon as there are any (none at the
        monotonic time ``limit``)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.events) > index),
                    max(0.0, limit - time.monotonic()),
                )
            return self.events[index:]

    async def track(
        self,
        deployment_id: str,
        on_event: Callable[[DeployEventData], None],
        timeout: float = DEPLOY_TIMEOUT,
    ) -> list[DeployEventData]:
        """Call ``on_event`` for each event of the deployment until its outcome (``failed`` is
        followed by ``rolled_back`` when Helm restored the previous revision); returns them."""
        seen: list[DeployEventData] = []
        index = 0
        deadline = time.monotonic() + timeout
        failed_at: float | None = None
        while True:
            limit = deadline if failed_at is None else min(deadline, failed_at + 5)
            new = await self._after(index, limit)
            if not new:
                if failed_at is not None:
                    return seen
                phases = " -> ".join(e.phase.value for e in seen) or "none"
                raise DemoError(
                    f"deployment {deployment_id} had no outcome within {timeout:.0f} s "
                    f"(events so far: {phases}); see logs/deployer.log"
                )
            index += len(new)
            for event in new:
                if event.deployment_id != deployment_id:
                    continue
                seen.append(event)
                on_event(event)
                if event.phase is DeployPhase.FAILED:
                    failed_at = time.monotonic()
                elif event.phase.terminal:
                    return seen


# ---- ReplicaSets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaSet:
    """One ReplicaSet of a service's Deployment, as `kubectl get rs -o json` shows it."""

    service: str
    name: str
    uid: str
    revision: int
    desired: int
    ready: int
    tag: str


def parse_replica_sets(listing: Mapping[str, Any]) -> dict[str, list[ReplicaSet]]:
    """ReplicaSets per service (the Helm release label), newest revision first."""
    found: dict[str, list[ReplicaSet]] = {}
    for item in listing.get("items", []):
        meta = item.get("metadata", {})
        service = meta.get("labels", {}).get(INSTANCE_LABEL)
        if not service:
            continue
        containers = item["spec"]["template"]["spec"].get("containers", [])
        image = str(containers[0].get("image", "")) if containers else ""
        found.setdefault(service, []).append(
            ReplicaSet(
                service=service,
                name=meta["name"],
                uid=meta["uid"],
                revision=int(meta.get("annotations", {}).get(REVISION_ANNOTATION, "0")),
                desired=int(item["spec"].get("replicas") or 0),
                ready=int(item.get("status", {}).get("readyReplicas") or 0),
                tag=image.rpartition(":")[2],
            )
        )
    for sets in found.values():
        sets.sort(key=lambda rs: rs.revision, reverse=True)
    return found


def serving(sets: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The ReplicaSet that runs the service's pods (the newest one with replicas)."""
    return next((rs for rs in sets if rs.desired > 0), None)


def rolled_services(
    before: Mapping[str, Sequence[ReplicaSet]], after: Mapping[str, Sequence[ReplicaSet]]
) -> dict[str, bool]:
    """Per service: True when its serving ReplicaSet is another one (new uid or revision)."""
    rolled = {}
    for service in SERVICES:
        old, new = serving(before.get(service, ())), serving(after.get(service, ()))
        rolled[service] = (
            old is None or new is None or (old.uid, old.revision) != (new.uid, new.revision)
        )
    return rolled


# ---- the story ------------------------------------------------------------------------------


def short(identifier: str) -> str:
    """The first 8 characters of an id, for tables."""
    return identifier[:8]


def progress_text(event: DeployEventData, old_sets: set[str]) -> Text:
    """``1/2 updated, 2 ready, 2 available │ order-5d8f 2, new order-7b9c 0``: the
    Deployment's counts, then the ready pods of each ReplicaSet."""
    p = event.progress
    text = Text()
    if p is None:
        return text
    text.append(f"{p.updated}/{p.desired} updated, {p.ready} ready, {p.available} available")
    ordered = sorted(p.replica_sets.items(), key=lambda kv: kv[0] not in old_sets)
    for index, (name, ready) in enumerate(ordered):
        text.append(" │ " if index == 0 else ", ", style="dim")
        new = name not in old_sets
        if new:
            text.append("new ", style="dim")
        text.append(f"{name} {ready}", style="bold" if new else "")
    return text


PHASE_STYLES = {
    DeployPhase.QUEUED: "dim",
    DeployPhase.STARTED: "cyan",
    DeployPhase.PROGRESSING: "yellow",
    DeployPhase.SUCCEEDED: "bold green",
    DeployPhase.FAILED: "bold red",
    DeployPhase.ROLLED_BACK: "bold magenta",
    DeployPhase.REJECTED: "bold red",
    DeployPhase.SUPERSEDED: "red",
}


@dataclass
class Lane:
    """One service's row in the live table of a release."""

    service: str
    tag: str
    deployment_id: str
    phase: str = "published"
    replicas: str = ""
    revision: str = ""
    started: float = field(default_factory=time.monotonic)
    took: float | None = None


class Demo:
    """The story, one method per chapter."""

    def __init__(self, console: Console, run_dir: Path, helm_timeout: float) -> None:
        self.console = console
        self.run_dir = run_dir
        self.helm_timeout = helm_timeout
        self.supervisor = Supervisor(run_dir)
        self.logs = self.supervisor.logs
        self.commands_log = self.logs / "commands.log"
        self.events = DeployEvents()
        self.steps: dict[str, float] = {}
        self.began = time.monotonic()
        self.nats_url = ""
        self.kubeconfig = run_dir / "cluster" / "kubeconfig"
        self.registry = ""
        self.cluster: Cluster | None = None
        self.good_order_image = ""
        self.deployer: Managed | None = None
        self.checkout = run_dir / "checkout"
        self.kubectl_binary: Path | None = None
        self.helm_binary: Path | None = None

    def build_log(self, line: str) -> None:
        """Image builds and installs report here: logs/build.log."""
        with (self.logs / "build.log").open("a") as out:
            out.write(line.rstrip("\n") + "\n")

    # -- output helpers

    def chapter(self, number: int, title: str) -> None:
        """A chapter heading."""
        self.console.print()
        self.console.rule(f"[bold cyan]{number}. {escape(title)}", align="left", style="cyan")

    def ok(self, what: str, detail: str, seconds: float | None = None) -> None:
        """A one-line status (``detail`` may hold markup)."""
        took = f" [dim]({seconds:.1f} s)[/]" if seconds is not None else ""
        self.console.print(f"  [green]✓[/] [bold]{escape(what):<9}[/] {detail}{took}")

    def say(self, text: str) -> None:
        """A line of narration (markup allowed)."""
        self.console.print(f"  {text}")

    def shell(self, command: str, outcome: str) -> None:
        """A command CI runs, and what it printed."""
        self.console.print(f"  [dim]$[/] [bold]{escape(command)}[/]  [dim]→[/] {outcome}")

    # -- chapter 1

    async def start_platform(self) -> None:
        """CI's NATS and the cluster at once, NATS and PostgreSQL in the cluster, the deployer."""
        self.chapter(1, "Start the cluster (a real node), NATS and PostgreSQL in it, the deployer")
        self.supervisor.prepare()
        self.say(f"[dim]run state in {escape(shown(self.run_dir))}[/]")
        self.helm_binary = built_tool("helm")
        self.kubectl_binary = built_tool("kubectl")
        began = time.monotonic()
        await self.start_nats()
        self.ok(
            "NATS",
            f"{self.nats_url}  [dim](users of platform/nats/local.conf)[/]",
            time.monotonic() - began,
        )
        await self.events.connect(self.nats_url)
        await self.start_cluster()
        await self.start_dependencies()
        began = time.monotonic()
        await self.start_deployer()
        assert self.deployer is not None
        self.ok(
            "deployer",
            f"{self.deployer.url}  [dim]→ namespace {NAMESPACE}, helm "
            f"timeout {self.helm_timeout:g} s[/]",
            time.monotonic() - began,
        )

    async def start_nats(self) -> None:
        port = free_port()
        self.nats_url = f"nats://127.0.0.1:{port}"
        argv = [
            nats_server_binary(), "--config", str(NATS_CONFIG),
            "--addr", "127.0.0.1", "--port", str(port), "--jetstream",
            "--store_dir", str(self.run_dir / "nats"),
        ]  # fmt: skip
        managed = self.supervisor.start("nats", argv, os.environ, self.nats_url)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.supervisor.check(managed)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise DemoError(f"nats-server did not listen on {port} within 15 s; see {managed.log}")

    async def wait_ready(self, managed: Managed, timeout: float = 60) -> None:
        """Poll /readyz until 200 (the process must stay alive)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                self.supervisor.check(managed)
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{managed.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise DemoError(
            f"{managed.name} was not ready within {timeout:.0f} s; the end of {managed.log}:\n"
            + _tail(managed.log)
        )

    async def start_cluster(self) -> None:
        began = time.monotonic()
        name = f"flotilla-demo-{secrets.token_hex(3)}"
        self.supervisor.set_cluster(name)
        cluster_dir = self.supervisor.cluster_dir
        result = await run(
            [str(CLUSTER_SH), "up", "--run-dir", str(cluster_dir), "--name", name],
            log=self.logs / "cluster.log",
            timeout=300,
            check=False,
        )
        if result.code != 0:
            self.supervisor.keep_cluster_logs()
            raise DemoError(
                f"the local cluster did not start ({result.explain()}); "
                f"see {self.logs / 'cluster.log'}"
            )
        match = re.search(r"https://127\.0\.0\.1:\d+", result.stderr)
        server = match.group(0) if match else "?"
        await self.kubectl("create", "namespace", NAMESPACE)
        await self.kubectl(
            "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
        )
        self.registry = (cluster_dir / "registry").read_text().strip()
        self.ok(
            "cluster",
            f"{name}: {server}, real node flotilla-node, registry {self.registry}",
            time.monotonic() - began,
        )

    async def start_dependencies(self) -> None:
        """The Secrets, NATS and PostgreSQL in the cluster, as real pods (images built here)."""
        assert self.kubectl_binary is not None
        assert self.helm_binary is not None
        began = time.monotonic()
        os.environ[BUILD_LOG_ENV] = str(self.logs / "build.log")
        self.cluster = Cluster(
            kubeconfig=self.kubeconfig,
            kubectl=self.kubectl_binary,
            helm=self.helm_binary,
            helm_home=self.run_dir / "helm",
            registry=self.registry,
        )
        images = await asyncio.to_thread(
            install_dependencies,
            REPO,
            self.cluster,
            self.build_log,
            namespace=NAMESPACE,
        )
        tags = ", ".join(f"{n} {i.rpartition(':')[2]}" for n, i in images.items())
        self.ok(
            "in-cluster",
            f"NATS (JetStream) and PostgreSQL as real pods [dim]({tags}; Secrets created "
            f"once with random values; the services' bus)[/]",
            time.monotonic() - began,
        )

    async def start_deployer(self) -> None:
        assert self.helm_binary is not None
        values = self.run_dir / "values"
        values.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            # Production settings, every secret by reference; the gateway on a NodePort.
            (values / f"{name}.yaml").write_text(
                json.dumps(local_values(REPO, name, node_port=name == "gateway"))
            )
        port = free_port()
        helm_home = self.run_dir / "helm"
        env = {
            **os.environ,
            "SERVICE_ENVIRONMENT": "development",
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(port),
            "NATS_URL": self.nats_url,
            "NATS_USER": "deployer",
            "NATS_PASSWORD": local_password("deployer"),
            "DEPLOYER_CHARTS_DIR": str(REPO / "charts"),
            "DEPLOYER_NAMESPACES": NAMESPACE,
            "DEPLOYER_HELM_BINARY": str(self.helm_binary),
            "DEPLOYER_KUBECONFIG": str(self.kubeconfig),
            "DEPLOYER_VALUES_DIR": str(values),
            "DEPLOYER_HELM_TIMEOUT_SECONDS": f"{self.helm_timeout:g}",
            "DEPLOYER_API_TOKEN": secrets.token_urlsafe(16),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
        argv = [sys.executable, "-m", "deployer.main"]
        self.deployer = self.supervisor.start("deployer", argv, env, f"http://127.0.0.1:{port}")
        await self.wait_ready(self.deployer)

    async def kubectl(self, *args: str) -> Result:
        """The pinned kubectl against the demo's cluster."""
        assert self.kubectl_binary is not None
        argv = [str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args]
        return await run(argv, log=self.commands_log, timeout=60)

    async def replica_sets(self) -> dict[str, list[ReplicaSet]]:
        """Every service's ReplicaSets now."""
        result = await self.kubectl("get", "replicasets", "--namespace", NAMESPACE, "-o", "json")
        return parse_replica_sets(json.loads(result.stdout))

    # -- simulated CI

    async def pipelines(self, *args: str, check: bool = True, timeout: float = 60) -> Result:
        """The pipelines CLI as CI runs it (the ci NATS user), in the CI checkout."""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PIPELINES_SRC), os.environ.get("PYTHONPATH", "")) if p
            ),
            "NATS_URL": self.nats_url,
            "NATS_USER": "ci",
            "NATS_PASSWORD": local_password("ci"),
            "PIPELINE_REGISTRY": REGISTRY,
        }
        argv = [sys.executable, "-m", "pipelines_cli", *args]
        return await run(
            argv,
            log=self.logs / "pipelines.log",
            env=env,
            cwd=self.checkout,
            timeout=timeout,
            check=check,
        )

    async def git(self, *args: str) -> str:
        """git in the CI checkout, with the demo's identity."""
        env = {**os.environ, **GIT_IDENTITY}
        argv = ["git", "-C", str(self.checkout), *args]
        return (await run(argv, log=self.commands_log, env=env)).stdout.strip()

    async def commit_versions(self, versions: Mapping[str, str], message: str) -> str:
        """Set services' [project].version in the CI checkout and commit; returns the sha."""
        for service, version in versions.items():
            path = self.checkout / "services" / service / "pyproject.toml"
            text, count = re.subn(
                r'(?m)^version = "[^"]*"', f'version = "{version}"', path.read_text(), count=1
            )
            if count != 1:
                raise DemoError(f"no version line in {path}: cannot simulate a release")
            path.write_text(text)
        await self.git("commit", "--quiet", "--all", "--message", message)
        return await self.git("rev-parse", "HEAD")

    async def changed(self, base: str) -> list[str]:
        """`pipelines changed` from ``base`` to HEAD."""
        result = await self.pipelines("changed", "--base", base, "--head", "HEAD")
        names = result.stdout.split()
        self.shell(f"pipelines changed --base {base[:7]} --head HEAD", " ".join(names))
        return names

    async def publish(self, service: str, run_id: str, image: str | None = None) -> str:
        """`pipelines publish`; returns the deployment id."""
        args = ["publish", service, "--run-id", run_id]
        if image:
            args += ["--image", image]
        result = await self.pipelines(*args)
        match = re.search(r"^deployment_id=(\S+)$", result.stdout, re.MULTILINE)
        if match is None:
            raise DemoError(f"pipelines publish printed no deployment_id: {result.explain()}")
        return match.group(1)

    async def wait(self, service: str, deployment_id: str) -> Result:
        """`pipelines wait` (its exit code is CI's verdict)."""
        return await self.pipelines(
            "wait",
            service,
            "--deployment-id",
            deployment_id,
            "--timeout",
            f"{DEPLOY_TIMEOUT:g}",
            check=False,
            timeout=DEPLOY_TIMEOUT + 30,
        )

    # -- chapter 2

    async def release_everything(self) -> str:
        """Every service at 1.0.0 through CI's steps, the four lanes in parallel."""
        self.chapter(2, "CI releases every service at 1.0.0")
        began = time.monotonic()
        await run(
            ["git", "clone", "--quiet", "--shared", str(REPO), str(self.checkout)],
            log=self.commands_log,
        )
        base = await self.git("rev-parse", "HEAD")
        sha = await self.commit_versions(dict.fromkeys(SERVICES, "1.0.0"), "release 1.0.0")
        self.say(
            f"[dim]CI checkout {escape(shown(self.checkout))}: HEAD {base[:7]} + commit "
            f"{sha[:7]} (every service's version → 1.0.0)[/]"
        )
        self.say(f"[dim]$[/] [bold]export PIPELINE_REGISTRY={REGISTRY}[/]")
        changed = await self.changed(base)
        if sorted(changed) != sorted(SERVICES):
            raise DemoError(f"pipelines changed listed {changed}, expected {list(SERVICES)}")
        tags = await asyncio.gather(*(self.pipelines("tag", s) for s in SERVICES))
        tag = {s: r.stdout.strip() for s, r in zip(SERVICES, tags, strict=True)}
        self.shell("pipelines tag <service>", f"{tag['order']}  [dim](each service)[/]")
        await self.build(tag)
        run_id = f"{RUN_ID_PREFIX}-release"
        ids = await asyncio.gather(*(self.publish(s, run_id) for s in SERVICES))
        self.shell(f"pipelines publish <service> --run-id {run_id}", "4 deployment ids")
        self.shell("pipelines wait <service> --deployment-id <id>", "[dim]as the events come:[/]")
        lanes = {s: Lane(s, tag[s], i) for s, i in zip(SERVICES, ids, strict=True)}
        with Live(
            self.lanes_table(lanes), console=self.console, refresh_per_second=8, transient=True
        ) as live:

            def updater(lane: Lane) -> Callable[[DeployEventData], None]:
                def update(event: DeployEventData) -> None:
                    lane.phase = event.phase.value
                    if event.progress is not None:
                        p = event.progress
                        lane.replicas = f"{p.updated}/{p.desired} updated, {p.ready} ready"
                    if event.revision is not None:
                        lane.revision = str(event.revision)
                    if event.phase.terminal:
                        lane.took = time.monotonic() - lane.started
                    live.update(self.lanes_table(lanes))

                return update

            tracked = self.events_tracks(
                {s: (lanes[s].deployment_id, updater(lanes[s])) for s in SERVICES}
            )
            waits = asyncio.gather(*(self.wait(s, lanes[s].deployment_id) for s in SERVICES))
            outcomes, verdicts = await asyncio.gather(tracked, waits)
        failed = {s: o[-1] for s, o in outcomes.items() if o[-1].phase is not DeployPhase.SUCCEEDED}
        if failed:
            self.console.print(self.lanes_table(lanes))
            first, outcome = next(iter(failed.items()))
            raise DemoError(
                f"the first release did not succeed ({', '.join(failed)}: "
                f"{outcome.phase.value}). {first}: {outcome.reason}"
            )
        bad = [r for r in verdicts if r.code != 0]
        if bad:
            raise DemoError(f"pipelines wait failed: {bad[0].explain()}")
        sets = await self.replica_sets()
        for service, lane in lanes.items():
            rs = serving(sets.get(service, ()))
            lane.replicas = f"{rs.name}  {rs.ready}/{rs.desired} ready" if rs else "-"
        self.console.print(self.lanes_table(lanes))
        self.steps["release"] = time.monotonic() - began
        self.ok(
            "released",
            "every service at 1.0.0; [dim]pipelines wait exited 0 four times[/]",
            time.monotonic() - began,
        )
        return sha

    async def build(self, tags: Mapping[str, str]) -> None:
        """Build the images of ``tags`` from the CI checkout (buildah, cached by content) into
        the cluster's registry."""
        began = time.monotonic()
        images = await asyncio.to_thread(
            build_services, self.checkout, self.registry, tags, self.build_log
        )
        names = ", ".join(sorted(tags))
        self.shell(
            f"pipelines build <{names}> --builder buildah --push-to {self.registry}",
            f"{len(images)} image(s) built from their Dockerfiles "
            f"[dim]({time.monotonic() - began:.0f} s; logs/build.log)[/]",
        )

    async def events_tracks(
        self, deployments: Mapping[str, tuple[str, Callable[[DeployEventData], None]]]
    ) -> dict[str, list[DeployEventData]]:
        """Track several deployments at once; service -> its events."""
        names = list(deployments)
        results = await asyncio.gather(
            *(self.events.track(i, cb) for i, cb in deployments.values())
        )
        return dict(zip(names, results, strict=True))

    def lanes_table(self, lanes: Mapping[str, Lane]) -> Padding:
        """The table of a release: one row per service lane."""
        table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
        table.add_column("service")
        for column in ("image tag", "deployment", "phase", "ReplicaSet / replicas", "revision"):
            table.add_column(column, no_wrap=True)
        table.add_column("took", justify="right")
        for lane in lanes.values():
            style = next((s for p, s in PHASE_STYLES.items() if p.value == lane.phase), "dim")
            table.add_row(
                lane.service,
                lane.tag,
                short(lane.deployment_id),
                Text(lane.phase, style=style),
                lane.replicas,
                lane.revision,
                f"{lane.took:.1f} s" if lane.took is not None else "…",
            )
        return Padding(table, (0, 0, 0, 2))

    # -- chapter 3

    async def gateway_url(self) -> str:
        """The gateway Service's NodePort, which the real node answers on 127.0.0.1."""
        result = await self.kubectl(
            "get", "service", "gateway", "--namespace", NAMESPACE,
            "-o", "jsonpath={.spec.ports[0].nodePort}",
        )  # fmt: skip
        return f"http://127.0.0.1:{result.stdout.strip()}"

    async def place_order(self) -> None:
        """Register, get a token, order, see it paid: through the gateway pods."""
        self.chapter(3, "An order through the gateway pod")
        gateway = await self.gateway_url()
        self.say(f"[dim]gateway Service: NodePort {escape(gateway)} → the gateway pods[/]")
        email = f"ada-{secrets.token_hex(3)}@example.com"
        password = secrets.token_urlsafe(18)
        async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
            response = await http.post(
                "/api/auth/register", json={"email": email, "password": password}
            )
            self.expect(response, 201, "registering a user")
            self.http_line("POST", "/api/auth/register", response.status_code, email)
            response = await http.post(
                "/api/auth/token",
                data={"grant_type": "password", "username": email, "password": password},
            )
            self.expect(response, 200, "getting a token")
            token = response.json()["access_token"]
            self.http_line("POST", "/api/auth/token", 200, "an access token (JWT)")
            auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)}
            body = {
                "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}],
                "amount_cents": 900,
                "currency": "EUR",
                "payment_token": "tok_visa",
            }
            began = time.monotonic()
            response = await http.post("/api/orders", json=body, headers=auth)
            self.expect(response, 201, "placing an order")
            order = response.json()
            self.http_line(
                "POST",
                "/api/orders",
                201,
                f"2 x tea, 9.00 EUR → order {short(order['id'])} {order['status']}",
            )
            while order["status"] == "pending" and time.monotonic() - began < 15:
                await asyncio.sleep(0.1)
                response = await http.get(f"/api/orders/{order['id']}", headers=auth)
                self.expect(response, 200, "reading the order")
                order = response.json()
            took = time.monotonic() - began
            if order["status"] != "paid":
                raise DemoError(
                    f"order {order['id']} ended {order['status']} "
                    f"({order.get('failure_reason')}), not paid; see `kubectl logs -n "
                    f"{NAMESPACE} deploy/order` and deploy/payment"
                )
            response = await http.get(f"/api/payments/{order['id']}", headers=auth)
            self.expect(response, 200, "reading the payment")
            payment = response.json()["status"]
        self.http_line(
            "GET",
            f"/api/orders/{short(order['id'])}…",
            200,
            f"[bold green]paid[/] (payment {payment})",
        )
        self.ok(
            "saga",
            f"order {short(order['id'])} is paid {took:.1f} s after it was placed "
            "[dim](a saga over NATS)[/]",
        )

    @staticmethod
    def expect(response: httpx.Response, status: int, what: str) -> None:
        """Raise DemoError unless ``response`` has ``status``."""
        if response.status_code != status:
            raise DemoError(
                f"{what} through the gateway answered {response.status_code}, not {status}: "
                f"{response.text[:500]} (logs: kubectl logs -n {NAMESPACE} deploy/gateway)"
            )

    def http_line(self, method: str, path: str, status: int, detail: str) -> None:
        """One HTTP exchange."""
        self.console.print(
            f"  [bold]{method:<4}[/] {escape(path):<26} [green]{status}[/]  {detail}"
        )

    # -- chapter 4

    async def roll_order(self, base: str) -> tuple[str, dict[str, list[ReplicaSet]]]:
        """order alone at 1.1.0; returns the commit and the ReplicaSets after."""
        self.chapter(4, "CI for order only: 1.1.0")
        before = await self.replica_sets()
        sha = await self.commit_versions({"order": "1.1.0"}, "order: 1.1.0")
        self.say(f"[dim]commit {sha[:7]} changes services/order/pyproject.toml only[/]")
        changed = await self.changed(base)
        if changed != ["order"]:
            raise DemoError(f"pipelines changed listed {changed}, expected only order")
        tag = (await self.pipelines("tag", "order")).stdout.strip()
        self.shell("pipelines tag order", tag)
        await self.build({"order": tag})
        self.good_order_image = f"{REGISTRY}/order-service:{tag}"
        run_id = f"{RUN_ID_PREFIX}-order-1.1.0"
        deployment_id = await self.publish("order", run_id)
        self.shell(
            f"pipelines publish order --run-id {run_id}",
            f"deployment {short(deployment_id)}",
        )
        began = time.monotonic()
        events, verdict = await self.follow("order", deployment_id, before)
        took = time.monotonic() - began
        outcome = events[-1]
        if outcome.phase is not DeployPhase.SUCCEEDED or verdict.code != 0:
            raise DemoError(
                f"order 1.1.0 ended {outcome.phase.value} ({outcome.reason}); pipelines wait "
                f"exited {verdict.code}; see logs/deployer.log"
            )
        self.ok("rolled", f"order {tag} in {took:.1f} s; [dim]pipelines wait exited 0[/]")
        after = await self.replica_sets()
        self.console.print()
        self.console.print(Padding(self.before_after_table(before, after), (0, 0, 0, 1)))
        rolled = rolled_services(before, after)
        unexpected = [s for s, did in rolled.items() if did != (s == "order")]
        if unexpected:
            raise DemoError(
                "expected only order to get a new ReplicaSet, but these did not match: "
                + ", ".join(unexpected)
            )
        others = [s for s in SERVICES if s != "order"]
        self.console.print()
        self.say(
            f"[bold green]Only order rolled:[/] {', '.join(others[:-1])} and {others[-1]} "
            "kept their ReplicaSets (same uid, same revision)."
        )
        self.steps["order"] = took
        return sha, after

    async def follow(
        self, service: str, deployment_id: str, before: Mapping[str, Sequence[ReplicaSet]]
    ) -> tuple[list[DeployEventData], Result]:
        """Print the deployment's events as they come (the plan first), with `pipelines wait`
        running alongside, as a CI job would."""
        old_sets = {rs.name for rs in before.get(service, ())}
        began = time.monotonic()
        rolling = False
        latest = "waiting for the deployer"

        def show(event: DeployEventData) -> None:
            nonlocal rolling, latest
            if event.progress is not None:
                # Until a new ReplicaSet appears the counts describe the release before this one.
                rolling = rolling or any(n not in old_sets for n in event.progress.replica_sets)
                if not rolling:
                    return
            stamp = Text(f"+{time.monotonic() - began:.1f}s", style="dim")
            label = Text(event.phase.value, style=PHASE_STYLES[event.phase])
            plan = Plan.model_validate(event.plan) if event.plan is not None else None
            detail: Text | Table = Text("")
            if plan is not None:
                detail = Text(plan.summary())
            elif event.progress is not None:
                detail = progress_text(event, old_sets)
            elif event.phase is DeployPhase.SUCCEEDED:
                detail = Text(f"helm revision {event.revision}")
            elif event.phase is DeployPhase.ROLLED_BACK and event.reason:
                detail = Text(event.reason.partition("): ")[0] + ")")
            elif event.reason:
                headline, _, rest = event.reason.partition(": ")
                detail = Text(headline, style="red")
                detail.append("\n" + " ".join(rest.split()), style="dim")
            self.console.print(event_row(stamp, label, detail))
            if plan is not None:
                self.console.print(Padding(self.plan_table(plan), (0, 0, 0, 6)))
            latest = event.phase.value
            if event.progress is not None:
                p = event.progress
                latest = f"{p.updated}/{p.desired} updated, {p.ready} ready"

        with self.console.status("", spinner="dots") as status:

            async def tick() -> None:
                while True:
                    status.update(
                        f"[dim]rolling out {service}: {escape(latest)} "
                        f"({time.monotonic() - began:.0f} s; helm gives up after "
                        f"{self.helm_timeout:g} s)[/]"
                    )
                    await asyncio.sleep(0.5)

            ticker = asyncio.create_task(tick())
            try:
                events, verdict = await asyncio.gather(
                    self.events.track(deployment_id, show), self.wait(service, deployment_id)
                )
            finally:
                ticker.cancel()
        return events, verdict

    def plan_table(self, plan: Plan) -> Group:
        """The deployer's plan: each workload's change and the fields that make it."""
        parts: list[Text | Table] = []
        for workload in plan.workloads:
            why = {
                "rollout": "its pod template changes, so its pods roll",
                "scale-only": "only its replica count changes: no pod rolls",
                "no-op": "nothing changes",
            }.get(workload.change, workload.change)
            parts.append(
                Text.assemble(
                    ("plan: ", "dim"),
                    (f"{workload.kind}/{workload.name} ", "bold"),
                    (workload.change, "bold cyan"),
                    f" ({why})",
                )
            )
            fields = Table(box=None, padding=(0, 3, 0, 2), show_header=False)
            fields.add_column(no_wrap=True)
            fields.add_column(no_wrap=True)
            for change in workload.template_changes or workload.spec_changes:
                fields.add_row(
                    Text(change.path),
                    Text(f"{_tag_only(change.before)} → {_tag_only(change.after)}"),
                )
            parts.append(fields)
        for resource in plan.resources:
            parts.append(
                Text(
                    f"plan: {resource.kind}/{resource.name} {resource.change} "
                    f"({', '.join(resource.fields)})"
                )
            )
        parts += [Text(f"warning: {warning}", style="yellow") for warning in plan.warnings]
        return Group(*parts)

    def before_after_table(
        self, before: Mapping[str, Sequence[ReplicaSet]], after: Mapping[str, Sequence[ReplicaSet]]
    ) -> Table:
        """The serving ReplicaSet of every service, before and after."""
        table = Table(
            title=" The ReplicaSet serving each service, before → after (kubectl get replicasets)",
            title_justify="left",
            title_style="bold",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1),
        )
        for column in ("service", "ReplicaSet", "rev.", "uid", "ready", ""):
            table.add_column(column, no_wrap=True)
        rolled = rolled_services(before, after)
        for service in SERVICES:
            old, new = serving(before.get(service, ())), serving(after.get(service, ()))
            if old is None or new is None:
                table.add_row(service, "-", "", "", "", Text("missing", style="red"))
                continue
            if rolled[service]:
                verdict = Text("rolled", style="bold yellow")
                name = f"{old.name} → {new.name}"
                revision = f"{old.revision} → {new.revision}"
                uid = f"{short(old.uid)} → {short(new.uid)}"
            else:
                verdict = Text("unchanged", style="green")
                name, revision, uid = f"{new.name} (same)", str(new.revision), short(new.uid)
            table.add_row(service, name, revision, uid, f"{new.ready}/{new.desired}", verdict)
        return table

    # -- chapter 5

    async def broken_image(self, sha: str, good: Mapping[str, Sequence[ReplicaSet]]) -> None:
        """A broken order image: failed, rolled back, the previous ReplicaSet still serving."""
        self.chapter(5, "A broken order image is rolled back")
        image = f"{REGISTRY}/order-service:1.2.0-{sha[:7]}"
        self.say("[dim]a build whose process exits at start (never Ready):[/]")
        await asyncio.to_thread(
            push_variant, self.good_order_image, image, self.registry, BROKEN_COMMAND
        )
        self.say(f"IMAGE={escape(image)}")
        run_id = f"{RUN_ID_PREFIX}-order-1.2.0"
        deployment_id = await self.publish("order", run_id, image=image)
        self.shell(
            f"pipelines publish order --image $IMAGE --run-id {run_id}",
            f"deployment {short(deployment_id)}",
        )
        began = time.monotonic()
        events, verdict = await self.follow("order", deployment_id, good)
        took = time.monotonic() - began
        phases = [e.phase for e in events]
        if DeployPhase.FAILED not in phases or phases[-1] is not DeployPhase.ROLLED_BACK:
            raise DemoError(
                "the broken image should have failed and been rolled back, but its events were "
                + " -> ".join(p.value for p in phases)
            )
        if verdict.code != 3:
            raise DemoError(f"pipelines wait should exit 3 (failed), not: {verdict.explain()}")
        self.say(
            f"[dim]pipelines wait exited 3 (failed or rolled back): the CI job is red[/]"
            f"  [dim]({took:.1f} s)[/]"
        )
        now = await self.replica_sets()
        previous, current = serving(good.get("order", ())), serving(now.get("order", ()))
        self.console.print()
        self.console.print(
            Padding(self.order_sets_table(now.get("order", []), previous), (0, 0, 0, 1))
        )
        if previous is None or current is None or current.uid != previous.uid:
            raise DemoError("after the rollback another ReplicaSet serves order than before")
        if current.ready < current.desired:
            raise DemoError(f"{current.name} has {current.ready}/{current.desired} ready")
        lowest = min((e.progress.ready for e in events if e.progress is not None), default=0)
        if lowest < current.desired:
            raise DemoError(f"order had only {lowest} ready pods during the broken rollout")
        self.console.print()
        self.say(
            f"[bold magenta]Rolled back:[/] {current.name} ({current.tag}) kept serving, "
            f"never fewer than {lowest} ready pods."
        )
        self.steps["broken"] = took

    def order_sets_table(self, sets: Sequence[ReplicaSet], previous: ReplicaSet | None) -> Table:
        """Every ReplicaSet of order after the rollback."""
        table = Table(
            title=" Every ReplicaSet of order after the rollback",
            title_justify="left",
            title_style="bold",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1),
        )
        for column in ("ReplicaSet", "image tag", "revision", "ready", ""):
            table.add_column(column, no_wrap=True)
        for rs in sets:
            if previous is not None and rs.uid == previous.uid:
                note = Text("serving: same uid as before", style="bold green")
            elif rs.tag.startswith("1.2.0-"):
                note = Text("broken: scaled to 0", style="red")
            else:
                note = Text("older release", style="dim")
            table.add_row(rs.name, rs.tag, str(rs.revision), f"{rs.ready}/{rs.desired}", note)
        return table

    # -- chapter 6

    async def summary(self) -> None:
        """The deployer's view of every release, and the timings."""
        self.chapter(6, "Summary")
        assert self.deployer is not None
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{self.deployer.url}/api/services")
        if response.status_code != 200:
            raise DemoError(f"GET /api/services answered {response.status_code}: {response.text}")
        table = Table(
            title=f" Releases in {NAMESPACE} (the deployer's GET /api/services)",
            title_justify="left",
            title_style="bold",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1),
        )
        for column in ("service", "release", "helm revision", "image tag", "last deployment"):
            table.add_column(column)
        # The deployer can release the dependencies' charts too; the story is the services.
        for view in (v for v in response.json() if v["service"] in SERVICES):
            last = (view.get("last") or {}).get("phase") or "-"
            table.add_row(
                view["service"],
                view.get("release_status") or "-",
                str(view.get("revision") or "-"),
                (view.get("image") or "-").rpartition(":")[2],
                last,
            )
        self.console.print(Padding(table, (0, 0, 0, 1)))
        steps = self.steps
        self.console.print()
        self.say(f"[green]✓[/] every service released at 1.0.0 in {steps['release']:.1f} s")
        self.say("[green]✓[/] an order paid through the gateway")
        self.say(
            f"[green]✓[/] order 1.1.0 rolled out in {steps['order']:.1f} s; "
            "the other services untouched"
        )
        self.say(
            f"[green]✓[/] a broken order image failed and was rolled back in "
            f"{steps['broken']:.1f} s; 1.1.0 kept serving"
        )

    async def play(self) -> None:
        """The whole story."""
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await self.start_platform()
            base = await self.release_everything()
            await self.place_order()
            sha, after = await self.roll_order(base)
            await self.broken_image(sha, after)
            await self.summary()
        finally:
            await self.events.close()


def event_row(stamp: Text, label: Text, detail: Text | Table) -> Table:
    """One deploy event: time since publish, phase, and a detail that wraps in its column."""
    row = Table.grid(padding=(0, 1))
    row.add_column(width=1)
    row.add_column(width=6, justify="right")
    row.add_column(width=11)
    row.add_column(ratio=1)
    row.add_row("", stamp, label, detail)
    return row


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _tag_only(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value.rpartition(":")[2] if "/" in value else value


def make_console(no_color: bool) -> Console:
    """A console that reads well in a terminal and in a log (wider, no colour)."""
    console = Console(no_color=no_color, highlight=False)
    if not console.is_terminal:
        console = Console(no_color=no_color, highlight=False, width=100)
    return console


def main(argv: Sequence[str] | None = None) -> int:
    """Play the demo; exit 0 when every step worked, 1 (with the reason) otherwise."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / ".run" / "demo",
        help="where its state and logs go (default: .run/demo)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain output")
    parser.add_argument(
        "--helm-timeout",
        type=float,
        default=45.0,
        help="seconds helm waits for a rollout before rolling back (default 45)",
    )
    args = parser.parse_args(argv)
    # Ctrl-C must stop the demo (and so everything it started) even when the shell that started
    # it ignores SIGINT, as shells do for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = make_console(args.no_color or bool(os.environ.get("NO_COLOR")))
    run_dir = args.run_dir.resolve()
    demo = Demo(console, run_dir, args.helm_timeout)
    console.print(
        "[bold]Flotilla demo:[/] independent rollouts of real pods, end to end on a local cluster"
    )
    code = 0
    try:
        asyncio.run(demo.play())
    except DemoError as exc:
        console.print(f"\n[bold red]✗ the demo failed:[/] {escape(str(exc))}")
        code = 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("\n[yellow]interrupted[/]")
        code = 130
    except Exception as exc:
        console.print(f"\n[bold red]✗ the demo failed unexpectedly:[/] {escape(repr(exc))}")
        code = 1
    finally:
        # A second Ctrl-C must not leave processes behind: finish the teardown first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if code != 0:
            demo.supervisor.keep_cluster_logs()
        began = time.monotonic()
        with console.status("[dim]stopping everything…[/]"):
            stopped = demo.supervisor.stop_all()
        if stopped:
            console.print(
                f"\n  [dim]stopped {', '.join(stopped)} ({time.monotonic() - began:.1f} s)[/]"
            )
        if demo.supervisor.owns_run_dir:
            console.print(f"  [dim]logs kept in {escape(shown(demo.logs))}[/]")
    if code == 0:
        console.print(f"\n[bold green]demo finished in {time.monotonic() - demo.began:.0f} s[/]")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
