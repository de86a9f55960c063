"""In-memory implementations of the reconcile loop's ports: a release store with helm's
semantics (revisions, pending-*, --rollback-on-failure), live objects, records and events.

They keep the reconcile loop's tests fast and exact; the real helm, NATS and cluster are
exercised by tests/deployer and tests/realpods.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.adapters.helm import HelmFinalError, HelmRetryableError
from deployer.plan.live import as_helm_applies
from deployer.promotion.model import Hold, Promotion
from deployer.promotion.releases import Release
from deployer.reconcile.objectkey import ObjectKey, key_of
from deployer.reconcile.ports import ApplyRequest, Place, Ports
from deployer.records import DeploymentRecord, ServiceState
from deployer.targets import Target
from kit.events import CloudEvent


@dataclass(frozen=True)
class Info:
    """A release as the memory store reports it (the ReleaseInfo port)."""

    status: str
    revision: int
    description: str
    image_repository: str | None
    image_tag: str | None

    @property
    def pending(self) -> bool:
        """An operation is in progress or was cut short."""
        return self.status.startswith("pending-")


@dataclass(frozen=True)
class Applied:
    """A finished apply step."""

    revision: int | None


@dataclass
class Revision:
    """One revision of a release."""

    number: int
    status: str
    description: str
    values: dict[str, Any]
    manifest: str


def render(release: str, values: Mapping[str, Any]) -> str:
    """The manifest a tiny chart renders: a Deployment of the image, a canary one when set."""
    image = values.get("image", {})
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": release},
        "spec": {
            "replicas": int(values.get("replicaCount", 2)),
            "template": {
                "spec": {
                    "containers": [
                        {"name": release, "image": f"{image.get('repository')}:{image.get('tag')}"}
                    ]
                }
            },
        },
    }
    documents = [deployment]
    canary = values.get("canary") or {}
    if canary.get("enabled"):
        twin = copy.deepcopy(deployment)
        twin["metadata"]["name"] = f"{release}-canary"
        twin["spec"]["replicas"] = int(canary.get("replicas", 1))
        documents.append(twin)
    return yaml.safe_dump_all(documents, sort_keys=True)


@dataclass
class MemoryObjects:
    """Live objects of one namespace (the LiveObjects port); apply stores what it is given."""

    namespace: str = "flotilla"
    live: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    applied: list[ObjectKey] = field(default_factory=list)

    async def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The live object."""
        found = self.live.get(key)
        return copy.deepcopy(found) if found is not None else None

    async def apply(self, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        """Store ``obj`` (unless a dry run); what the server would store."""
        if not dry_run:
            self.live[key_of(obj)] = copy.deepcopy(obj)
            self.applied.append(key_of(obj))
        return copy.deepcopy(obj)


@dataclass
class MemoryReleases:
    """Releases with helm's semantics (the Releases and ApplyStep ports).

    ``faults`` are raised by the next upgrades, one each, in order: an exception, or
    ``"not-ready"`` for a rollout that never gets ready (rolled back as helm would).
    ``gate``, when set, holds every upgrade until it is set.
    """

    objects: MemoryObjects | None = None
    releases: dict[str, list[Revision]] = field(default_factory=dict)
    faults: list[Exception | str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)
    on_upgrade: Callable[[str], None] | None = None

    def install(self, release: str, values: dict[str, Any], status: str = "deployed") -> None:
        """Seed a release (as if installed earlier)."""
        self._add(release, status, "seeded", values)

    def last(self, release: str) -> Revision:
        """The release's latest revision."""
        return self.releases[release][-1]

    async def status(self, release: str) -> Info | None:
        """The release now."""
        self.calls.append(f"status {release}")
        if not self.releases.get(release):
            return None
        last = self.last(release)
        image = last.values.get("image", {})
        return Info(
            last.status, last.number, last.description, image.get("repository"), image.get("tag")
        )

    async def get_manifest(self, release: str) -> str | None:
        """The deployed revision's manifest."""
        deployed = self._deployed(release)
        return deployed.manifest if deployed else None

    async def get_values(self, release: str) -> dict[str, Any] | None:
        """The deployed revision's values."""
        deployed = self._deployed(release)
        return copy.deepcopy(deployed.values) if deployed else None

    async def template(self, release: str, chart_dir: Path, values: Mapping[str, Any]) -> str:
        """The tiny chart's manifest."""
        self.calls.append(f"template {release}")
        return render(release, values)

    async def apply(self, request: ApplyRequest) -> Applied:
        """Apply ``values``; a scripted fault fails it (a rollout fault is rolled back)."""
        release, values = request.release, request.values
        self.calls.append(f"upgrade {release}")
        if request.on_start is not None:
            request.on_start(asyncio.get_running_loop().time())
        if self.on_upgrade is not None:
            self.on_upgrade(release)
        if self.gate is not None:
            await self.gate.wait()
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, Exception):
            raise fault
        before = self._deployed(release)
        revision = self._add(release, "deployed", request.description, dict(values))
        if fault == "not-ready":
            revision.status = "failed"
            if before is None:
                del self.releases[release]
            else:
                self._add(release, "deployed", f"Rollback to {before.number}", before.values)
            raise HelmFinalError(
                "the rollout was not ready",
                reason="rolled-back",
                command="helm upgrade",
                stderr="Error: release order failed, and has been rolled back due to "
                "rollback-on-failure: context deadline exceeded",
            )
        return Applied(revision.number)

    async def rollback(
        self,
        release: str,
        revision: int | None,
        *,
        timeout_seconds: float,
        description: str,
        marks: Mapping[str, str] | None = None,
    ) -> Applied:
        """Go back to ``revision`` (None: the deployed one before the last)."""
        self.calls.append(f"rollback {release}")
        history = [r for r in self.releases[release] if r.status in ("deployed", "superseded")]
        target = next(r for r in history if r.number == revision) if revision else history[-2]
        restored = self._add(release, "deployed", description, target.values)
        return Applied(restored.number)

    async def recover_pending(self, release: str) -> str | None:
        """Roll a pending release back to its last deployed revision."""
        self.calls.append(f"recover {release}")
        last = self.last(release)
        if not last.status.startswith("pending-"):
            return None
        last.status = "failed"
        deployed = self._deployed(release)
        if deployed is None:
            del self.releases[release]
            return "uninstalled"
        self._add(release, "deployed", f"Rollback to {deployed.number}", deployed.values)
        return "rolled back"

    def _deployed(self, release: str) -> Revision | None:
        return next(
            (r for r in reversed(self.releases.get(release, [])) if r.status == "deployed"), None
        )

    def _add(self, release: str, status: str, description: str, values: dict[str, Any]) -> Revision:
        history = self.releases.setdefault(release, [])
        for old in history:
            if old.status == "deployed" and status == "deployed":
                old.status = "superseded"
        number = history[-1].number + 1 if history else 1
        revision = Revision(number, status, description, values, render(release, values))
        history.append(revision)
        if status == "deployed":
            self._apply(release, revision)
        return revision

    def _apply(self, release: str, revision: Revision) -> None:
        if self.objects is not None:
            namespace = self.objects.namespace
            for obj in yaml.safe_load_all(revision.manifest):
                self.objects.live[key_of(obj)] = as_helm_applies(obj, release, namespace)


