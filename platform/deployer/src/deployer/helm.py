"""An async client for the pinned helm 4 binary: one helm process per call, no shell.

Values never appear on the command line: they go to helm as JSON on stdin (``--values -``), so the
command recorded in results and errors holds no secret (the values hold none either: secrets are
referenced by name).

Flags (helm v4.3.2): ``upgrade --install --reset-values`` (the values given are the whole values,
never silently merged with the last release's), ``--wait=watcher`` (kstatus watching: returns as
soon as every resource is ready, where ``legacy`` polls every 2 s), ``--rollback-on-failure``
(helm 4's ``--atomic``: a failed upgrade is rolled back to the last successful revision, a failed
first install is uninstalled), ``--server-side=true --force-conflicts`` (server-side apply that
takes back fields changed by hand, where helm's default refuses the upgrade on such a conflict),
``--timeout``, ``--history-max`` and ``--description``.

Errors are classified from helm's exit and stderr, in this order:

=====================================================  =========  ===========================
helm says                                              type       ``reason``
=====================================================  =========  ===========================
the helm binary cannot be started                      final      ``no-helm``
killed by a signal / no answer before our deadline     retryable  ``killed`` / ``deadline``
"has been rolled back due to rollback-on-failure"      final      ``rolled-back``
"has been uninstalled due to rollback-on-failure"      final      ``uninstalled``
"an error occurred while rolling back/uninstalling"    final      ``rollback-failed``
"resource K/ns/name not ready", "timed out waiting"    final      ``rollout-failed``
"another operation (install/upgrade/rollback) is ..."  retryable  ``operation-in-progress``
kubeconfig missing or invalid                          final      ``kubeconfig``
"kubernetes cluster unreachable", connection refused,  retryable  ``api-unavailable``
i/o or TLS timeouts, "context deadline exceeded",
etcd/server timeouts, 429/503, optimistic-lock
conflicts ("the object has been modified")
"values don't meet the specifications of the schema"   final      ``values-schema``
template failures ("execution error at", parse)        final      ``render``
chart path or repo not found                           final      ``chart-not-found``
"release: not found", "has no N version"               final      ``release-not-found``
  (reads return None or [] for a missing release instead)
"is forbidden", "is invalid", namespace not found,     final      ``rejected``
"already exists", "has no deployed releases"
anything else                                          final      ``unknown``
=====================================================  =========  ===========================

A rollout that does not become ready is final even though helm's message ends with "context
deadline exceeded": retrying the same image gives the same result. Unknown failures are final so
that nothing retries forever; the error carries helm's stderr for a human. "Another operation is
in progress" is retryable, but when no helm of ours is running on the release it was left pending
by a killed process: :meth:`Helm.recover_pending` then unblocks it.

A cancelled call (or one past its deadline: twice helm's ``--timeout`` plus a margin, since a
failed upgrade's rollback waits again) sends helm SIGTERM, on which helm marks the operation failed
and, with rollback-on-failure, rolls it back; SIGKILL follows if helm lingers, which can leave the
release pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from deployer.reconcile.errors import StepError

PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
# Revisions that were deployed successfully at some point (helm's own rollback targets).
GOOD_STATUSES = frozenset({"deployed", "superseded"})

READ_DEADLINE_SECONDS = 60.0
# Server-side apply as field manager "helm", taking back fields someone changed by hand: the
# release is the desired state, and plans (liveplan.py) dry-run exactly this apply.
SERVER_SIDE_APPLY = ("--server-side=true", "--force-conflicts")
# Beyond helm's own --timeout: a failed upgrade's rollback waits up to --timeout again.
DEADLINE_MARGIN_SECONDS = 60.0
# After SIGTERM helm marks the operation failed (and rolls it back) before exiting.
TERMINATE_GRACE_SECONDS = 15.0
STDERR_LIMIT = 4000
DESCRIPTION_LIMIT = 256

_REVISION_LINE = re.compile(r"^REVISION: (\d+)$", re.MULTILINE)
_ERROR_LINE = re.compile(r"^Error: ", re.MULTILINE)


@dataclass(frozen=True)
class HelmResult:
    """One finished helm process."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    started_at: float  # time.monotonic() right after the process was started
    duration_seconds: float
    revision: int | None = None  # the release revision an upgrade created


