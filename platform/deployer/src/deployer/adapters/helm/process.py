"""Running the helm binary: one process per call, no shell, under a deadline.

Each helm is started with vfork (``subprocess.Popen``, through setpriv for the parent-death
signal) and its output read by a thread of its own: the deployer's event loop (uvloop) would fork
instead, copying the whole deployer's page tables, tens of milliseconds per call on a busy
machine, twice on the path from a pipeline event to its upgrade (``helm template``, then
``helm upgrade``).

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
import threading
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
    process: subprocess.Popen[bytes] | None = None,
) -> HelmResult:
    """Run ``binary`` with ``args`` (``values`` as JSON on stdin); raise the classified error
    when it fails. ``what`` names the operation in errors; ``on_start`` gets the monotonic time
    the process started at (was handed over at); setting ``stop`` sends it SIGTERM and waits for
    it to finish. ``process``: this very command, started ahead (:func:`spawn_helm`) and waiting
    for its values on stdin."""
    argv = [str(binary), *args]
    command = shlex.join(argv)
    stdin = None if values is None else json.dumps(values).encode()
    if process is None:
        process = spawn_helm(argv, env=env, what=what, stdin=stdin is not None)
    started_at = time.monotonic()
    if on_start is not None:
        on_start(started_at)
    talking = _communicate_in_thread(process, stdin)
    try:
        async with asyncio.timeout(deadline):
            out, err = await _until_done(process, talking, stop)
    except TimeoutError:
        await _stop(process, talking)
        raise HelmRetryableError(
            f"{what} failed (deadline): helm did not finish within {deadline:.0f} s and was "
            f"stopped. What to do: retry; recover the release first if it is left pending.",
            reason="deadline",
            command=command,
            stderr="",
        ) from None
    except asyncio.CancelledError:
        await _stop(process, talking)
        raise
    result = HelmResult(
        command=command,
        returncode=process.wait(),  # communicate has waited for it: returns at once
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


Output = tuple[bytes, bytes]


def spawn_helm(
    argv: Sequence[str], *, env: Mapping[str, str], what: str, stdin: bool
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (helm and its arguments), with a pipe for stdin when ``stdin`` (else
    none); HelmFinalError when it cannot start."""
    setpriv = _setpriv()
    try:
        # Popen here, not the event loop's subprocess support: uvloop's (the deployer's loop)
        # always forks, copying the deployer's page tables; Popen starts the process with vfork,
        # which takes about a millisecond: the loop may wait for it.
        return subprocess.Popen(
            [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=None if setpriv else _die_with_parent,
        )
    except OSError as exc:
        raise HelmFinalError(
            f"{what} failed: cannot run {argv[0]}: {exc}. What to do: point the deployer "
            f"at the helm binary (platform/cluster/build-tools.sh --path helm).",
            reason="no-helm",
            command=shlex.join(argv),
            stderr="",
        ) from exc


def _communicate_in_thread(
    process: subprocess.Popen[bytes], stdin: bytes | None
) -> asyncio.Future[Output]:
    """``process.communicate(stdin)`` in a thread of its own (an upgrade can take minutes: not
    one of the loop's few executor threads); its stdout and stderr once helm has exited."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Output] = loop.create_future()

    def settle(result: Output | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None
            done.set_result(result)

    def talk() -> None:
        result: Output | None = None
        error: BaseException | None = None
        try:
            result = process.communicate(stdin)
        except BaseException as exc:  # handed to the coroutine awaiting it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=talk, name=f"helm-{process.pid}", daemon=True).start()
    return done


async def _until_done(
    process: subprocess.Popen[bytes], talking: asyncio.Future[Output], stop: asyncio.Event | None
) -> Output:
    """Helm's output once it exits; when ``stop`` is set first, SIGTERM, and then still wait for
    helm to finish what it does on SIGTERM (fail the release, roll it back)."""
    if stop is None:
        return await asyncio.shield(talking)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        either: set[asyncio.Future[Any]] = {talking, stopping}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not talking.done():
            process.terminate()  # a no-op once helm has exited (Popen knows its status)
        return await asyncio.shield(talking)
    finally:
        stopping.cancel()


async def _stop(process: subprocess.Popen[bytes], talking: asyncio.Future[Output]) -> None:
    """SIGTERM (helm then fails, and rolls back, the operation), SIGKILL if it lingers."""
    process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(talking), TERMINATE_GRACE_SECONDS)
    except TimeoutError:
        process.kill()
        await asyncio.shield(talking)


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
