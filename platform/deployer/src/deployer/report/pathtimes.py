"""The path from a pipeline event to its helm process, step by step: how long each step took,
so that what stands between CI's event and helm is measured where it runs (the deployment's
record keeps it, see ``DeploymentRecord.to_helm_ms``).

The steps are named by the code that ends them (:meth:`PathTimes.step`); a step that runs again (a
retried pass) adds to its time. Only deployments that arrived as an event in this process are
timed: one resumed after a restart has no arrival to count from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Path:
    began: float
    last: float
    steps: dict[str, float] = field(default_factory=dict)


class PathTimes:
    """When each deployment arrived and how long each step on its way to helm took."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._paths: dict[str, _Path] = {}

    def begin(self, deployment_id: str) -> None:
        """``deployment_id``'s event arrived now."""
        now = self._clock()
        self._paths[deployment_id] = _Path(began=now, last=now)

    def step(self, deployment_id: str, name: str, at: float | None = None) -> None:
        """The step ``name`` of ``deployment_id`` ended now (or at the monotonic time ``at``)."""
        path = self._paths.get(deployment_id)
        if path is None:
            return
        now = self._clock() if at is None else at
        path.steps[name] = path.steps.get(name, 0.0) + (now - path.last)
        path.last = now

    def arrived(self, deployment_id: str) -> float | None:
        """When ``deployment_id``'s event arrived (monotonic), when it is being timed."""
        path = self._paths.get(deployment_id)
        return path.began if path is not None else None

    def finish(self, deployment_id: str, at: float) -> dict[str, float] | None:
        """Helm started for ``deployment_id`` at the monotonic time ``at``: the milliseconds of
        each step, in order, the last one (``helm``) ending then; None when it was not timed."""
        self.step(deployment_id, "helm", at)
        path = self._paths.pop(deployment_id, None)
        if path is None:
            return None
        steps = {name: round(seconds * 1000, 1) for name, seconds in path.steps.items()}
        log.debug("the path to helm", extra={"deployment_id": deployment_id, "steps_ms": steps})
        return steps

    def drop(self, deployment_id: str) -> None:
        """Stop timing ``deployment_id`` (it ended or waits without starting helm)."""
        self._paths.pop(deployment_id, None)
