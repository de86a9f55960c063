"""The deployer's HTTP API: services, history, plan, manual deploy and rollback, canary
commands, live events."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from deploy_contract.drift import DriftMode, DriftReport
from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.canary.control import Command
from deployer.canary.registry import NoCanaryError
from deployer.intake.checks import RejectedError
from deployer.orchestrator import Orchestrator
from deployer.queue.approvals import NotPendingError
from deployer.records import DeploymentRecord, Origin
from deployer.report.views import ServiceView
from deployer.web.auth import require, token_dependency
from deployer.web.tokens import ApiToken, Scope, TokenBook
from kit.problems import problem_responses


class RollbackRequest(BaseModel):
    """Roll a service back to ``revision`` (default: the previous one)."""

    revision: int | None = Field(default=None, ge=1)


class DecisionRequest(BaseModel):
    """An approval or denial; ``note`` is kept in the deployment's history."""

    note: str | None = Field(default=None, max_length=500)


def api_router(
    orchestrator: Callable[[], Orchestrator],
    tokens: Callable[[], TokenBook],
    deploy_events: Callable[[ApiToken], AsyncIterator[bytes]],
) -> APIRouter:
    """The API bound to the running orchestrator; every call needs a token with its scope."""
    router = APIRouter(prefix="/api", tags=["deployer"])
    # A local alias, evaluated here (this module has no postponed annotations for FastAPI).
    Caller = Annotated[ApiToken, Depends(token_dependency(tokens))]  # noqa: N806

    @router.get(
        "/services",
        response_model=list[ServiceView],
        summary="Every service's release (those the token may read)",
        responses=problem_responses(401, 403),
    )
    async def services(caller: Caller) -> list[ServiceView]:
        require(caller, Scope.READ)
        return await service_views(orchestrator(), caller)

    @router.get(
        "/deployments",
        response_model=list[DeploymentRecord],
        summary="Deployment history, newest first",
        responses=problem_responses(401, 403, 422),
    )
    async def history(
        caller: Caller,
        service: str | None = None,
        phase: DeployPhase | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[DeploymentRecord]:
        require(caller, Scope.READ, service)
        records = await orchestrator().views.deployments()
        selected = [
            r
            for r in reversed(records)
            if (service is None or r.service == service)
            and (phase is None or r.phase == phase)
            and caller.sees(r.service)
        ]
        return selected[:limit]

    @router.get(
        "/deployments/{deployment_id}",
        response_model=DeploymentRecord,
        responses=problem_responses(401, 403, 404),
    )
    async def deployment(caller: Caller, deployment_id: str) -> DeploymentRecord:
        require(caller, Scope.READ)
        record = await orchestrator().views.deployment(deployment_id)
        if record is None or not caller.sees(record.service):
            raise HTTPException(404, f"no deployment {deployment_id} (that this token may read)")
        return record

    @router.post(
        "/plan",
        summary="Plan a deployment without changing anything (read scope)",
        responses=problem_responses(401, 403, 422),
    )
    async def plan(caller: Caller, request: ArtifactPublished) -> dict[str, Any]:
        require(caller, Scope.READ, request.service)
        try:
            result = await orchestrator().plan(request)
        except RejectedError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"summary": result.summary(), "plan": result.model_dump(mode="json")}

    @router.post(
        "/deployments",
        status_code=202,
        response_model=DeploymentRecord,
        summary="Deploy an image now (the same path and checks as a pipeline event)",
        responses=problem_responses(401, 403, 422),
    )
    async def deploy(caller: Caller, request: ArtifactPublished) -> DeploymentRecord:
        require(caller, Scope.DEPLOY, request.service)
        admission = orchestrator().admission
        try:
            checked = await admission.check(request)
        except RejectedError as exc:
            raise HTTPException(422, str(exc)) from None
        return await admission.enqueue(f"api-{uuid.uuid4()}", checked, Origin.API, None)

    async def decide(
        caller: Caller, deployment_id: str, body: DecisionRequest | None, approve: bool
    ) -> DeploymentRecord:
        orch = orchestrator()
        waiting = orch.approvals.pending(deployment_id)
        stored = waiting or await orch.views.deployment(deployment_id)
        _allowed(caller, Scope.APPROVE, deployment_id, stored)
        by = _signed(caller, body)
        try:
            if approve:
                return await orch.approvals.approve(deployment_id, by)
            return await orch.approvals.deny(deployment_id, by)
        except NotPendingError as exc:
            raise HTTPException(409, str(exc)) from None

    def decision_route(approving: bool) -> Callable[..., Awaitable[DeploymentRecord]]:
        async def route(
            caller: Caller, deployment_id: str, body: DecisionRequest | None = None
        ) -> DeploymentRecord:
            return await decide(caller, deployment_id, body, approve=approving)

        return route

    for decision, summary in (
        ("approve", "Approve a deployment waiting in pending_approval (approve scope)"),
        ("deny", "Deny a deployment waiting in pending_approval: it ends rejected (approve scope)"),
    ):
        router.add_api_route(
            f"/deployments/{{deployment_id}}/{decision}",
            decision_route(decision == "approve"),
            methods=["POST"],
            response_model=DeploymentRecord,
            summary=summary,
            responses=problem_responses(401, 403, 404, 409),
        )

    @router.post(
        "/deployments/{deployment_id}/canary/{command}",
        status_code=202,
        response_model=DeploymentRecord,
        summary="Tell a running canary to promote (now), abort (back to the stable pods), pause "
        "or resume (deploy scope)",
        responses=problem_responses(401, 403, 404, 409),
    )
    async def canary(
        caller: Caller, deployment_id: str, command: Command, body: DecisionRequest | None = None
    ) -> DeploymentRecord:
        orch = orchestrator()
        stored = await orch.views.deployment(deployment_id)
        record = _allowed(caller, Scope.DEPLOY, deployment_id, stored)
        try:
            await orch.canaries.command(deployment_id, command, _signed(caller, body))
        except NoCanaryError as exc:
            raise HTTPException(409, str(exc)) from None
        return record

    @router.post(
        "/services/{service}/rollback",
        status_code=202,
        response_model=DeploymentRecord,
        summary="Roll a service back to an earlier Helm revision (rollback scope)",
        responses=problem_responses(401, 403, 422),
    )
    async def rollback(caller: Caller, service: str, body: RollbackRequest) -> DeploymentRecord:
        require(caller, Scope.ROLLBACK, service)
        try:
            return await orchestrator().admission.enqueue_rollback(service, body.revision)
        except RejectedError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get(
        "/drift",
        response_model=list[DriftReport],
        summary="The last drift check of each service (those the token may read)",
        responses=problem_responses(401, 403),
    )
    async def drift(caller: Caller) -> list[DriftReport]:
        require(caller, Scope.READ)
        reports = orchestrator().drift.reports()
        return [reports[s] for s in sorted(reports) if caller.sees(s)]

    @router.post(
        "/drift",
        response_model=list[DriftReport],
        summary="Check for drift now, of one service or all (read scope; deploy where the "
        "service's mode is correct, which reapplies its manifest)",
        responses=problem_responses(401, 403, 422),
    )
    async def check_drift(caller: Caller, service: str | None = None) -> list[DriftReport]:
        orch = orchestrator()
        require(caller, Scope.READ, service)
        services = [service] if service else [s for s in orch.services if caller.sees(s)]
        for name in services:
            if orch.drift.mode(name) is DriftMode.CORRECT:
                require(caller, Scope.DEPLOY, name)
        try:
            return [await orch.drift.check(orch.target(name)) for name in services]
        except RejectedError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get(
        "/events",
        summary="Deploy events as they happen (server-sent events), of the token's services",
        responses=problem_responses(401, 403),
    )
    async def events(caller: Caller) -> StreamingResponse:
        require(caller, Scope.READ)
        return StreamingResponse(deploy_events(caller), media_type="text/event-stream")

    return router


