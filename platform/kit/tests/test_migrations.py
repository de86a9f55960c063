from pathlib import Path

import pytest
from sqlalchemy import text

from kit.db import Database
from kit.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).with_name("sample_migrations")


async def test_migrations_apply_once_and_are_idempotent(database_url: str) -> None:
    db = Database(database_url)
    await upgrade_to_head(db, MIGRATIONS)
    await upgrade_to_head(db, MIGRATIONS)
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO notes (body) VALUES ('x')"))
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == "0001"
    await db.close()


async def test_a_missing_migrations_folder_is_a_clear_error(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    with pytest.raises(FileNotFoundError, match=r"no Alembic env\.py"):
        await upgrade_to_head(db, tmp_path / "nowhere")
    await db.close()