class HelmError(StepError):
    """A helm command failed; ``reason`` names the kind of failure (see the module docstring)."""

    system = "helm"

    def __init__(self, message: str, *, reason: str, command: str, stderr: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.command = command
        self.stderr = stderr


class HelmRetryableError(HelmError):
    """Retrying later may succeed: the API server was unreachable, slow, or the release busy."""

    @property
    def retryable(self) -> bool:
        """Always: see the class docstring."""
        return True


class HelmFinalError(HelmError):
    """Retrying the same request cannot succeed: bad values, missing chart, failed rollout."""


class ReleaseStatus(BaseModel):
    """A release as helm last recorded it."""

    name: str
    revision: int
    status: str
    description: str
    updated: datetime
    chart: str
    app_version: str
    image_repository: str | None = None
    image_tag: str | None = None

    @property
    def pending(self) -> bool:
        """True while an install, upgrade or rollback is in progress (or was interrupted)."""
        return self.status in PENDING_STATUSES


class ReleaseRevision(BaseModel):
    """One entry of ``helm history``."""

    revision: int
    updated: datetime
    status: str
    chart: str
    app_version: str
    description: str
    rollback_revision: int | None = None


def trim(stderr: str) -> str:
    """Helm's stderr without surrounding blanks, cut to its last few thousand characters."""
    text = stderr.strip()
    return text if len(text) <= STDERR_LIMIT else "..." + text[-STDERR_LIMIT:]


def _helm_message(stderr: str) -> str:
    """Helm's own error (from its "Error: " line to the end), else the whole trimmed stderr."""
    found = _ERROR_LINE.search(stderr)
    return trim(stderr[found.end() :] if found else stderr)


_ROLLOUT = (" not ready. status:", "timed out waiting for the condition")
_API_UNAVAILABLE = (
    "kubernetes cluster unreachable",
    "connection refused",
    "connection reset by peer",
    "no route to host",
    "i/o timeout",
    "tls handshake timeout",
    "context deadline exceeded",
    "client rate limiter",
    "too many requests",
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
    "etcdserver: request timed out",
    "http2: client connection lost",
    "unexpected eof",
    "the object has been modified",
    "internal error occurred",
)
_RENDER = ("execution error at", "parse error", "error converting yaml to json", "yaml: line")
_MISSING_NAMESPACE = re.compile(r'namespaces "[^"]+" not found')
_KUBECONFIG = ("no such file or directory", "invalid configuration", "no configuration has been")
_REJECTED = (
    "is forbidden",
    "is invalid",
    "already exists",
    "cannot re-use a name",
    "has no deployed releases",
    "unable to find a previously successful release",
)


def classify(stderr: str) -> tuple[type[HelmError], str]:
    """The error type and reason of a failed helm command, from its stderr (module docstring)."""
    text = stderr.lower()
    if "has been rolled back due to rollback-on-failure" in text:
        return HelmFinalError, "rolled-back"
    if "has been uninstalled due to rollback-on-failure" in text:
        return HelmFinalError, "uninstalled"
    if "an error occurred while rolling back" in text or "while uninstalling the release" in text:
        return HelmFinalError, "rollback-failed"
    if any(marker in text for marker in _ROLLOUT):
        return HelmFinalError, "rollout-failed"
    if "another operation (install/upgrade/rollback) is in progress" in text:
        return HelmRetryableError, "operation-in-progress"
    if "kubernetes cluster unreachable" in text and any(m in text for m in _KUBECONFIG):
        return HelmFinalError, "kubeconfig"
    if any(marker in text for marker in _API_UNAVAILABLE):
        return HelmRetryableError, "api-unavailable"
    if "don't meet the specifications of the schema" in text:
        return HelmFinalError, "values-schema"
    if any(marker in text for marker in _RENDER):
        return HelmFinalError, "render"
    if re.search(r"repo \S+ not found|path \S+ not found|chart\.yaml file is missing", text):
        return HelmFinalError, "chart-not-found"
    if "release: not found" in text or re.search(r"release has no \d+ version", text):
        return HelmFinalError, "release-not-found"
    if any(marker in text for marker in _REJECTED) or _MISSING_NAMESPACE.search(text):
        return HelmFinalError, "rejected"
    return HelmFinalError, "unknown"


_ADVICE = {
    "rolled-back": "helm restored the last successful revision; fix the image or values "
    "(check the new pods' events and logs) and deploy again",
    "uninstalled": "this was the first install, so helm removed it again; fix the image or "
    "values (check the pods' events and logs) and deploy again",
    "rollback-failed": "the release may be left failed or pending: inspect `helm history` "
    "and recover it before deploying again",
    "rollout-failed": "the new pods did not become ready in time; the release is marked "
    "failed: fix the image or values, or roll back",
    "operation-in-progress": "another helm operation holds the release; retry when it ends, "
    "or recover the release if that operation was interrupted",
    "kubeconfig": "check the kubeconfig path and its contents",
    "api-unavailable": "the Kubernetes API did not answer; retry later",
    "values-schema": "fix the named values (see charts/README.md) and deploy again",
    "render": "the chart refused these values; fix them (see the message) and deploy again",
    "chart-not-found": "check the deployer's charts directory",
    "release-not-found": "check the release name and revision (`helm history`)",
    "rejected": "the Kubernetes API refused the change; fix what the message names",
    "unknown": "see helm's message",
}


def _error(command: str, stderr: str, what: str) -> HelmError:
    """The classified error of a failed command."""
    kind, reason = classify(stderr)
    message = f"{what} failed ({reason}): {_helm_message(stderr)}. What to do: {_ADVICE[reason]}."
    return kind(message, reason=reason, command=command, stderr=trim(stderr))


class Helm:
    """Runs helm for the releases of one namespace.

    ``kubeconfig`` None lets helm find its cluster itself (in a pod: the ServiceAccount).
    ``env`` adds to (or overrides) this process's environment for every helm call, e.g.
    ``HELM_DRIVER`` or isolated ``HELM_CACHE_HOME``/``HELM_CONFIG_HOME``/``HELM_DATA_HOME``.
    """

    def __init__(
        self,
        binary: Path,
        kubeconfig: Path | None,
        namespace: str,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        # Built once: nothing but the exec itself stands between a request and a running helm.
        self._env = {**os.environ, **(env or {})}
        self._scope = ["--namespace", namespace]
        if kubeconfig is not None:
            self._scope += ["--kubeconfig", str(kubeconfig)]

    async def template(self, release: str, chart_dir: Path, values: Mapping[str, Any]) -> str:
        """The manifests ``helm template`` renders for these values (no cluster access)."""
        _check_chart(chart_dir)
        args = ["template", release, str(chart_dir), "--values", "-"]
        result = await self._run(args, what=f"rendering {release}", values=values)
        return result.stdout

    async def get_manifest(self, release: str) -> str | None:
        """The manifests of the release's current revision; None when there is no release."""
        result = await self._read(["get", "manifest", release], release)
        return None if result is None else result.stdout

    async def get_values(self, release: str, revision: int | None = None) -> dict[str, Any] | None:
        """The values the release (or one revision of it) was deployed with, as given (not
        merged with the chart's defaults); None when there is no release."""
        args = ["get", "values", release, "--output", "json"]
        if revision is not None:
            args += ["--revision", str(revision)]
        result = await self._read(args, release)
        if result is None:
            return None
        values: dict[str, Any] = json.loads(result.stdout) or {}
        return values

    async def history(self, release: str, max: int = 256) -> list[ReleaseRevision]:
        """The release's last ``max`` revisions, oldest first; empty when there is no release."""
        args = ["history", release, "--max", str(max), "--output", "json"]
        result = await self._read(args, release)
        if result is None:
            return []
        return [ReleaseRevision.model_validate(entry) for entry in json.loads(result.stdout)]

    async def status(self, release: str) -> ReleaseStatus | None:
        """The release's latest revision (pending ones included) and its image; None when there is
        no release."""
        latest = await self.history(release, max=1)
        if not latest:
            return None
        (entry,) = latest
        values = await self.get_values(release, entry.revision) or {}
        image = values.get("image")
        if not isinstance(image, dict):
            image = {}
        return ReleaseStatus(
            name=release,
            revision=entry.revision,
            status=entry.status,
            description=entry.description,
            updated=entry.updated,
            chart=entry.chart,
            app_version=entry.app_version,
            image_repository=image.get("repository"),
            image_tag=image.get("tag"),
        )

    async def upgrade_install(
        self,
        release: str,
        chart_dir: Path,
        values: Mapping[str, Any],
        *,
        timeout_seconds: float,
        description: str,
        history_max: int = 10,
        wait: bool = True,
        rollback_on_failure: bool = True,
        on_start: Callable[[float], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> HelmResult:
        """``helm upgrade --install`` with exactly ``values`` (on the chart's defaults).

        With ``rollback_on_failure`` (which makes helm wait even without ``wait``) a rollout
        that is not ready within ``timeout_seconds`` is rolled back, or a first install
        uninstalled. ``on_start`` gets the monotonic time the helm process started at.
        ``description`` is cut to helm's 256 characters. Setting ``stop`` sends helm SIGTERM:
        it gives up waiting at once and fails the upgrade (so rolls back) as on its timeout.
        """
        _check_chart(chart_dir)
        args = [
            "upgrade", "--install", release, str(chart_dir), "--values", "-", "--reset-values",
            "--timeout", _duration(timeout_seconds), "--history-max", str(history_max),
            "--description", description[:DESCRIPTION_LIMIT], *SERVER_SIDE_APPLY,
        ]  # fmt: skip
        if wait:
            args.append("--wait=watcher")
        if rollback_on_failure:
            args.append("--rollback-on-failure")
        result = await self._run(
            args,
            what=f"upgrade of {release}",
            values=values,
            deadline=2 * timeout_seconds + DEADLINE_MARGIN_SECONDS,
            on_start=on_start,
            stop=stop,
        )
        match = _REVISION_LINE.search(result.stdout)
        revision = int(match.group(1)) if match else None
        return dataclasses.replace(result, revision=revision)

    async def rollback(
        self,
        release: str,
        revision: int | None,
        *,
        timeout_seconds: float,
        description: str,
        wait: bool = True,
        history_max: int = 10,
    ) -> HelmResult:
        """``helm rollback`` to ``revision`` (None: the previous one); waits for readiness."""
        args = ["rollback", release]
        if revision is not None:
            args.append(str(revision))
        args += [
            "--timeout", _duration(timeout_seconds), "--history-max", str(history_max),
            "--description", description[:DESCRIPTION_LIMIT], *SERVER_SIDE_APPLY,
        ]  # fmt: skip
        if wait:
            args.append("--wait=watcher")
        return await self._run(
            args,
            what=f"rollback of {release}",
            deadline=timeout_seconds + DEADLINE_MARGIN_SECONDS,
        )

    async def uninstall(self, release: str, *, timeout_seconds: float) -> HelmResult:
        """``helm uninstall``, waiting until the release's resources are gone."""
        args = ["uninstall", release, "--wait=watcher", "--timeout", _duration(timeout_seconds)]
        return await self._run(
            args,
            what=f"uninstall of {release}",
            deadline=timeout_seconds + DEADLINE_MARGIN_SECONDS,
        )

    async def recover_pending(self, release: str, *, timeout_seconds: float = 300) -> str | None:
        """Bring a release stuck in ``pending-*`` (its helm was killed) back to a deployable state;
        return what was done, or None when the release is not pending (or does not exist).

        Like helm's own rollback-on-failure, it rolls back to the newest revision that was
        deployed successfully (``deployed`` or ``superseded``); a release that never had one (an
        interrupted first install) is uninstalled. Call it only when no other helm operation on
        the release can still be running: it cannot tell an interrupted one from a live one.
        """
        revisions = await self.history(release)
        if not revisions or revisions[-1].status not in PENDING_STATUSES:
            return None
        stuck = revisions[-1]
        good = [r for r in revisions[:-1] if r.status in GOOD_STATUSES]
        if not good:
            await self.uninstall(release, timeout_seconds=timeout_seconds)
            return f"uninstalled {release}: revision {stuck.revision} was left {stuck.status}"
        target = good[-1].revision
        await self.rollback(
            release,
            target,
            timeout_seconds=timeout_seconds,
            description=f"recovered from {stuck.status} (revision {stuck.revision})",
        )
        return (
            f"rolled {release} back to revision {target}: revision {stuck.revision} was left "
            f"{stuck.status}"
        )

    async def _read(self, args: list[str], release: str) -> HelmResult | None:
        """A read-only command; None when helm says the release does not exist."""
        try:
            return await self._run(args, what=f"helm {args[0]} {release}")
        except HelmFinalError as exc:
            if exc.reason == "release-not-found":
                return None
            raise

    async def _run(
        self,
        args: list[str],
        *,
        what: str,
        values: Mapping[str, Any] | None = None,
        deadline: float = READ_DEADLINE_SECONDS,
        on_start: Callable[[float], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> HelmResult:
        """Run helm; raise the classified error when it fails."""
        argv = [str(self.binary), *args, *self._scope]
        command = shlex.join(argv)
        stdin = None if values is None else json.dumps(values).encode()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise HelmFinalError(
                f"{what} failed: cannot run {self.binary}: {exc}. What to do: point the deployer "
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
            raise _error(command, result.stderr, what)
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


def _die_with_parent() -> None:
    # Runs in the child before exec: a deployer killed with -9 takes its helm down (SIGTERM, so
    # helm marks the release failed) instead of leaving one writing to a release on its own,
    # which the restarted deployer would then race.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _check_chart(chart_dir: Path) -> None:
    if not (chart_dir / "Chart.yaml").is_file():
        raise HelmFinalError(
            f"no chart at {chart_dir} (no Chart.yaml). What to do: check the deployer's charts "
            f"directory; every service needs charts/<service>.",
            reason="chart-not-found",
            command="",
            stderr="",
        )


def _duration(seconds: float) -> str:
    """A Go duration for helm's --timeout (whole milliseconds)."""
    return f"{round(seconds * 1000)}ms"