def transient(message: str = "the API server is slow") -> HelmRetryableError:
    """A retryable helm error."""
    return HelmRetryableError(message, reason="api-unavailable", command="helm", stderr=message)


@dataclass
class MemoryStore:
    """Deployment records and service states (the RecordStore port)."""

    records: dict[str, DeploymentRecord] = field(default_factory=dict)
    states: dict[Target, ServiceState] = field(default_factory=dict)

    async def get(self, deployment_id: str) -> DeploymentRecord | None:
        """The record of ``deployment_id``."""
        return self.records.get(deployment_id)

    async def put(self, record: DeploymentRecord) -> None:
        """Save ``record``."""
        self.records[record.id] = record

    async def all(self) -> list[DeploymentRecord]:
        """Every record, oldest first."""
        return sorted(self.records.values(), key=lambda r: r.received_at)

    async def service(self, target: Target) -> ServiceState | None:
        """The state of ``target``."""
        return self.states.get(target)

    async def put_service(self, state: ServiceState) -> None:
        """Save ``state``."""
        self.states[state.target] = state


@dataclass
class MemoryPublisher:
    """Published events, in order (the Publisher port)."""

    events: list[tuple[str, CloudEvent]] = field(default_factory=list)

    async def publish(
        self, subject: str, event: CloudEvent, *, headers: dict[str, str] | None = None
    ) -> None:
        """Keep the event."""
        self.events.append((subject, event))

    def phases(self, deployment_id: str) -> list[str]:
        """The phases published for one deployment, in order (progress left out)."""
        return [
            event.data["phase"]
            for _, event in self.events
            if isinstance(event.data, dict)
            and event.data.get("deployment_id") == deployment_id
            and event.data.get("phase") not in ("progressing", "canary")
        ]


