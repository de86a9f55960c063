"""The deployer's event contract (docs/events.md): what CI sends and what the deployer reports.

Inbound, CI publishes one CloudEvent per built image on ``pipeline.artifact.<service>``, of the
CDEvents type ``dev.cdevents.artifact.published.0.2.0``, with :class:`ArtifactPublished` as data.
Its event id comes from the pipeline run and the service, so a retried CI job is one deployment.

Outbound, the deployer publishes ``deploy.<service>.<phase>`` events of type
``dev.flotilla.deploy.<phase>.v1`` with :class:`DeployEventData` as data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from deploy_contract.images import ImageRef, parse_image
from kit import naming

ARTIFACT_PUBLISHED = "dev.cdevents.artifact.published.0.2.0"
PIPELINE_SUBJECT_PREFIX = "pipeline.artifact."
DEPLOY_SUBJECT_PREFIX = "deploy."
# The service-name rule is kit.naming's (pipelines discovers services with it too).
SERVICE_NAME = naming.SERVICE_NAME


class DeployPhase(StrEnum):
    """Where a deployment is; the last six are terminal, and each deployment reports exactly one.

    A deployment whose rollout fails ends ``rolled_back`` when Helm restored the previous revision
    (its reason and ``helm_stderr`` say what failed), and ``failed`` when nothing was restored
    (a first install, or a failed rollback). One whose plan changes nothing ends ``unchanged``
    without running helm (``force`` upgrades anyway).
    A deployment of a service with the canary strategy reports ``canary`` events between its
    steps (the split, the measurements); it ends ``succeeded`` when promoted, ``rolled_back``
    when aborted (the stable pods serve everything again), ``superseded`` when a newer one took
    over mid-canary.
    A deployment whose plan holds a change the policy wants a person to approve waits in
    ``pending_approval`` (helm has not run) until it is approved (``queued`` again) or denied
    (``rejected``), or a newer deployment of the service supersedes it.
    """

    QUEUED = "queued"
    PENDING_APPROVAL = "pending_approval"
    STARTED = "started"
    PROGRESSING = "progressing"
    CANARY = "canary"
    SUCCEEDED = "succeeded"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"

    @property
    def terminal(self) -> bool:
        """True for the phases after which nothing more happens to a deployment."""
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset(
    {
        DeployPhase.SUCCEEDED,
        DeployPhase.UNCHANGED,
        DeployPhase.FAILED,
        DeployPhase.ROLLED_BACK,
        DeployPhase.REJECTED,
        DeployPhase.SUPERSEDED,
    }
)


def pipeline_subject(service: str) -> str:
    """The subject CI publishes a service's artifact events on."""
    return f"{PIPELINE_SUBJECT_PREFIX}{service}"


def deploy_subject(service: str, phase: DeployPhase) -> str:
    """The subject of a deploy event."""
    return f"{DEPLOY_SUBJECT_PREFIX}{service}.{phase.value}"


def deploy_event_type(phase: DeployPhase) -> str:
    """The CloudEvent type of a deploy event."""
    return f"dev.flotilla.deploy.{phase.value}.v1"


