"""Running the helm binary: one process per call, no shell, under a deadline.

Values never appear on the command line: they go to helm as JSON on stdin (``--values -``), so the
command recorded in results and errors holds no secret (the values hold none either: secrets are
referenced by name).

A cancelled call (or one past its deadline: twice helm's ``--timeout`` plus a margin, since a
failed upgrade's rollback waits again) sends helm SIGTERM, on which helm marks the operation failed
and, with rollback-on-failure, rolls it back; SIGKILL follows if helm lingers, which can leave the
release pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deployer.adapters.helm.errors import (
    HelmFinalError,
    HelmRetryableError,
    classified_error,
    trim,
)
from deployer.adapters.helm.models import HelmResult

# After SIGTERM helm marks the operation failed (and rolls it back) before exiting.
TERMINATE_GRACE_SECONDS = 15.0


async def run_helm(
    binary: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    what: str,
    deadline: float,
    values: Mapping[str, Any] | None = None,
    on_start: Callable[[float], None] | None = None,
    stop: asyncio.Event | None = None,
) -> HelmResult:
    """Run ``binary`` with ``args`` (``values`` as JSON on stdin); raise the classified error
    when it fails. ``what`` names the operation in errors; ``on_start`` gets the monotonic time
    the process started at; setting ``stop`` sends it SIGTERM and waits for it to finish."""
    argv = [str(binary), *args]
    command = shlex.join(argv)
    stdin = None if values is None else json.dumps(values).encode()
    setpriv = _setpriv()
    try:
        process = await asyncio.create_subprocess_exec(
            *([setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            preexec_fn=None if setpriv else _die_with_parent,
        )
    except OSError as exc:
        raise HelmFinalError(
            f"{what} failed: cannot run {binary}: {exc}. What to do: point the deployer "
            f"at the helm binary (platform/cluster/build-tools.sh --path helm).",
            reason="no-helm",
            command=command,
            stderr="",
        ) from exc
    started_at = time.monotonic()
    if on_start is not None:
        on_start(started_at)
    try:
        async with asyncio.timeout(deadline):
            out, err = await _communicate(process, stdin, stop)
    except TimeoutError:
        await _stop(process)
        raise HelmRetryableError(
            f"{what} failed (deadline): helm did not finish within {deadline:.0f} s and was "
            f"stopped. What to do: retry; recover the release first if it is left pending.",
            reason="deadline",
            command=command,
            stderr="",
        ) from None
    except asyncio.CancelledError:
        await _stop(process)
        raise
    result = HelmResult(
        command=command,
        returncode=await process.wait(),
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        started_at=started_at,
        duration_seconds=time.monotonic() - started_at,
    )
    if result.returncode < 0:
        raise HelmRetryableError(
            f"{what} failed (killed): helm was killed by signal {-result.returncode}. What "
            f"to do: retry; recover the release first if it is left pending.",
            reason="killed",
            command=command,
            stderr=trim(result.stderr),
        )
    if result.returncode != 0:
        raise classified_error(command, result.stderr, what)
    return result


async def _communicate(
    process: asyncio.subprocess.Process, stdin: bytes | None, stop: asyncio.Event | None
) -> tuple[bytes, bytes]:
    """``process.communicate``; when ``stop`` is set first, SIGTERM, and then still wait for
    helm to finish what it does on SIGTERM (fail the release, roll it back)."""
    talking = asyncio.ensure_future(process.communicate(stdin))
    if stop is None:
        return await talking
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({talking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not talking.done():
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        return await talking
    finally:
        stopping.cancel()
        talking.cancel()


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (helm then fails, and rolls back, the operation), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), TERMINATE_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv, when it can set the parent-death signal (``--pdeathsig``, 2.33+).

    A deployer killed with -9 must take its helm down (SIGTERM, so helm marks the release failed)
    instead of leaving one writing to a release on its own, which the restarted deployer would
    then race. setpriv sets that signal and execs helm (same process), so the deployer starts it
    with vfork; a ``preexec_fn`` doing the same makes Python fork, copying the deployer's page
    tables: tens of milliseconds per helm call on a busy machine, on the path to every upgrade.
    """
    found = shutil.which("setpriv") if _libc is not None else None
    if found is None:
        return None
    try:
        check = subprocess.run(
            [found, "--pdeathsig", "TERM", "--", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found if check.returncode == 0 else None


def _die_with_parent() -> None:
    # Without setpriv: the same setting, made in the forked child before exec.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
