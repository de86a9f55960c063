"""The deployer's HTTP API: services, history, plan, manual deploy and rollback, live events."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from deployer.contract import ArtifactPublished, DeployPhase
from deployer.orchestrator import Orchestrator, RejectedError
from deployer.records import DeploymentRecord, Origin, ServiceState
from kit.problems import problem_responses

_bearer = HTTPBearer(auto_error=False)


class ServiceView(BaseModel):
    """A service's release as Helm reports it, with the deployer's last outcome."""

    service: str
    release_status: str | None
    revision: int | None
    image: str | None
    last: ServiceState | None
    running: str | None = Field(description="Id of the deployment running now, if any")


class RollbackRequest(BaseModel):
    """Roll a service back to ``revision`` (default: the previous one)."""

    revision: int | None = Field(default=None, ge=1)


def api_router(
    orchestrator: Callable[[], Orchestrator],
    token: Callable[[], str],
    deploy_events: Callable[[], AsyncIterator[bytes]],
) -> APIRouter:
    """The API bound to the running orchestrator; writes need ``Authorization: Bearer``."""
    router = APIRouter(prefix="/api", tags=["deployer"])

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None:
            raise HTTPException(
                401,
                "This call changes deployments: send Authorization: Bearer <DEPLOYER_API_TOKEN>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), token().encode()):
            raise HTTPException(403, "The bearer token is not the deployer's API token.")

    writer = [Depends(require_token)]

    @router.get("/services", response_model=list[ServiceView], summary="Every service's release")
    async def services() -> list[ServiceView]:
        return await service_views(orchestrator())

    @router.get(
        "/deployments",
        response_model=list[DeploymentRecord],
        summary="Deployment history, newest first",
        responses=problem_responses(422),
    )
    async def history(
        service: str | None = None,
        phase: DeployPhase | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[DeploymentRecord]:
        records = await orchestrator().store.all()
        selected = [
            r
            for r in reversed(records)
            if (service is None or r.service == service) and (phase is None or r.phase == phase)
        ]
        return selected[:limit]

    @router.get(
        "/deployments/{deployment_id}",
        response_model=DeploymentRecord,
        responses=problem_responses(404),
    )
    async def deployment(deployment_id: str) -> DeploymentRecord:
        record = await orchestrator().store.get(deployment_id)
        if record is None:
            raise HTTPException(404, f"no deployment {deployment_id}")
        return record

    @router.post(
        "/plan",
        summary="Plan a deployment without changing anything",
        dependencies=writer,
        responses=problem_responses(401, 403, 422),
    )
    async def plan(request: ArtifactPublished) -> dict[str, Any]:
        orch = orchestrator()
        checked = await _checked(orch, request)
        record = DeploymentRecord.model_validate(
            {"id": "plan", "service": checked.service, "request": checked,
             "phase": DeployPhase.QUEUED, "received_at": "1970-01-01T00:00:00Z"}
        )  # fmt: skip
        result = await orch.plan(record)
        return {"summary": result.summary(), "plan": result.model_dump(mode="json")}

    @router.post(
        "/deployments",
        status_code=202,
        response_model=DeploymentRecord,
        summary="Deploy an image now (the same path as a pipeline event)",
        dependencies=writer,
        responses=problem_responses(401, 403, 422),
    )
    async def deploy(request: ArtifactPublished) -> DeploymentRecord:
        orch = orchestrator()
        checked = await _checked(orch, request)
        return await orch.enqueue(f"api-{uuid.uuid4()}", checked, Origin.API, None)

    @router.post(
        "/services/{service}/rollback",
        status_code=202,
        response_model=DeploymentRecord,
        summary="Roll a service back to an earlier Helm revision",
        dependencies=writer,
        responses=problem_responses(401, 403, 422),
    )
    async def rollback(service: str, body: RollbackRequest) -> DeploymentRecord:
        try:
            return await orchestrator().enqueue_rollback(service, body.revision)
        except RejectedError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/events", summary="Deploy events as they happen (server-sent events)")
    async def events() -> StreamingResponse:
        return StreamingResponse(deploy_events(), media_type="text/event-stream")

    return router


async def service_views(orch: Orchestrator) -> list[ServiceView]:
    """Each service's release (live from Helm) with the deployer's last outcome."""

    async def view(service: str) -> ServiceView:
        status = await orch.helm.status(service)
        image = (
            f"{status.image_repository}:{status.image_tag}"
            if status and status.image_repository and status.image_tag
            else None
        )
        running = orch.running(service)
        return ServiceView(
            service=service,
            release_status=status.status if status else None,
            revision=status.revision if status else None,
            image=image,
            last=await orch.store.service(service),
            running=running.id if running else None,
        )

    return list(await asyncio.gather(*(view(s) for s in orch.services)))


async def _checked(orch: Orchestrator, request: ArtifactPublished) -> ArtifactPublished:
    try:
        return await orch.check_request(request)
    except RejectedError as exc:
        raise HTTPException(422, str(exc)) from None


Subscribe = Callable[[Callable[[Any], Awaitable[None]]], Awaitable[Any]]


def sse_stream(subscribe: Subscribe) -> Callable[[], AsyncIterator[bytes]]:
    """Server-sent events of every ``deploy.>`` message, from a core NATS subscription."""

    async def stream() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

        async def on_message(msg: Any) -> None:
            if not queue.full():
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
