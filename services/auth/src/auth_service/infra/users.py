"""Users in the database; a registration and its event are stored in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from auth_service.domain.errors import EmailTakenError
from auth_service.infra.events import USER_REGISTERED_SUBJECT, user_registered
from kit.db import Database
from kit.events.outbox import Outbox


class Base(DeclarativeBase):
    """The auth service's tables (created by its migrations)."""


class UserRow(Base):
    """One account; the email is unique case-insensitively (an index on lower(email))."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


async def register(db: Database, outbox: Outbox, email: str, password_hash: str) -> UserRow:
    """Store a new user and its ``auth.user.registered`` event in one transaction.

    Raises EmailTakenError when the email is taken in any letter case, also when a concurrent
    registration of the same email commits first.
    """
    user = UserRow(
        id=str(uuid.uuid4()),
        email=email,
        password_hash=password_hash,
        created_at=datetime.now(UTC),
    )
    try:
        async with db.transaction() as session:
            session.add(user)
            await session.flush()
            await outbox.enqueue(
                session,
                USER_REGISTERED_SUBJECT,
                user_registered(user.id, user.email, user.created_at),
            )
    except IntegrityError:
        raise EmailTakenError(email) from None
    return user


async def find_by_email(db: Database, email: str) -> UserRow | None:
    """The user with this email, compared case-insensitively."""
    query = select(UserRow).where(func.lower(UserRow.email) == email.lower())
    async with db.transaction() as session:
        return (await session.execute(query)).scalar_one_or_none()


async def find_by_id(db: Database, user_id: str) -> UserRow | None:
    """The user with this id, if any."""
    async with db.transaction() as session:
        return await session.get(UserRow, user_id)


async def replace_password_hash(db: Database, user_id: str, password_hash: str) -> None:
    """Store a new hash of the same password (after the hashing parameters were raised)."""
    async with db.transaction() as session:
        await session.execute(
            update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
        )