class ArtifactPublished(BaseModel):
    """CI's request: deploy ``image`` as ``service``, built from ``commit`` by ``pipeline_id``."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SERVICE_NAME, examples=["order"])
    image: str = Field(
        min_length=3, max_length=512, examples=["registry.example/order-service:1.4.2-a8f3d21"]
    )
    commit: str = Field(pattern=r"^[0-9a-f]{7,40}$", examples=["a8f3d21"])
    commit_time: AwareDatetime | None = Field(
        default=None,
        description="When the commit was made (its committer date): the start of the lead time "
        "for changes. Without it the lead time starts when the deployer received the event.",
        examples=["2026-12-07T09:30:00Z"],
    )
    pipeline_id: str = Field(min_length=1, max_length=200, examples=["github:1234567890:1"])
    pipeline_url: str | None = Field(default=None, max_length=2000)
    rollback: bool = Field(
        default=False, description="Allow an image older than the deployed one (a rollback)."
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra chart values (e.g. replicaCount); the chart's schema validates them.",
    )
    force: bool = Field(
        default=False,
        description="Run helm upgrade even when the plan changes nothing (a new revision).",
    )

    def refusal_over(self, deployed: ImageRef | None) -> str | None:
        """Why this request may not replace the ``deployed`` image (None: it may): an older
        image needs ``rollback=true``. The one home of the older-image rule; raises
        ImageRejectedError for an image that breaks the immutable-tag rule."""
        if deployed is None or self.rollback:
            return None
        return parse_image(self.image).refused_over(deployed)

    @field_validator("values")
    @classmethod
    def _image_comes_from_the_image_field(cls, values: dict[str, Any]) -> dict[str, Any]:
        if "image" in values:
            raise ValueError("set the image with the 'image' field, not values.image")
        return values


class PodProblem(BaseModel):
    """Why one container of a new pod is not ready: OOMKilled, CrashLoopBackOff, ErrImagePull,
    NotReady (its readiness probe fails), ..."""

    pod: str
    container: str
    reason: str
    exit_code: int | None = None
    restarts: int = 0
    message: str | None = None

    def summary(self) -> str:
        """E.g. ``pod order-7f9c-x2k container order: OOMKilled (exit 137), restarted 2 times``."""
        text = f"pod {self.pod} container {self.container}: {self.reason}"
        if self.exit_code is not None:
            text += f" (exit {self.exit_code})"
        if self.restarts:
            text += f", restarted {self.restarts} time{'s' if self.restarts > 1 else ''}"
        if self.message and self.reason != "OOMKilled":
            text += f": {self.message}"
        return text


class RolloutProgress(BaseModel):
    """Replica counts of the service's Deployment during a rollout, and what keeps the new pods
    from becoming ready."""

    desired: int
    updated: int
    ready: int
    available: int
    replica_sets: dict[str, int] = Field(
        default_factory=dict, description="ReplicaSet name -> ready replicas"
    )
    problems: list[PodProblem] = Field(
        default_factory=list, description="Containers of the new pods that are not ready, and why"
    )


class CanaryNumbers(BaseModel):
    """What one track (the canary or the stable pods) did over a measurement's window."""

    requests: float
    success_rate: float | None = None
    p99_seconds: float | None = None
    deliveries: float = 0
    handler_failures: float = 0
    dead_letters: float = 0


class CanaryMeasurement(BaseModel):
    """One analysis of the canary: ``pass``, ``fail`` or ``inconclusive`` (no traffic), the
    numbers of both tracks over the same window, and each threshold it broke."""

    verdict: str
    window_seconds: float
    canary: CanaryNumbers
    stable: CanaryNumbers
    broken: list[str] = Field(default_factory=list)
    reason: str = ""


class CanaryState(StrEnum):
    """Where a canary is."""

    SCALING = "scaling"
    ANALYSING = "analysing"
    PAUSED = "paused"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    ABORTING = "aborting"
    ABORTED = "aborted"


class CanaryStatus(BaseModel):
    """A canary's steps, where it is, its split and its measurements (``canary`` events, and
    the terminal event of a canary deployment)."""

    state: CanaryState
    steps: list[str]
    step: int = Field(description="Index of the current step in steps; len(steps): promotion")
    weight: int = Field(description="The weight of the last setWeight step reached, percent")
    stable_replicas: int
    canary_replicas: int
    stable_image: str | None = None
    canary_image: str | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    measurements: list[CanaryMeasurement] = Field(
        default_factory=list, description="The measurements of the canary so far, oldest first"
    )
    reason: str | None = None

    @property
    def share(self) -> float:
        """The canary's share of the pods, and so of the requests."""
        total = self.stable_replicas + self.canary_replicas
        return self.canary_replicas / total if total else 0.0


class DeployEventData(BaseModel):
    """The data of every ``deploy.<service>.<phase>`` event."""

    deployment_id: str
    service: str
    environment: str | None = Field(default=None, description="Where the service deploys")
    release_id: str | None = Field(
        default=None, description="The release deployed (the same in every environment)"
    )
    promotion_id: str | None = Field(
        default=None, description="The promotion that started the deployment, if one did"
    )
    phase: DeployPhase
    image: str | None = None
    commit: str | None = None
    pipeline_id: str | None = None
    reason: str | None = None
    revision: int | None = None
    plan: dict[str, Any] | None = None
    progress: RolloutProgress | None = None
    superseded_by: str | None = None
    helm_stderr: str | None = None
    pod_problems: list[PodProblem] | None = None
    approvals_needed: list[str] | None = None
    approved_by: str | None = None
    canary: CanaryStatus | None = None


DRIFTED_TYPE = "dev.flotilla.deploy.drifted.v1"


def drift_subject(service: str) -> str:
    """The subject of a service's drift reports."""
    return f"{DEPLOY_SUBJECT_PREFIX}{service}.drifted"


def service_from_subject(subject: str) -> str | None:
    """The service named by a ``pipeline.artifact.<service>`` subject, if well formed."""
    if not subject.startswith(PIPELINE_SUBJECT_PREFIX):
        return None
    service = subject[len(PIPELINE_SUBJECT_PREFIX) :]
    return service if naming.is_service_name(service) else None
