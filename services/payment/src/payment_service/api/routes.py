"""HTTP API of the payment service (behind the gateway: /api/payments -> /payments)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from kit.app import RuntimeDep
from kit.identity import CurrentUser
from kit.problems import problem_responses
from payment_service.domain.errors import PaymentNotFoundError
from payment_service.domain.models import Payment, PaymentStatus
from payment_service.infra.tables import PaymentRow

router = APIRouter(prefix="/payments", tags=["payments"])

# Ids are the UUIDs POST /orders returns; anything else is refused before it reaches the
# database (PostgreSQL answers a NUL in a string with an error, not with no row).
OrderId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The order's id, as POST /orders returned it.",
    ),
]


@router.get(
    "/{order_id}",
    response_model=Payment,
    summary="The payment of one of the caller's orders",
    responses=problem_responses(401, 404, 422),
)
async def get_payment(order_id: OrderId, user: CurrentUser, runtime: RuntimeDep) -> Payment:
    async with runtime.database.transaction() as session:
        query = select(PaymentRow).where(PaymentRow.order_id == order_id)
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None or row.user_id != user:
        raise PaymentNotFoundError(
            f"no payment for order {order_id} (not yours, or not settled yet: retry shortly)"
        )
    return Payment(
        id=row.id,
        order_id=row.order_id,
        user_id=row.user_id,
        status=PaymentStatus(row.status),
        amount_cents=row.amount_cents,
        currency=row.currency,
        reason=row.reason,
        created_at=row.created_at,
    )
