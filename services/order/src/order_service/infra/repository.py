"""Orders in the database: idempotent creation with its outbox event, reads, payment results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.events import CloudEvent
from kit.events.outbox import Outbox
from order_service.domain.errors import IdempotencyConflictError, OrderNotFoundError
from order_service.domain.events import (
    ORDER_CREATED,
    ORDER_CREATED_SUBJECT,
    SOURCE,
    OrderCreated,
)
from order_service.domain.models import NewOrder, Order, OrderItem, OrderStatus
from order_service.infra.tables import Base, OrderRow

# Statements of the saga's hot path, built once; their values are passed at execution (cheaper
# than building a statement, or an ORM unit of work, per order).
_ORDERS = Base.metadata.tables["orders"]
_INSERT_ORDER = insert(_ORDERS)
_SETTLE = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"), _ORDERS.c.status == OrderStatus.PENDING.value)
    .values(
        status=bindparam("new_status"),
        failure_reason=bindparam("reason"),
        updated_at=bindparam("settled_at"),
    )
)


def to_order(row: OrderRow) -> Order:
    """The API view of a stored order."""
    return Order(
        id=row.id,
        user_id=row.user_id,
        status=OrderStatus(row.status),
        items=[OrderItem.model_validate(item) for item in row.items],
        amount_cents=row.amount_cents,
        currency=row.currency,
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _by_key(session: AsyncSession, user_id: str, key: str) -> OrderRow | None:
    query = select(OrderRow).where(OrderRow.user_id == user_id, OrderRow.idempotency_key == key)
    return (await session.execute(query)).scalar_one_or_none()


def _replay(existing: OrderRow, new: NewOrder) -> Order:
    if existing.request_fingerprint != new.fingerprint():
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new order"
        )
    return to_order(existing)


async def create_order(
    db: Database, outbox: Outbox, user_id: str, new: NewOrder, idempotency_key: str | None
) -> tuple[Order, bool]:
    """Store a pending order and its ``orders.created`` event in one transaction.

    Returns the order and whether it was created now (False: a replay of the same request).
    """
    if idempotency_key is not None:
        async with db.transaction() as session:
            existing = await _by_key(session, user_id, idempotency_key)
            if existing is not None:
                return _replay(existing, new), False
    now = datetime.now(UTC)
    values = {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "status": OrderStatus.PENDING.value,
        "items": [item.model_dump() for item in new.items],
        "amount_cents": new.amount_cents,
        "currency": new.currency,
        "payment_token": new.payment_token,
        "idempotency_key": idempotency_key,
        "request_fingerprint": new.fingerprint(),
        "failure_reason": None,
        "created_at": now,
        "updated_at": now,
    }
    row = OrderRow(**values)
    event = CloudEvent.new(
        ORDER_CREATED,
        source=SOURCE,
        subject=row.id,
        data=OrderCreated(
            order_id=row.id,
            user_id=user_id,
            amount_cents=new.amount_cents,
            currency=new.currency,
            payment_token=new.payment_token,
        ).model_dump(),
    )
    try:

        def insert_with_event(connection: Connection) -> None:
            connection.execute(_INSERT_ORDER, values)
            outbox.enqueue_in(connection, ORDER_CREATED_SUBJECT, event)

        await db.run_in_transaction(insert_with_event)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent request with the same key committed first: answer as a replay.
        async with db.transaction() as session:
            existing = await _by_key(session, user_id, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, new), False
    return to_order(row), True


async def get_order(db: Database, user_id: str, order_id: str) -> Order:
    """The caller's order; someone else's order is reported as not found."""
    async with db.transaction() as session:
        row = await session.get(OrderRow, order_id)
    if row is None or row.user_id != user_id:
        raise OrderNotFoundError(f"no order {order_id} for this user")
    return to_order(row)


async def list_orders(db: Database, user_id: str, limit: int) -> list[Order]:
    """The caller's newest orders."""
    query = (
        select(OrderRow)
        .where(OrderRow.user_id == user_id)
        .order_by(OrderRow.created_at.desc(), OrderRow.id)
        .limit(limit)
    )
    async with db.transaction() as session:
        rows = (await session.execute(query)).scalars().all()
    return [to_order(row) for row in rows]


def record_payment_result(
    connection: Connection, order_id: str, status: OrderStatus, reason: str | None
) -> bool:
    """Move a pending order to ``status``; False when the order is unknown.

    One conditional UPDATE: an order that is no longer pending keeps its first outcome. Runs
    inside a ``Database.run_in_transaction`` work function.
    """
    settled = connection.execute(
        _SETTLE,
        {
            "order_id": order_id,
            "new_status": status.value,
            "reason": reason,
            "settled_at": datetime.now(UTC),
        },
    )
    if settled.rowcount:
        return True
    return connection.scalar(select(OrderRow.id).where(OrderRow.id == order_id)) is not None
