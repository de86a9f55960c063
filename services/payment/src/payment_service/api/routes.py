"""HTTP API of the payment service (behind the gateway: /api/payments -> /payments)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from kit.app import RuntimeDep
from kit.identity import CurrentUser
from kit.problems import problem_responses
from payment_service.domain.errors import PaymentNotFoundError
from payment_service.domain.models import Payment, PaymentStatus
from payment_service.infra.tables import PaymentRow

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get(
    "/{order_id}",
    response_model=Payment,
    summary="The payment of one of the caller's orders",
    responses=problem_responses(401, 404),
)
async def get_payment(order_id: str, user: CurrentUser, runtime: RuntimeDep) -> Payment:
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
