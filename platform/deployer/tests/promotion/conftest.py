"""The fixture of the in-memory promotion tests: a deployer over dev, staging and prod."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.deployer.promotion_world import Flow, flow


@pytest.fixture
async def three() -> AsyncIterator[Flow]:
    """A deployer of ``order`` in dev, staging and prod, stopped after the test."""
    made = flow()
    yield made
    await made.orchestrator.stop(1)
