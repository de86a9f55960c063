"""Act: apply drifted objects again, server-side as helm applies them (conflicts forced)."""

from __future__ import annotations

import asyncio
from typing import Any

from deployer.kubeobjects import KubeObjects


async def correct_drift(objects: KubeObjects, drifted: list[dict[str, Any]]) -> None:
    """Reapply each object (with the live value kept at ignored pointers, see
    :func:`deployer.drift.kept_as_live`); raises KubeApiError when the API server refuses."""
    await asyncio.gather(*(objects.apply(obj, dry_run=False) for obj in drifted))
