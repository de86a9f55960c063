"""Fixtures of the cross-service integration tests."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.integration.saga_stack import SagaStack


@pytest.fixture
async def saga(tmp_path: Path, new_database: Callable[[str], str]) -> AsyncIterator[SagaStack]:
    stack = SagaStack(tmp_path, new_database)
    await asyncio.to_thread(stack.start)
    yield stack
    await stack.stop()