def memory_place(releases: MemoryReleases, namespace: str = "flotilla") -> Place:
    """One environment's place in memory: ``releases`` reads and applies (over its live objects,
    when it has them); no rollouts to watch."""
    return Place(
        namespace=releases.objects.namespace if releases.objects else namespace,
        releases=releases,
        apply=releases,
        rollouts=None,
        objects=releases.objects,
    )


def memory_ports(
    releases: MemoryReleases | dict[str, MemoryReleases],
    store: MemoryStore,
    events: MemoryPublisher,
    promotions: MemoryPromotions | None = None,
) -> Ports:
    """The deployer's ports in memory: one place per environment (``releases`` alone: the
    default environment, ``development``); no canary metrics."""
    by_environment = releases if isinstance(releases, dict) else {"development": releases}
    return Ports(
        places={name: memory_place(each) for name, each in by_environment.items()},
        metrics=None,
        store=store,
        publisher=events,
        promotions=promotions or MemoryPromotions(),
    )


@dataclass
class MemoryPromotions:
    """Releases, promotions and holds in memory (the PromotionStore port)."""

    by_id: dict[str, Release] = field(default_factory=dict)
    promoted: dict[str, Promotion] = field(default_factory=dict)
    held: dict[Target, Hold] = field(default_factory=dict)

    async def release(self, release_id: str) -> Release | None:
        """The release ``release_id``."""
        return self.by_id.get(release_id)

    async def put_release(self, release: Release) -> None:
        """Save ``release``."""
        self.by_id[release.id] = release

    async def releases(self) -> list[Release]:
        """Every release, oldest first."""
        return sorted(self.by_id.values(), key=lambda r: r.created_at)

    async def promotion(self, promotion_id: str) -> Promotion | None:
        """The promotion ``promotion_id``."""
        return self.promoted.get(promotion_id)

    async def put_promotion(self, promotion: Promotion) -> None:
        """Save ``promotion``."""
        self.promoted[promotion.id] = promotion

    async def promotions(self) -> list[Promotion]:
        """Every promotion, oldest first."""
        return sorted(self.promoted.values(), key=lambda p: p.created_at)

    async def hold(self, target: Target) -> Hold | None:
        """The hold on ``target``."""
        return self.held.get(target)

    async def put_hold(self, hold: Hold) -> None:
        """Hold ``hold.target``."""
        self.held[hold.target] = hold

    async def clear_hold(self, target: Target) -> None:
        """Remove the hold on ``target``."""
        self.held.pop(target, None)

    async def holds(self) -> list[Hold]:
        """Every hold."""
        return list(self.held.values())
