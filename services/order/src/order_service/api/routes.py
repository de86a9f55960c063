"""HTTP API of the order service (behind the gateway: /api/orders -> /orders)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from kit.app import RuntimeDep
from kit.identity import CurrentUser
from kit.problems import problem_responses
from order_service.domain.models import NewOrder, Order, OrderList
from order_service.infra import repository

router = APIRouter(prefix="/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Replaying a request with the same key returns the same order.",
    ),
]


# Ids are the UUIDs POST /orders returns; anything else is refused before it reaches the
# database (PostgreSQL answers a NUL in a string with an error, not with no row).
OrderId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The order's id, as POST /orders returned it.",
    ),
]

# Relative to the request's own URL, so it names the order both here (/orders -> /orders/<id>)
# and through the gateway (/api/orders -> /api/orders/<id>), which passes it on unchanged.
LOCATION = {
    "Location": {
        "description": "The order's URL, relative to the request's: orders/<id> (RFC 3986 5.2).",
        "required": True,
        "schema": {"type": "string"},
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Order,
    summary="Create an order (pending until payment reports)",
    responses={
        201: {"description": "The order, created", "headers": LOCATION},
        200: {
            "model": Order,
            "description": "A replay of an earlier request with this key",
            "headers": {
                **LOCATION,
                "Idempotent-Replayed": {
                    "description": "Always true: this order was created by an earlier request.",
                    "required": True,
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
        },
        **problem_responses(400, 401, 409, 422),
    },
)
async def create_order(
    new: NewOrder,
    user: CurrentUser,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Order:
    order, created = await repository.create_order(
        runtime.database, runtime.events_outbox, user, new, idempotency_key
    )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"orders/{order.id}"
    return order


@router.get(
    "",
    response_model=OrderList,
    summary="The caller's orders, newest first",
    responses=problem_responses(401, 422),
)
async def list_orders(
    user: CurrentUser,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderList:
    return OrderList(orders=await repository.list_orders(runtime.database, user, limit))


@router.get(
    "/{order_id}",
    response_model=Order,
    summary="One of the caller's orders",
    responses=problem_responses(401, 404, 422),
)
async def get_order(order_id: OrderId, user: CurrentUser, runtime: RuntimeDep) -> Order:
    return await repository.get_order(runtime.database, user, order_id)
