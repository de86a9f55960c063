"""The helm client: the releases of one namespace, read, upgraded, rolled back and recovered.

Flags (helm v4.3.2): ``upgrade --install --reset-values`` (the values given are the whole values,
never silently merged with the last release's), ``--wait=watcher`` (kstatus watching: returns as
soon as every resource is ready, where ``legacy`` polls every 2 s), ``--rollback-on-failure``
(helm 4's ``--atomic``: a failed upgrade is rolled back to the last successful revision, a failed
first install is uninstalled), ``--server-side=true --force-conflicts`` (server-side apply that
takes back fields changed by hand, where helm's default refuses the upgrade on such a conflict),
``--timeout``, ``--history-max`` and ``--description``.

How a call runs is in :mod:`deployer.adapters.helm.process`; how its failure is classified, in
:mod:`deployer.adapters.helm.errors`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployer.adapters.helm.errors import HelmFinalError
from deployer.adapters.helm.models import (
    GOOD_STATUSES,
    PENDING_STATUSES,
    HelmResult,
    ReleaseRevision,
    ReleaseStatus,
)
from deployer.adapters.helm.process import run_helm, spawn_helm
from deployer.adapters.helm.warm import WarmRenders
from deployer.reconcile.ports import ApplyRequest

READ_DEADLINE_SECONDS = 60.0
# Server-side apply as field manager "helm", taking back fields someone changed by hand: the
# release is the desired state, and plans (deployer.plan.live) dry-run exactly this apply.
SERVER_SIDE_APPLY = ("--server-side=true", "--force-conflicts")
# Beyond helm's own --timeout: a failed upgrade's rollback waits up to --timeout again.
DEADLINE_MARGIN_SECONDS = 60.0
DESCRIPTION_LIMIT = 256

_REVISION_LINE = re.compile(r"^REVISION: (\d+)$", re.MULTILINE)


class Helm:
    """Runs helm for the releases of one namespace.

    ``kubeconfig`` None lets helm find its cluster itself (in a pod: the ServiceAccount);
    ``kube_context`` picks another cluster of the kubeconfig (another environment's).
    ``env`` adds to (or overrides) this process's environment for every helm call, e.g.
    ``HELM_DRIVER`` or isolated ``HELM_CACHE_HOME``/``HELM_CONFIG_HOME``/``HELM_DATA_HOME``.
    ``warm_renders``: how many renders of the releases upgraded last wait started ahead
    (:mod:`deployer.adapters.helm.warm`); :meth:`close` stops them.
    """

    def __init__(
        self,
        binary: Path,
        kubeconfig: Path | None,
        namespace: str,
        *,
        kube_context: str | None = None,
        env: Mapping[str, str] | None = None,
        warm_renders: int = 0,
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        # Built once: nothing but the exec itself stands between a request and a running helm.
        self._env = {**os.environ, **(env or {})}
        self._scope = ["--namespace", namespace]
        if kubeconfig is not None:
            self._scope += ["--kubeconfig", str(kubeconfig)]
        if kube_context is not None:
            self._scope += ["--kube-context", kube_context]
        self._warm = WarmRenders(warm_renders, self._spawn_render)
        # The command line of the last render of each release (started ahead after its upgrade).
        self._renders: dict[str, tuple[str, ...]] = {}

    def close(self) -> None:
        """Stop the renders waiting started ahead."""
        self._warm.close()

    async def template(self, release: str, chart_dir: Path, values: Mapping[str, Any]) -> str:
        """The manifests ``helm template`` renders for these values (no cluster access)."""
        _check_chart(chart_dir)
        args = ["template", release, str(chart_dir), "--values", "-"]
        argv = (str(self.binary), *args, *self._scope)
        self._renders[release] = argv
        result = await self._run(
            args, what=f"rendering {release}", values=values, process=self._warm.take(argv)
        )
        return result.stdout

    def _spawn_render(self, argv: tuple[str, ...]) -> subprocess.Popen[bytes]:
        return spawn_helm(argv, env=self._env, what="a render started ahead", stdin=True)

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

    async def apply(self, request: ApplyRequest) -> HelmResult:
        """The apply step of the reconcile loop: :meth:`upgrade_install` of the request."""
        return await self.upgrade_install(
            request.release,
            request.chart,
            request.values,
            timeout_seconds=request.timeout_seconds,
            description=request.description,
            history_max=request.history_max,
            on_start=request.on_start,
            stop=request.stop,
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
        try:
            result = await self._run(
                args,
                what=f"upgrade of {release}",
                values=values,
                deadline=2 * timeout_seconds + DEADLINE_MARGIN_SECONDS,
                on_start=on_start,
                stop=stop,
            )
        finally:
            # Its next deployment renders first: start that helm now, while the lane is idle.
            if release in self._renders:
                self._warm.prepare(self._renders[release])
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
        marks: Mapping[str, str] | None = None,
    ) -> HelmResult:
        """``helm rollback`` to ``revision`` (None: the previous one); waits for readiness.
        ``description`` names the deployment (``marks`` are for the gitops apply step)."""
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
        process: subprocess.Popen[bytes] | None = None,
    ) -> HelmResult:
        """Run helm (``process``: this command, started ahead); raise the classified error when
        it fails."""
        return await run_helm(
            self.binary,
            [*args, *self._scope],
            env=self._env,
            what=what,
            deadline=deadline,
            values=values,
            on_start=on_start,
            stop=stop,
            process=process,
        )


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
