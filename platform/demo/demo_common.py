"""What every module of the demo shares: the repository's paths, the story's constants, the
error a failed step raises, and short commands run with their output logged."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kit.layout import service_names

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "platform" / "cluster" / "cluster.sh"
NATS_CONFIG = REPO / "platform" / "nats" / "local.conf"
SECRETS_SCRIPT = REPO / "platform" / "secrets" / "cluster_secrets.py"
PIPELINES_SRC = REPO / "pipelines" / "src"
SERVICES = service_names()
# The namespace of the service releases (in either mode: never the platform's own, flotilla).
NAMESPACE = "flotilla-demo"
# The images' names; the real node resolves every registry to the cluster's own.
REGISTRY = "ghcr.io/flotilla"
DEPLOY_TIMEOUT = 120.0


class DemoError(Exception):
    """A step failed; the message says what, and where to look."""


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log, for an error message."""
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
        # The whole process group (its own session): cluster.sh's children must not go on alone.
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
