"""The ports of the reconcile loop: what it needs from the world, as protocols.

The adapters implement them over the real systems (:class:`deployer.adapters.helm.Helm` is
both release ports; :class:`deployer.adapters.cluster.Cluster` the rollouts), one set per
environment (its :class:`Place`); the tests implement them in memory. The apply step is a
port of its own, so that a GitOps mode can commit instead of running helm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deploy_contract.events import RolloutProgress
from deployer.canary.analysis import TrackSource
from deployer.promotion.ports import PromotionStore
from deployer.reconcile.objectkey import ObjectKey
from deployer.report.ports import Publisher, RecordStore

OnProgress = Callable[[RolloutProgress], Awaitable[None]]
# What names a change where it is written down: the deployment, its release, pipeline run and
# commit (a gitops commit's trailers; helm's description names them in push mode).
Marks = Mapping[str, str]


class ReleaseInfo(Protocol):
    """A release as its store last recorded it."""

    @property
    def status(self) -> str:
        """deployed, failed, pending-upgrade, ..."""

    @property
    def revision(self) -> int:
        """The current revision."""

    @property
    def description(self) -> str:
        """The description the last operation left (names the deployment)."""

    @property
    def image_repository(self) -> str | None:
        """The repository of the image in the release's values."""

    @property
    def image_tag(self) -> str | None:
        """The tag of the image in the release's values."""

    @property
    def pending(self) -> bool:
        """True while an operation is in progress or was cut short."""


class Applied(Protocol):
    """A finished apply step."""

    @property
    def revision(self) -> int | None:
        """The revision it created, when it says."""


class Releases(Protocol):
    """Reading releases: status, recorded manifest and values, and rendering new values."""

    async def status(self, release: str) -> ReleaseInfo | None:
        """The release now (None: not installed)."""

    async def get_manifest(self, release: str) -> str | None:
        """The manifest of the deployed revision."""

    async def get_values(self, release: str) -> dict[str, Any] | None:
        """The values the deployed revision was installed with."""

    async def template(self, release: str, chart_dir: Path, values: Mapping[str, Any]) -> str:
        """The manifests the chart renders for ``values``."""


@dataclass(frozen=True)
class ApplyRequest:
    """Values to apply to a release of a chart, waiting for the rollout; ``on_start`` gets the
    monotonic time the apply started at, and setting ``stop`` gives up waiting (rolls back);
    ``marks`` name the change."""

    release: str
    chart: Path
    values: Mapping[str, Any]
    description: str
    timeout_seconds: float
    history_max: int
    on_start: Callable[[float], None] | None = None
    stop: asyncio.Event | None = None
    marks: Marks = field(default_factory=dict)


class ApplyStep(Protocol):
    """Changing releases: apply values (waiting for the rollout), roll back, recover."""

    async def apply(self, request: ApplyRequest) -> Applied:
        """Apply the request's values and wait until the rollout is ready; a failed rollout is
        rolled back. Raises a StepError (retryable or final)."""

    async def rollback(
        self,
        release: str,
        revision: int | None,
        *,
        timeout_seconds: float,
        description: str,
        marks: Marks | None = None,
    ) -> Applied:
        """Go back to ``revision`` (None: the previous one), waiting for readiness."""

    async def recover_pending(self, release: str) -> str | None:
        """Bring a release out of pending-*; what was done."""


class LiveObjects(Protocol):
    """The live objects of the release namespace (the Kubernetes API in production)."""

    @property
    def namespace(self) -> str:
        """Where the releases live."""

    async def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The live object (None: it does not exist)."""

    async def apply(self, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        """Apply ``obj`` server-side as helm does; with ``dry_run``, what it would become."""


class Rollouts(Protocol):
    """The pods of a release while it rolls."""

    async def watch(self, release: str, on_progress: OnProgress, *, track: str = "stable") -> None:
        """Report each change of the rollout's progress until cancelled."""


@dataclass
class Place:
    """Where one environment's releases live: read and applied (helm in its namespace, or a
    commit Flux applies: ``mode`` gitops), and the cluster's rollouts and live objects there
    (None without a Kubernetes API)."""

    namespace: str
    releases: Releases
    apply: ApplyStep
    rollouts: Rollouts | None
    objects: LiveObjects | None
    mode: str = "push"


@dataclass
class Ports:
    """The world the deployer works on: each environment's place, canary metrics, records,
    events, and releases with their promotions."""

    places: Mapping[str, Place]
    metrics: TrackSource | None
    store: RecordStore
    publisher: Publisher
    promotions: PromotionStore

    def at(self, environment: str) -> Place:
        """The place of ``environment`` (the environments are checked at start)."""
        return self.places[environment]