def _allowed(
    caller: ApiToken, scope: Scope, deployment_id: str, stored: DeploymentRecord | None
) -> DeploymentRecord:
    """The deployment, when the token may act on it with ``scope``; 404 for one it may not read
    (so it learns nothing of other services), 403 without the scope."""
    if stored is None or not caller.sees(stored.service):
        require(caller, scope)
        raise HTTPException(404, f"no deployment {deployment_id} (that this token may read)")
    require(caller, scope, stored.service)
    return stored


def _signed(caller: ApiToken, body: DecisionRequest | None) -> str:
    """Who acted, as the history records it: the token's name and the note."""
    return caller.name + (f" ({body.note})" if body and body.note else "")


async def service_views(orch: Orchestrator, caller: ApiToken) -> list[ServiceView]:
    """Each service's release (live from Helm) with the deployer's last outcome, of the services
    ``caller`` may read."""
    return await orch.views.releases([t for t in orch.targets() if caller.sees(t.service)])


Subscribe = Callable[[Callable[[Any], Awaitable[None]]], Awaitable[Any]]


def sse_stream(subscribe: Subscribe) -> Callable[[ApiToken], AsyncIterator[bytes]]:
    """Server-sent events of the ``deploy.>`` messages of the services the caller may read,
    from a core NATS subscription."""

    async def stream(caller: ApiToken) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

        async def on_message(msg: Any) -> None:
            service = msg.subject.split(".")[1] if msg.subject.count(".") >= 2 else ""
            if caller.sees(service) and not queue.full():
                queue.put_nowait(msg.data)

        subscription = await subscribe(on_message)
        try:
            yield b": connected\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"data: " + data + b"\n\n"
        finally:
            await subscription.unsubscribe()

    return stream
