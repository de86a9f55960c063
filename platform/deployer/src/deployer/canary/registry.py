"""The canaries running now, by deployment, and the commands a person sends them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from deploy_contract.events import CanaryState
from deployer.canary.control import Command
from deployer.canary.run import CanaryRun
from deployer.records import DeploymentRecord

# A canary in these states no longer takes commands: it is restoring or has restored a release.
ENDING_STATES = frozenset(
    {CanaryState.PROMOTING, CanaryState.PROMOTED, CanaryState.ABORTING, CanaryState.ABORTED}
)


class NoCanaryError(LookupError):
    """A canary command for a deployment that runs no canary now; the message says why."""


class Canaries:
    """Running canaries; ``stored`` finds a deployment's record to say why one is not running."""

    def __init__(self, stored: Callable[[str], Awaitable[DeploymentRecord | None]]) -> None:
        self._stored = stored
        self._running: dict[str, CanaryRun] = {}

    def started(self, deployment_id: str, run: CanaryRun) -> None:
        """``run`` is the canary of ``deployment_id`` until :meth:`ended`."""
        self._running[deployment_id] = run

    def ended(self, deployment_id: str) -> None:
        """The canary of ``deployment_id`` is over."""
        self._running.pop(deployment_id, None)

    async def command(self, deployment_id: str, command: Command, by: str) -> None:
        """Tell a running canary to promote, abort, pause or resume; refused (NoCanaryError,
        saying why) when it cannot act on it now."""
        run = self._running.get(deployment_id)
        if run is not None:
            state = run.status.state
            if state in ENDING_STATES:
                raise NoCanaryError(
                    f"the canary of {deployment_id} is {state.value} already: it cannot "
                    f"{command.value} any more (its outcome follows)"
                )
            if command is Command.RESUME and state is not CanaryState.PAUSED:
                raise NoCanaryError(
                    f"the canary of {deployment_id} is {state.value}, not paused: there is "
                    "nothing to resume"
                )
            run.control.send(command, by)
            return
        stored = await self._stored(deployment_id)
        if stored is None:
            raise NoCanaryError(f"no deployment {deployment_id}")
        where = f"it is {stored.phase.value}"
        if stored.canary is None:
            where += " and ran no canary (its service's strategy is rolling)"
        raise NoCanaryError(
            f"deployment {deployment_id} runs no canary now ({where}): there is nothing to "
            f"{command.value}"
        )
