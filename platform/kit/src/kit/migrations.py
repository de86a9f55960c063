"""Alembic migrations applied at start-up, on SQLite and PostgreSQL alike.

A service keeps its migrations in a folder with an ``env.py`` of two lines::

    from kit.migrations import run_env
    run_env()

and names that folder in ``ServiceSpec.migrations``; the chassis upgrades to head before the
service takes traffic. On PostgreSQL an advisory lock makes replicas that start together migrate
one after another.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, text

from kit.db import Database


def _config(script_location: Path, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, script_location: Path) -> None:
    if connection.dialect.name == "postgresql":
        lock_id = zlib.crc32(str(script_location.name).encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    command.upgrade(_config(script_location, connection), "head")


async def upgrade_to_head(db: Database, script_location: Path) -> None:
    """Apply every pending migration in ``script_location`` to ``db``."""
    if not (script_location / "env.py").exists():
        raise FileNotFoundError(f"no Alembic env.py in {script_location}")
    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade, script_location)


def run_env() -> None:
    """The body of every service's migrations/env.py: migrate on the connection kit hands over."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through the service (they apply at start-up), not the alembic CLI"
        )
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
