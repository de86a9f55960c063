"""The orchestrator: validate pipeline events, queue them per service, plan, apply, report."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deploy_contract.drift import DriftMode, DriftReport, report_json
from deploy_contract.events import (
    ARTIFACT_PUBLISHED,
    DRIFTED_TYPE,
    ArtifactPublished,
    CanaryState,
    CanaryStatus,
    DeployEventData,
    DeployPhase,
    PodProblem,
    RolloutProgress,
    deploy_event_type,
    deploy_subject,
    drift_subject,
    service_from_subject,
)
from deploy_contract.images import ImageRejectedError, parse_image
from deployer.actions import (
    AlreadyApplied,
    Apply,
    HoldForApproval,
    Observation,
    Outcome,
    RecoverPending,
    RejectOlder,
    SkipUnchanged,
    choose_action,
    choose_step,
    description_for,
    failure_outcome,
    retry_or_final,
    with_pod_problems,
)
from deployer.acts.recover import recover
from deployer.acts.rollback import rollback
from deployer.acts.skip import skip
from deployer.acts.upgrade import upgrade
from deployer.adapters.helm import Helm, HelmError, HelmFinalError
from deployer.canary.control import CanaryControl, Command
from deployer.canary.host import ReleaseCanaryHost
from deployer.canary.prometheus import PrometheusQueries
from deployer.canary.replicas import Bounds, Split
from deployer.canary.run import CanaryPlan, CanaryRun
from deployer.canary.strategy import CanaryStrategy, canary_strategy
from deployer.drift import DriftConfig, check_drift
from deployer.intake import Intake, RejectedError
from deployer.kubeobjects import KubeApiError
from deployer.lanes import Lanes
from deployer.metrics import (
    BUSY_LANES,
    DEPLOY_DURATION,
    DEPLOYMENTS,
    DRIFT_CORRECTIONS,
    DRIFTED_FIELDS,
    EVENT_TO_START,
    QUEUE_DEPTH,
)
from deployer.observe import observe
from deployer.plan import Plan, plan_release
from deployer.plan.live import plan_on_server
from deployer.podproblems import cannot_run, describe
from deployer.policy import DeployPolicy, approvals_needed
from deployer.progress import Cluster
from deployer.records import DeploymentRecord, Origin, ServiceState
from deployer.settings import DeployerSettings
from deployer.store import Store
from kit.events import CloudEvent, Delivery, EventBus
from kit.tracing import extract_trace_context, inject_trace_headers, tracer

log = logging.getLogger(__name__)
_PLAN_PHASES = frozenset({DeployPhase.STARTED, DeployPhase.PENDING_APPROVAL, DeployPhase.UNCHANGED})
_STDERR_PHASES = frozenset({DeployPhase.FAILED, DeployPhase.ROLLED_BACK})
# A canary in these states no longer takes commands: it is restoring or has restored a release.
ENDING_STATES = frozenset(
    {CanaryState.PROMOTING, CanaryState.PROMOTED, CanaryState.ABORTING, CanaryState.ABORTED}
)
__all__ = ["NoCanaryError", "Orchestrator", "RejectedError"]


class NotPendingError(LookupError):
    """An approval for a deployment that does not wait for one; the message says why."""


class NoCanaryError(LookupError):
    """A canary command for a deployment that runs no canary now; the message says why."""


class Orchestrator:
    """Turns accepted deployments into Helm operations, one lane per service."""

    def __init__(
        self,
        settings: DeployerSettings,
        bus: EventBus,
        store: Store,
        helm: Helm,
        cluster: Cluster | None,
        policy: DeployPolicy | None = None,
        environment: str = "development",
        drift: DriftConfig | None = None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._store = store
        self._helm = helm
        self._cluster = cluster
        self._charts = settings.service_charts()
        self._intake = Intake(
            self._charts, settings.values_dir, policy or DeployPolicy(), environment
        )
        # Per service: the deployment waiting for approval (helm has not run for it).
        self._pending: dict[str, DeploymentRecord] = {}
        self._lanes = Lanes(self._execute, self._supersede, settings.max_concurrent)
        self._received: dict[str, float] = {}
        self._helm_started: dict[str, datetime] = {}
        # What kept the new pods of a running rollout from being ready, as last seen.
        self._pod_problems: dict[str, list[PodProblem]] = {}
        # Per release: what this deployer applied last, and the manifest it rendered for it.
        self._applied: dict[str, Observation] = {}
        self._manifests: dict[str, str] = {}
        self._services: dict[str, ServiceState] = {}
        self._seen: set[str] = set()
        self._drift_config = drift or DriftConfig()
        self._drift: dict[str, DriftReport] = {}
        # One Helm operation or drift correction per release at a time.
        self._release_locks: dict[str, asyncio.Lock] = {}
        # The canaries running now, by deployment id.
        self._canaries: dict[str, CanaryRun] = {}
        self._prometheus = (
            PrometheusQueries(
                settings.prometheus_url,
                scrape_interval_seconds=settings.prometheus_scrape_interval_seconds,
            )
            if settings.prometheus_url
            else None
        )

    @property
    def services(self) -> list[str]:
        """The deployable services (one chart each)."""
        return sorted(self._charts)

    @property
    def namespace(self) -> str:
        """Where the service releases live."""
        return self._settings.namespace

    @property
    def store(self) -> Store:
        """The durable records."""
        return self._store

    def running(self, service: str) -> DeploymentRecord | None:
        """The deployment running in ``service``'s lane now, if any."""
        return self._lanes.running(service)

    @property
    def helm(self) -> Helm:
        """The helm client of the target namespace."""
        return self._helm

    # ---- intake -------------------------------------------------------------------------

    async def on_pipeline_event(self, event: CloudEvent, delivery: Delivery) -> None:
        """Accept (queued) or reject one pipeline event; the same event id is handled once."""
        if await self._known(event.id):
            return
        self._received[event.id] = time.monotonic()
        service = service_from_subject(delivery.subject)
        traceparent = inject_trace_headers({}).get("traceparent")
        try:
            request = await self._validate(event, service)
        except RejectedError as exc:
            await self._reject(event.id, service or "unknown", str(exc), traceparent)
            return
        await self.enqueue(event.id, request, Origin.PIPELINE, traceparent)

    async def on_invalid_event(self, raw: bytes, error: str, delivery: Delivery) -> None:
        """A message that is not a CloudEvent: reject it with the parse error."""
        deployment_id = f"invalid-{delivery.subject}-{delivery.stream_sequence}"
        if await self._known(deployment_id):
            return
        service = service_from_subject(delivery.subject) or "unknown"
        await self._reject(deployment_id, service, f"malformed event: {error}", None)

    async def _validate(self, event: CloudEvent, service: str | None) -> ArtifactPublished:
        if event.type != ARTIFACT_PUBLISHED:
            raise RejectedError(f"event type {event.type!r} is not {ARTIFACT_PUBLISHED!r}")
        if service is None:
            raise RejectedError("publish pipeline events on pipeline.artifact.<service>")
        try:
            request = ArtifactPublished.model_validate(event.data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}"
                for err in exc.errors()
            )
            raise RejectedError(f"missing or malformed fields: {problems}") from None
        if request.service != service:
            raise RejectedError(
                f"the event names service {request.service!r} but came on the subject of "
                f"{service!r}; publish on pipeline.artifact.{request.service}"
            )
        return await self.check_request(request)

    async def check_request(self, request: ArtifactPublished) -> ArtifactPublished:
        """Refuse unknown services, mutable tags, images older than the deployed one, and values
        the guardrails, the deploy policy or the chart's schema refuse."""
        if request.service not in self._charts:
            raise RejectedError(
                f"unknown service {request.service!r}: known services are "
                f"{', '.join(self.services)} (each needs charts/<service>)"
            )
        try:
            image = parse_image(request.image)
        except ImageRejectedError as exc:
            raise RejectedError(str(exc)) from None
        state = self._services.get(request.service) or await self._store.service(request.service)
        refusal = (
            image.refused_over(parse_image(state.image))
            if state is not None and state.image and not request.rollback
            else None
        )
        if refusal is not None:
            raise RejectedError(refusal)
        self._intake.check_values(request)
        return request

    async def enqueue(
        self,
        deployment_id: str,
        request: ArtifactPublished | None,
        origin: Origin,
        traceparent: str | None,
        rollback_to_revision: int | None = None,
    ) -> DeploymentRecord:
        """Record a deployment as queued (durably) and hand it to its lane."""
        service = request.service if request else None
        record = DeploymentRecord(
            id=deployment_id,
            service=service or "",
            origin=origin,
            request=request,
            rollback_to_revision=rollback_to_revision,
            phase=DeployPhase.QUEUED,
            traceparent=traceparent,
            received_at=datetime.now(UTC),
        )
        record = record.moved_to(DeployPhase.QUEUED)
        await self._report(record)
        await self._supersede_pending(record)
        await self._lanes.submit(record)
        self._gauges()
        return record

    async def enqueue_rollback(self, service: str, revision: int | None) -> DeploymentRecord:
        """Queue a rollback of ``service`` to ``revision`` (None: the previous one)."""
        if service not in self._charts:
            raise RejectedError(
                f"unknown service {service!r}: known are {', '.join(self.services)}"
            )
        deployment_id = f"rollback-{service}-{int(time.time() * 1000)}"
        record = DeploymentRecord(
            id=deployment_id,
            service=service,
            origin=Origin.API,
            rollback_to_revision=revision or 0,
            phase=DeployPhase.QUEUED,
            received_at=datetime.now(UTC),
        ).moved_to(DeployPhase.QUEUED)
        await self._report(record)
        await self._supersede_pending(record)
        await self._lanes.submit(record)
        return record

    async def _supersede_pending(self, newer: DeploymentRecord) -> None:
        waiting = self._pending.pop(newer.service, None)
        if waiting is not None:
            await self._supersede(waiting, newer)

    def pending(self, deployment_id: str) -> DeploymentRecord | None:
        """The deployment ``deployment_id`` if it waits for approval."""
        return next((r for r in self._pending.values() if r.id == deployment_id), None)

    async def approve(self, deployment_id: str, by: str) -> DeploymentRecord:
        """Queue a deployment that waited for approval; it runs once, without asking again."""
        record = await self._take_pending(deployment_id)
        approved = record.model_copy(update={"approved_by": by}).moved_to(
            DeployPhase.QUEUED, f"approved by {by}"
        )
        await self._report(approved)
        await self._lanes.submit(approved)
        self._gauges()
        return approved

    async def deny(self, deployment_id: str, by: str) -> DeploymentRecord:
        """End a deployment that waited for approval as rejected."""
        record = await self._take_pending(deployment_id)
        denied = record.moved_to(DeployPhase.REJECTED, f"denied by {by}")
        DEPLOYMENTS.labels(record.service, DeployPhase.REJECTED.value).inc()
        await self._report(denied)
        return denied

    async def _take_pending(self, deployment_id: str) -> DeploymentRecord:
        record = self.pending(deployment_id)
        if record is not None:
            del self._pending[record.service]
            return record
        stored = await self._store.get(deployment_id)
        if stored is None:
            raise NotPendingError(f"no deployment {deployment_id}")
        raise NotPendingError(
            f"deployment {deployment_id} is {stored.phase.value}, not pending_approval: "
            "there is nothing to approve"
        )

    async def _known(self, deployment_id: str) -> bool:
        # Ids seen by this process are remembered; older ones are in the store.
        if deployment_id in self._seen:
            return True
        return await self._store.get(deployment_id) is not None

    async def resume(self) -> int:
        """After a restart: put every unfinished deployment back in its lane, oldest first."""
        records = await self._store.all()
        self._seen.update(record.id for record in records)
        unfinished = [r for r in records if not r.phase.terminal]
        for record in unfinished:
            if record.phase is DeployPhase.PENDING_APPROVAL:
                # It keeps waiting (newest per service); helm never ran for it.
                older = self._pending.get(record.service)
                self._pending[record.service] = record
                if older is not None:
                    await self._supersede(older, record)
                continue
            await self._supersede_pending(record)
            await self._lanes.submit(record)
        return len(unfinished)

    async def wait_idle(self) -> None:
        """Wait for every lane to finish (tests and benchmarks)."""
        await self._lanes.wait_idle()

    async def stop(self, timeout: float) -> None:
        """Shutdown: finish or cancel the running deployments, then close Prometheus' client."""
        await self._lanes.stop(timeout)
        if self._prometheus is not None:
            await self._prometheus.aclose()

    # ---- planning -----------------------------------------------------------------------

    async def values_for(self, record: DeploymentRecord) -> dict[str, Any]:
        """Chart defaults < the environment's values file < the request's values < its image.

        Nothing carries over from the previous release: a deployment is fully described by the
        environment and its request, so what the plan renders is what gets applied.
        """
        assert record.request is not None
        return self._intake.release_values(record.request)

    async def plan(self, record: DeploymentRecord, values: dict[str, Any] | None = None) -> Plan:
        """What the deployment would change, asked of the API server; changes nothing."""
        plan, _ = await self._plan(record, values or await self.values_for(record))
        return plan

    async def _plan(self, record: DeploymentRecord, values: dict[str, Any]) -> tuple[Plan, str]:
        """The plan and the manifest it rendered: each object dry-run applied against the live
        one (liveplan.py); without a cluster, compared with the release's recorded manifest."""
        service = record.service
        rendered, recorded = await asyncio.gather(
            self._helm.template(service, self._charts[service], values),
            self._recorded_manifest(service),
        )
        if self._cluster is None:
            return plan_release(service, recorded, rendered), rendered
        return await plan_on_server(service, self._cluster.objects, recorded, rendered), rendered

    async def _recorded_manifest(self, release: str) -> str | None:
        # What this deployer applied last is Helm's record too (it is the only writer).
        cached = self._manifests.get(release)
        return cached if cached is not None else await self._helm.get_manifest(release)

    # ---- execution ----------------------------------------------------------------------

    async def _execute(self, record: DeploymentRecord) -> None:
        context = extract_trace_context(
            {"traceparent": record.traceparent} if record.traceparent else {}
        )
        with tracer().start_as_current_span(
            f"deploy {record.service}", context=context, attributes={"deployment.id": record.id}
        ):
            self._gauges()
            try:
                await self._run_to_outcome(record)
            finally:
                self._received.pop(record.id, None)
                self._gauges()

    async def _run_to_outcome(self, record: DeploymentRecord) -> None:
        release = record.service
        lock = self._release_locks.setdefault(release, asyncio.Lock())
        async with lock:
            await self._attempts(record)

    async def _attempts(self, record: DeploymentRecord) -> None:
        release = record.service
        attempt = 0
        while True:
            attempt += 1
            observed: Observation | None = None
            try:
                # What this deployer applied last is Helm's state too (it is the only writer);
                # anything else (a restart, a failure) asks Helm.
                observed = self._applied.get(release) or await observe(self._helm, release)
                action = choose_action(record, observed)
                if isinstance(action, RecoverPending):
                    observed = await recover(self._helm, release)
                    action = choose_action(record, observed)
                if isinstance(action, AlreadyApplied):
                    await self._succeed(record, action.revision)
                    return
                if isinstance(action, RejectOlder):
                    await self._finish(record, DeployPhase.REJECTED, action.reason)
                    return
                assert isinstance(action, Apply)
                await self._apply(record, observed)
                return
            except (HelmError, KubeApiError) as exc:
                self._forget(release)
                if retry_or_final(exc, attempt) == "retry":
                    log.warning(
                        "a step failed transiently; retrying",
                        extra={"deployment_id": record.id, "attempt": attempt, "error": str(exc)},
                    )
                    await asyncio.sleep(self._settings.retry_seconds * attempt)
                    continue
                if isinstance(exc, HelmFinalError):
                    await self._fail(record, observed_before=observed, error=exc)
                else:
                    what = "helm" if isinstance(exc, HelmError) else "the Kubernetes API"
                    transient = isinstance(exc, HelmError) or (
                        isinstance(exc, KubeApiError) and exc.retryable
                    )
                    reason = (
                        f"{what} kept failing after {attempt} tries: {exc}"
                        if transient
                        else f"the API server refused the planned manifests (fix the chart or "
                        f"values and deploy again): {exc}"
                    )
                    await self._finish(record, DeployPhase.FAILED, reason)
                return

    def _forget(self, release: str) -> None:
        self._applied.pop(release, None)
        self._manifests.pop(release, None)

    async def _apply(self, record: DeploymentRecord, observed: Observation) -> None:
        if record.rollback_to_revision is not None:
            await self._rollback(record)
            return
        values = await self.values_for(record)
        # Plan before act: what the API server says the upgrade changes decides whether it runs.
        plan, rendered = await self._plan(record, values)
        rules = self._intake.rules(record.service)
        needed = approvals_needed(plan, rules) if rules.require_approval else []
        step = choose_step(record, plan, needed)
        if isinstance(step, SkipUnchanged):
            planned = record.model_copy(
                update={"plan": plan.model_dump(mode="json"), "plan_summary": plan.summary()}
            )
            await self._conclude(planned, skip(step))
            return
        if isinstance(step, HoldForApproval):
            await self._hold(record, plan, list(step.needed))
            return
        strategy = self._canary_strategy(record, values, observed)
        summary = plan.summary()
        if strategy is not None:
            summary = f"canary: {strategy.describe()}; {summary}"
        started = record.moved_to(DeployPhase.STARTED).model_copy(
            update={"plan": plan.model_dump(mode="json"), "plan_summary": summary}
        )
        await self._report(started)
        if strategy is not None:
            await self._canary(started, strategy, values, observed, rendered)
            return
        began = time.monotonic()
        give_up = asyncio.Event()
        watcher = self._watch_progress(started, give_up)
        try:
            outcome = await upgrade(
                self._helm,
                self._settings,
                record,
                self._charts[record.service],
                values,
                observed,
                on_start=lambda at: self._started_helm(record.id, at),
                stop=give_up,
            )
        finally:
            await self._stop(watcher)
            DEPLOY_DURATION.labels(record.service).observe(time.monotonic() - began)
            problems = self._pod_problems.pop(record.id, [])
        if outcome.phase is not DeployPhase.SUCCEEDED and give_up.is_set():
            outcome = replace(
                outcome, reason=f"stopped waiting: the new pods cannot run; {outcome.reason}"
            )
        if outcome.phase is not DeployPhase.SUCCEEDED and problems:
            outcome = with_pod_problems(outcome, problems)
        if outcome.phase is DeployPhase.SUCCEEDED:
            assert record.request is not None
            self._applied[record.service] = Observation(
                status="deployed",
                revision=outcome.revision,
                description=description_for(record),
                image=parse_image(record.request.image),
            )
            self._manifests[record.service] = rendered
        else:
            self._forget(record.service)
        await self._conclude(started, outcome)

    # ---- canaries ------------------------------------------------------------------------

    def _canary_strategy(
        self, record: DeploymentRecord, values: dict[str, Any], observed: Observation
    ) -> CanaryStrategy | None:
        """The canary of this deployment: its service's strategy is canary, a release serves
        already, and the image changes (a first install, or a change of values alone, rolls)."""
        if record.request is None or observed.status != "deployed" or observed.image is None:
            return None
        strategy = canary_strategy(self._intake.merged(record.service, values))
        if strategy is None or record.canary is not None:  # resumed: finish the canary
            return strategy
        new = parse_image(record.request.image)
        # Helm's status has no digest: the repository and the tag name the image that runs.
        if (new.repository, new.tag) == (observed.image.repository, observed.image.tag):
            return None
        return strategy

    async def _canary(
        self,
        record: DeploymentRecord,
        strategy: CanaryStrategy,
        values: dict[str, Any],
        observed: Observation,
        rendered: str,
    ) -> None:
        service = record.service
        assert record.request is not None
        stable_values = await self._helm.get_values(service) or {}
        # A canary cut short by a restart of the deployer starts again from the split it left.
        live = stable_values.pop("canary", None) or {}
        merged = self._intake.merged(service, stable_values)
        replicas = int(merged.get("replicaCount", 1))
        rolling = merged.get("rollingUpdate") or {}
        bounds = Bounds.of(replicas, rolling.get("maxSurge", 1), rolling.get("maxUnavailable", 0))
        start = (
            Split(int(live.get("stableReplicas", replicas)), int(live.get("replicas", 0)))
            if live.get("enabled")
            else Split(replicas, 0)
        )
        plan = CanaryPlan(
            strategy=strategy,
            stable_values=stable_values,
            new_values=values,
            image=parse_image(record.request.image),
            stable_image=str(observed.image) if observed.image else None,
            bounds=bounds,
            start=start,
            deployment_id=record.id,
            service=service,
            resumed=record.canary,
        )
        current = record

        async def publish(status: CanaryStatus) -> None:
            nonlocal current
            current = current.model_copy(update={"canary": status})
            await self._store.put(current)
            await self._publish(current, DeployPhase.CANARY)

        host = ReleaseCanaryHost(
            helm=self._helm,
            settings=self._settings,
            record=record,
            chart=self._charts[service],
            cluster=self._cluster,
            queries=self._prometheus,
            publish=publish,
            newer_deployment=lambda: self._newer(service),
        )
        run = self._canaries[record.id] = CanaryRun(plan, host, CanaryControl())
        self._forget(service)
        try:
            result = await run.run()
        finally:
            self._canaries.pop(record.id, None)
        ended = current.model_copy(update={"canary": result.status})
        if result.superseded_by is not None:
            DEPLOYMENTS.labels(service, DeployPhase.SUPERSEDED.value).inc()
            final = ended.moved_to(DeployPhase.SUPERSEDED, result.outcome.reason)
            await self._report(final, superseded_by=result.superseded_by)
            return
        if result.outcome.phase is DeployPhase.SUCCEEDED:
            self._applied[service] = Observation(
                status="deployed",
                revision=result.outcome.revision,
                description=description_for(record),
                image=parse_image(record.request.image),
            )
            self._manifests[service] = rendered
        await self._conclude(ended, result.outcome)

    def _newer(self, service: str) -> str | None:
        queued = self._lanes.queued(service)
        return queued.id if queued is not None else None

    async def command_canary(self, deployment_id: str, command: Command, by: str) -> None:
        """Tell a running canary to promote, abort, pause or resume; refused (NoCanaryError,
        saying why) when it cannot act on it now."""
        run = self._canaries.get(deployment_id)
        if run is not None:
            state = run.status.state
            if state in ENDING_STATES:
                raise NoCanaryError(
                    f"the canary of {deployment_id} is {state.value} already: it cannot "
                    f"{command.value} any more (its outcome follows)"
                )
            if command is Command.RESUME and state is not CanaryState.PAUSED:
                raise NoCanaryError(
                    f"the canary of {deployment_id} is {state.value}, not paused: there is "
                    "nothing to resume"
                )
            run.control.send(command, by)
            return
        stored = await self._store.get(deployment_id)
        if stored is None:
            raise NoCanaryError(f"no deployment {deployment_id}")
        where = f"it is {stored.phase.value}"
        if stored.canary is None:
            where += " and ran no canary (its service's strategy is rolling)"
        raise NoCanaryError(
            f"deployment {deployment_id} runs no canary now ({where}): there is nothing to "
            f"{command.value}"
        )

    async def _conclude(self, record: DeploymentRecord, outcome: Outcome) -> None:
        """Record and report the one outcome of a deployment."""
        if outcome.phase is DeployPhase.SUCCEEDED:
            await self._succeed(record, outcome.revision or 0)
            return
        ended = record.model_copy(
            update={
                "helm_stderr": outcome.helm_stderr or record.helm_stderr,
                "revision": outcome.revision or record.revision,
                "pod_problems": list(outcome.pod_problems) or record.pod_problems,
            }
        )
        await self._finish(ended, outcome.phase, outcome.reason)

    async def _hold(self, record: DeploymentRecord, plan: Plan, needed: list[str]) -> None:
        held = record.model_copy(
            update={
                "plan": plan.model_dump(mode="json"),
                "plan_summary": plan.summary(),
                "approvals_needed": needed,
            }
        ).moved_to(DeployPhase.PENDING_APPROVAL, "waiting for approval: " + "; ".join(needed))
        log.info(
            "deployment waits for approval",
            extra={"deployment_id": record.id, "needed": needed},
        )
        self._pending[record.service] = held
        await self._report(held)
        newer = self._lanes.queued(record.service)
        if newer is not None:  # it arrived while this one was being planned
            await self._supersede_pending(newer)

    async def _rollback(self, record: DeploymentRecord) -> None:
        started = record.moved_to(DeployPhase.STARTED)
        await self._report(started)
        self._forget(record.service)
        await self._conclude(started, await rollback(self._helm, self._settings, record))

    def _started_helm(self, deployment_id: str, at: float) -> None:
        received = self._received.get(deployment_id)
        if received is not None:
            EVENT_TO_START.observe(at - received)
        wall = time.time() - (time.monotonic() - at)
        self._helm_started[deployment_id] = datetime.fromtimestamp(wall, UTC)

    def _watch_progress(
        self, record: DeploymentRecord, give_up: asyncio.Event
    ) -> asyncio.Task[None] | None:
        """Publish the rollout's progress; set ``give_up`` once the new pods cannot run."""
        if self._cluster is None:
            return None
        restarts = self._settings.fail_fast_restarts

        async def report(progress: RolloutProgress) -> None:
            if progress.problems:  # kept: helm's rollback deletes the pods that had them
                self._pod_problems[record.id] = progress.problems
                fatal = cannot_run(progress.problems, restarts) if restarts else []
                if fatal and not give_up.is_set():
                    log.warning(
                        "the new pods cannot run; stopping helm, which rolls back",
                        extra={"deployment_id": record.id, "problems": describe(fatal)},
                    )
                    give_up.set()
            await self._publish(record, DeployPhase.PROGRESSING, progress=progress)

        return asyncio.create_task(self._cluster.watch(record.service, report))

    @staticmethod
    async def _stop(task: asyncio.Task[None] | None) -> None:
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _fail(
        self, record: DeploymentRecord, observed_before: Observation | None, error: HelmFinalError
    ) -> None:
        after = await observe(self._helm, record.service)
        await self._conclude(
            record, failure_outcome(observed_before, after, str(error), error.stderr)
        )

    async def _succeed(self, record: DeploymentRecord, revision: int) -> None:
        done = record.model_copy(update={"revision": revision})
        await self._finish(done, DeployPhase.SUCCEEDED, None)
        image = done.image
        if image is None:  # a rollback by revision: read what is running now
            observed = await observe(self._helm, done.service)
            image = str(observed.image) if observed.image else None
        self._services[done.service] = state = ServiceState(
            service=done.service,
            image=image,
            revision=revision,
            phase=DeployPhase.SUCCEEDED,
            deployment_id=done.id,
            updated_at=datetime.now(UTC),
        )
        await self._store.put_service(state)

    async def _finish(
        self, record: DeploymentRecord, phase: DeployPhase, reason: str | None
    ) -> None:
        final = record.moved_to(phase, reason)
        helm_started = self._helm_started.pop(record.id, None)
        if helm_started is not None:
            final = final.model_copy(update={"helm_started_at": helm_started})
        DEPLOYMENTS.labels(record.service, phase.value).inc()
        await self._report(final)
        if phase in (DeployPhase.FAILED, DeployPhase.ROLLED_BACK):
            await self._failed_last(final)

    async def _failed_last(self, record: DeploymentRecord) -> None:
        """The service's last outcome is this failure; what serves is still the image before
        (the older-image rule keeps comparing with it), at the revision helm restored."""
        before = self._services.get(record.service) or await self._store.service(record.service)
        rolled_back = record.phase is DeployPhase.ROLLED_BACK
        self._services[record.service] = state = ServiceState(
            service=record.service,
            image=before.image if before else None,
            revision=record.revision if rolled_back else (before.revision if before else None),
            phase=record.phase,
            deployment_id=record.id,
            updated_at=datetime.now(UTC),
        )
        await self._store.put_service(state)

    async def _supersede(self, old: DeploymentRecord, new: DeploymentRecord) -> None:
        superseded = old.moved_to(DeployPhase.SUPERSEDED, f"superseded by {new.id}")
        DEPLOYMENTS.labels(old.service, DeployPhase.SUPERSEDED.value).inc()
        await self._report(superseded, superseded_by=new.id)

    async def _reject(
        self, deployment_id: str, service: str, reason: str, traceparent: str | None
    ) -> None:
        record = DeploymentRecord(
            id=deployment_id,
            service=service,
            phase=DeployPhase.REJECTED,
            received_at=datetime.now(UTC),
            traceparent=traceparent,
        ).moved_to(DeployPhase.REJECTED, reason)
        DEPLOYMENTS.labels(service, DeployPhase.REJECTED.value).inc()
        log.warning(
            "rejected a pipeline event", extra={"deployment_id": deployment_id, "reason": reason}
        )
        await self._report(record)

    # ---- drift --------------------------------------------------------------------------

    def drift_mode(self, service: str) -> DriftMode:
        """What the deployer does about ``service``'s drift."""
        return self._drift_config.rules(service).mode

    def drift_reports(self) -> dict[str, DriftReport]:
        """The last drift check of each service."""
        return dict(self._drift)

    async def check_drift(self, service: str) -> DriftReport:
        """Compare the live objects of ``service``'s release with its manifest, report drift (an
        event and a metric) and, in ``correct`` mode, apply the drifted objects again."""
        if service not in self._charts:
            raise RejectedError(
                f"unknown service {service!r}: known are {', '.join(self.services)}"
            )
        rules = self._drift_config.rules(service)
        lock = self._release_locks.setdefault(service, asyncio.Lock())
        if rules.mode is DriftMode.OFF:
            report = self._unchecked(service, rules.mode, "drift detection is off for this service")
        elif self._cluster is None:
            report = self._unchecked(service, rules.mode, "the deployer has no Kubernetes API")
        elif self._lanes.running(service) is not None:
            report = self._unchecked(service, rules.mode, "a deployment is running")
        else:
            async with lock:  # waits for a drift check already under way
                report = await self._drift_of(service, rules.mode)
        previous = self._drift.get(service)
        if report.error is None or previous is None:
            self._drift[service] = report
        DRIFTED_FIELDS.labels(service).set(len(report.fields))
        if report.drifted:
            log.warning("drift", extra={"service": service, "summary": report.summary()})
            # An event when the drift is new or different (a lasting drift is not repeated every
            # interval); each correction is one.
            if report.corrected:
                DRIFT_CORRECTIONS.labels(service).inc()
            if report.corrected or previous is None or previous.fields != report.fields:
                await self._publish_drift(report)
        return report

    async def _drift_of(self, service: str, mode: DriftMode) -> DriftReport:
        assert self._cluster is not None
        status = await self._helm.status(service)
        if status is None:
            return self._unchecked(service, mode, "the service is not installed")
        if status.status != "deployed":
            return self._unchecked(service, mode, f"its release is {status.status}")
        manifest = await self._recorded_manifest(service)
        try:
            return await check_drift(
                service,
                self._cluster.objects,
                manifest or "",
                self._drift_config.rules(service),
                status.revision,
            )
        except KubeApiError as exc:
            return self._unchecked(service, mode, str(exc))

    @staticmethod
    def _unchecked(service: str, mode: DriftMode, why: str) -> DriftReport:
        return DriftReport(service=service, mode=mode, checked_at=datetime.now(UTC), error=why)

    async def drift_loop(self, interval: float) -> None:
        """Check every installed service for drift every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            for service in self.services:
                try:
                    await self.check_drift(service)
                except Exception as exc:  # a failed check must not stop the loop
                    log.warning(
                        "drift check failed", extra={"service": service, "error": repr(exc)}
                    )

    async def _publish_drift(self, report: DriftReport) -> None:
        event = CloudEvent.new(
            DRIFTED_TYPE,
            source="/platform/deployer",
            subject=report.service,
            data=report_json(report),
            id=f"drift-{report.service}-{time.time_ns()}",
        )
        await self._bus.publish(drift_subject(report.service), event)

    # ---- reporting ----------------------------------------------------------------------

    async def _report(self, record: DeploymentRecord, superseded_by: str | None = None) -> None:
        """Save the record, then publish its phase (the store is the truth, events follow)."""
        self._seen.add(record.id)
        await self._store.put(record)
        await self._publish(record, record.phase, superseded_by=superseded_by)

    async def _publish(
        self,
        record: DeploymentRecord,
        phase: DeployPhase,
        *,
        progress: RolloutProgress | None = None,
        superseded_by: str | None = None,
    ) -> None:
        request = record.request
        data = DeployEventData(
            deployment_id=record.id,
            service=record.service,
            phase=phase,
            image=request.image if request else None,
            commit=request.commit if request else None,
            pipeline_id=request.pipeline_id if request else None,
            reason=record.reason,
            revision=record.revision,
            plan=record.plan if phase in _PLAN_PHASES else None,
            progress=progress,
            superseded_by=superseded_by,
            helm_stderr=record.helm_stderr if phase in _STDERR_PHASES else None,
            pod_problems=record.pod_problems or None if phase in _STDERR_PHASES else None,
            approvals_needed=record.approvals_needed or None,
            approved_by=record.approved_by,
            canary=record.canary if phase is DeployPhase.CANARY or phase.terminal else None,
        )
        suffix = f"{phase.value}-{len(record.history)}"
        if progress is not None or phase is DeployPhase.CANARY:
            suffix = f"{phase.value}-{time.monotonic_ns()}"
        # CloudEvents' distributed-tracing extension carries the pipeline's trace context too.
        tracing = {"traceparent": record.traceparent} if record.traceparent else {}
        event = CloudEvent.new(
            deploy_event_type(phase),
            source="/platform/deployer",
            subject=record.service,
            data=data.model_dump(mode="json", exclude_none=True),
            id=f"{record.id}:{suffix}",
            **tracing,
        )
        headers = dict(tracing) or None
        await self._bus.publish(deploy_subject(record.service, phase), event, headers=headers)

    def _gauges(self) -> None:
        QUEUE_DEPTH.set(self._lanes.queue_depth())
        BUSY_LANES.set(self._lanes.busy())
