"""The one fail-fast watcher: while helm waits for a rollout, the new pods are watched; once they
cannot run (crash-looping, OOM-killed, unpullable), helm is stopped, which rolls back, instead of
waiting for its timeout. The rolling and the canary paths both use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from deploy_contract.events import DeployPhase, PodProblem, RolloutProgress
from deployer.reconcile.podproblems import cannot_run, describe
from deployer.reconcile.ports import OnProgress, Rollouts
from deployer.reconcile.state import Outcome, with_pod_problems

log = logging.getLogger(__name__)


@dataclass
class PodWatch:
    """Watches the pods of ``track`` of a release during one upgrade (``async with running()``,
    from ``start()``).

    ``restarts``: the restarts after which pods count as unable to run (0: never give up early);
    ``on_progress`` gets each change of the rollout. Without ``rollouts`` it watches nothing.
    """

    rollouts: Rollouts | None
    release: str
    restarts: int
    pods: str = "the new pods"
    track: str = "stable"
    on_progress: OnProgress | None = None
    deployment_id: str = ""
    give_up: asyncio.Event = field(default_factory=asyncio.Event)
    problems: list[PodProblem] = field(default_factory=list)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PodWatch]:
        """Watch from :meth:`start` (helm started) until the body ends (helm waited for the
        rollout)."""
        try:
            yield self
        finally:
            task, self._task = self._task, None
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def start(self) -> None:
        """Start watching (once; inside :meth:`running`). Called when helm has started rather
        than before: the watch's reads of the API would otherwise share the event loop with the
        last steps before helm, and no pod of the rollout exists before helm anyway."""
        if self._task is not None:
            return
        if self.rollouts is not None and (self.on_progress is not None or self.restarts):
            self._task = asyncio.create_task(
                self.rollouts.watch(self.release, self._seen, track=self.track)
            )

    async def _seen(self, progress: RolloutProgress) -> None:
        if progress.problems:  # kept: helm's rollback deletes the pods that had them
            self.problems[:] = progress.problems
            fatal = cannot_run(progress.problems, self.restarts) if self.restarts else []
            if fatal and not self.give_up.is_set():
                log.warning(
                    f"{self.pods} cannot run; stopping helm, which rolls back",
                    extra={"deployment_id": self.deployment_id, "problems": describe(fatal)},
                )
                self.give_up.set()
        if self.on_progress is not None:
            await self.on_progress(progress)

    def judged(self, outcome: Outcome) -> Outcome:
        """``outcome``, saying why helm stopped early and what the pods did when it failed."""
        if outcome.phase is DeployPhase.SUCCEEDED:
            return outcome
        if self.give_up.is_set():
            outcome = replace(
                outcome, reason=f"stopped waiting: {self.pods} cannot run; {outcome.reason}"
            )
        return with_pod_problems(outcome, self.problems) if self.problems else outcome
