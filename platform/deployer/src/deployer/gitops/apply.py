"""The apply step of a gitops environment: a commit of the desired state, then Flux's verdict.

:class:`FluxApply` writes the release's folder (one commit per deployment, trailers naming it),
asks Flux to reconcile at once, and follows the GitRepository (fetched the commit?), the
Kustomization (applied it?) and the HelmRelease (upgraded, or failed and rolled back?). A
rollback is a revert commit of the last deployment still in effect. :class:`FluxReleases` reads
the releases as helm-controller left them (Helm's own storage in the namespace).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from deployer.adapters.helm import Helm
from deployer.adapters.helm.models import ReleaseStatus
from deployer.gitops.charts import ChartCopies
from deployer.gitops.config import GitOpsSpec
from deployer.gitops.errors import FluxError
from deployer.gitops.flux import FluxObjects, kustomization_key, release_key, source_key
from deployer.gitops.git import DEPLOYMENT_TRAILER, Change, GitRepository
from deployer.gitops.layout import (
    CHARTS,
    DEPLOYMENT_ANNOTATION,
    ENVIRONMENTS,
    ServiceRelease,
    chart_path_of,
    environment_folder,
    environment_kustomization,
    service_files,
    service_folder,
)
from deployer.gitops.verdict import failure_of, handled, release_verdict, revision_sha
from deployer.reconcile.decide import DESCRIPTION_MARK
from deployer.reconcile.ports import ApplyRequest, Marks

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
# Beyond the HelmRelease's own timeout: fetching, applying, and a rollback after a failure.
FOLLOW_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class FluxApplied:
    """What a commit did once Flux applied it: the Helm revision serving now."""

    revision: int | None
    commit: str


class FluxApply:
    """The apply step of one gitops environment."""

    def __init__(
        self,
        environment: str,
        spec: GitOpsSpec,
        repository: GitRepository,
        flux: FluxObjects,
        helm: Helm,
        charts: ChartCopies,
    ) -> None:
        self.environment = environment
        self.spec = spec
        self.repository = repository
        self.flux = flux
        self._helm = helm
        self._charts = charts

    async def set_up(self) -> None:
        """Make Flux follow the environment's folder (its GitRepository and Kustomization)."""
        await self.flux.set_up(self.environment, self.spec)

    async def apply(self, request: ApplyRequest) -> FluxApplied:
        """Commit ``request``'s values as the service's desired state and wait for Flux."""
        copy = self._charts.prepare(request.chart)
        release = ServiceRelease(
            environment=self.environment,
            service=request.release,
            chart_path=copy.folder,
            values=request.values,
            deployment_id=request.marks.get(DEPLOYMENT_TRAILER, ""),
            timeout_seconds=request.timeout_seconds,
            history_max=request.history_max,
        )

        async def edit(workdir: Path) -> None:
            for path, text in service_files(release).items():
                (workdir / path).parent.mkdir(parents=True, exist_ok=True)
                (workdir / path).write_text(text)
            if not (workdir / copy.folder).is_dir():
                shutil.copytree(copy.local, workdir / copy.folder)
            tidy(workdir, self.environment)

        image = request.values.get("image") or {}
        subject = f"Deploy {request.release} {image.get('tag', '')} to {self.environment}"
        change = Change(edit=edit, subject=subject.replace("  ", " "), trailers=request.marks)
        sha = await self.repository.commit(change)
        if request.on_start is not None:
            request.on_start(time.monotonic())
        log.info("committed", extra={"commit": sha, "release": request.release})
        return await self._follow(sha, request.release, request.timeout_seconds)

    async def rollback(
        self,
        release: str,
        revision: int | None,
        *,
        timeout_seconds: float,
        description: str,
        marks: Marks | None = None,
    ) -> FluxApplied:
        """A revert commit of the release's last deployment still in effect, applied by Flux."""
        if revision is not None:
            raise FluxError(
                f"{self.environment} is a gitops environment: a rollback reverts the last "
                f"deployment commit of {release}, it cannot go to revision {revision}. What to "
                "do: roll back without a revision, or revert the commits you want in git"
            )
        folder = str(service_folder(self.environment, release))

        async def restore_chart(workdir: Path, reverted: str) -> None:
            helm_release = workdir / folder / "helmrelease.yaml"
            chart = chart_path_of(helm_release.read_text()) if helm_release.is_file() else None
            if chart is not None and not (workdir / chart).is_dir():
                await self.repository.restore_path(str(chart), f"{reverted}^")
            tidy(workdir, self.environment)

        sha, reverted = await self.repository.revert_last(
            folder, dict(marks or {}), then=restore_chart
        )
        log.info("reverted", extra={"commit": sha, "reverts": reverted, "release": release})
        return await self._follow(sha, release, timeout_seconds)

    async def recover_pending(self, release: str) -> str | None:
        """helm-controller owns a pending release (it unlocks it itself): wait until it is not
        pending any more."""
        deadline = time.monotonic() + FOLLOW_MARGIN_SECONDS
        while time.monotonic() < deadline:
            status = await self._helm.status(release)
            if status is None or not status.pending:
                return "waited for helm-controller to finish the release's pending operation"
            await asyncio.sleep(1)
        raise FluxError(
            f"the release {release} is still pending after {FOLLOW_MARGIN_SECONDS:.0f} s: "
            f"helm-controller has not finished or unlocked it. What to do: kubectl -n "
            f"{self.flux.namespace} describe helmrelease {release}",
            retryable=True,
        )

    async def _follow(self, sha: str, release: str, timeout_seconds: float) -> FluxApplied:
        """Wait until Flux fetched ``sha``, applied it and reconciled ``release``'s HelmRelease;
        FluxError with Flux's message when it could not."""
        deadline = time.monotonic() + 2 * timeout_seconds + FOLLOW_MARGIN_SECONDS
        await self._fetched(sha, deadline)
        await self._applied(sha, deadline)
        await self._released(sha, release, deadline)
        status = await self._helm.status(release)
        return FluxApplied(status.revision if status else None, sha)

    async def _fetched(self, sha: str, deadline: float) -> None:
        token = await self.flux.request_reconcile(source_key())
        while True:
            source = await self.flux.get(source_key())
            fetched = revision_sha(((source or {}).get("status") or {}).get("artifact", {}).get(
                "revision"
            ))  # fmt: skip
            if fetched and await self.repository.contains(sha, fetched):
                return
            failure = failure_of(source)
            if handled(source, token) and failure is not None:
                raise FluxError(
                    f"Flux cannot fetch {self.spec.source_url} ({failure}). What to do: check "
                    f"the URL and the credentials Flux reads it with (secretRef "
                    f"{self.spec.secret_ref or 'none'}): kubectl -n {self.flux.namespace} "
                    "describe gitrepository flotilla",
                    flux_message=failure,
                )
            await self._tick(deadline, f"fetch commit {sha[:12]}", "gitrepository flotilla")

    async def _applied(self, sha: str, deadline: float) -> None:
        key = kustomization_key(self.environment)
        await self.flux.request_reconcile(key)
        while True:
            kustomization = await self.flux.get(key)
            status = (kustomization or {}).get("status") or {}
            applied = revision_sha(status.get("lastAppliedRevision"))
            if applied and await self.repository.contains(sha, applied):
                return
            attempted = revision_sha(status.get("lastAttemptedRevision"))
            failure = failure_of(kustomization)
            if failure is not None and attempted and await self.repository.contains(sha, attempted):
                raise FluxError(
                    f"Flux could not apply commit {sha[:12]} to {self.environment} ({failure}). "
                    "What to do: fix the folder in git (or deploy again), then see kubectl -n "
                    f"{self.flux.namespace} describe kustomization {key.name}",
                    flux_message=failure,
                )
            await self._tick(deadline, f"apply commit {sha[:12]}", f"kustomization {key.name}")

    async def _released(self, sha: str, release: str, deadline: float) -> None:
        helm_release = await self.flux.get(release_key(release))
        if helm_release is None:
            folder = service_folder(self.environment, release)
            raise FluxError(
                f"commit {sha[:12]} was applied but there is no HelmRelease {release} in "
                f"{self.flux.namespace}. What to do: check {folder} in the repository"
            )
        generation = int(helm_release["metadata"].get("generation") or 0)
        while True:
            verdict = release_verdict(helm_release, generation)
            if verdict.state == "succeeded":
                return
            if verdict.state == "failed":
                what = "Flux rolled it back" if verdict.remediated else "Flux did not roll back"
                raise FluxError(
                    f"Flux could not upgrade {release} ({verdict.reason}; {what}): "
                    f"{verdict.message}",
                    flux_message=verdict.message,
                )
            await self._tick(deadline, f"release {release}", f"helmrelease {release}")
            helm_release = await self.flux.get(release_key(release)) or helm_release

    async def _tick(self, deadline: float, what: str, kind_name: str) -> None:
        if time.monotonic() > deadline:
            raise FluxError(
                f"Flux did not {what} in time. What to do: check that Flux's controllers run "
                f"and kubectl -n {self.flux.namespace} describe {kind_name}"
            )
        await asyncio.sleep(POLL_SECONDS)


