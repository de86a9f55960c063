"""``/api/events``: deploy events as they happen, as server-sent events."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from deployer.web.auth import require
from deployer.web.deps import Caller, Service, WebApp
from deployer.web.tokens import ApiToken, Scope

router = APIRouter()
KEEP_ALIVE_SECONDS = 15


@router.get(
    "/events",
    summary="Deploy events as they happen (server-sent events), of the token's services",
)
async def events(caller: Caller, service: Service) -> StreamingResponse:
    require(caller, Scope.READ)
    return StreamingResponse(stream(service, caller), media_type="text/event-stream")


async def stream(service: WebApp, caller: ApiToken) -> AsyncIterator[bytes]:
    """Server-sent events of the ``deploy.>`` messages of the services ``caller`` may read,
    from a core NATS subscription."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

    async def on_message(msg: Any) -> None:
        name = msg.subject.split(".")[1] if msg.subject.count(".") >= 2 else ""
        if caller.sees(name) and not queue.full():
            queue.put_nowait(msg.data)

    subscription = await service.subscribe_deploy_events(on_message)
    try:
        yield b": connected\n\n"
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            yield b"data: " + data + b"\n\n"
    finally:
        await subscription.unsubscribe()