def tidy(workdir: Path, environment: str) -> None:
    """After an edit: the environment's kustomization lists its service folders, and the chart
    copies no environment names any more are removed."""
    folder = workdir / environment_folder(environment)
    if folder.is_dir():
        services = [
            child.name
            for child in sorted(folder.iterdir())
            if (child / "kustomization.yaml").is_file()
        ]
        (folder / "kustomization.yaml").write_text(environment_kustomization(services))
    named: set[PurePosixPath] = set()
    for helm_release in (workdir / ENVIRONMENTS).glob("*/*/helmrelease.yaml"):
        chart = chart_path_of(helm_release.read_text())
        if chart is not None:
            named.add(chart)
    for copy in (workdir / CHARTS).glob("*/*"):
        if copy.is_dir() and PurePosixPath(copy.relative_to(workdir).as_posix()) not in named:
            shutil.rmtree(copy)


class FluxReleases:
    """The releases of a gitops environment: Helm's records as helm-controller keeps them; the
    status names the deployment whose commit Flux has applied (the HelmRelease's annotation)
    once its HelmRelease is ready; rendering uses the chart copy the repository carries."""

    def __init__(self, helm: Helm, flux: FluxObjects, charts: ChartCopies) -> None:
        self._helm = helm
        self._flux = flux
        self._charts = charts

    async def status(self, release: str) -> ReleaseStatus | None:
        """Helm's status, its description naming the deployment Flux finished applying."""
        status: ReleaseStatus | None = await self._helm.status(release)
        helm_release = await self._flux.get(release_key(release))
        if status is None or helm_release is None:
            return status
        deployment = (helm_release["metadata"].get("annotations") or {}).get(DEPLOYMENT_ANNOTATION)
        generation = int(helm_release["metadata"].get("generation") or 0)
        if deployment and release_verdict(helm_release, generation).state == "succeeded":
            return status.model_copy(
                update={"description": f"{DESCRIPTION_MARK}{deployment} {status.description}"}
            )
        return status

    async def get_manifest(self, release: str) -> str | None:
        """The manifest of the release's current revision."""
        return await self._helm.get_manifest(release)

    async def get_values(self, release: str) -> dict[str, Any] | None:
        """The values of the release's current revision (Flux's merged values)."""
        return await self._helm.get_values(release)

    async def template(self, release: str, chart_dir: Path, values: Mapping[str, Any]) -> str:
        """What the chart copy the repository would carry renders for ``values``."""
        return await self._helm.template(release, self._charts.prepare(chart_dir).local, values)
