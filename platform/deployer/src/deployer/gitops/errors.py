"""What can go wrong between a deployment and Flux, as the reconcile loop decides on it."""

from __future__ import annotations

from deployer.reconcile.errors import StepError


class GitError(StepError):
    """A git command against the environment's repository failed; ``stderr`` is git's."""

    system = "git"

    def __init__(self, message: str, *, stderr: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.stderr = stderr
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """True when the repository could not be reached (it may come back)."""
        return self._retryable


class GitConflictError(GitError):
    """Someone else's commit changed the files this deployment changes: rebasing conflicts."""

    def __init__(self, url: str, paths: list[str], stderr: str) -> None:
        super().__init__(
            f"another commit on {url} changed the files this deployment writes "
            f"({', '.join(paths) or 'unknown paths'}): the deployer never overwrites someone "
            "else's change. What to do: merge or revert that commit in git, then deploy again",
            stderr=stderr,
        )
        self.paths = paths


class FluxError(StepError):
    """Flux reported that it could not apply the desired state, or said nothing in time."""

    system = "Flux"

    def __init__(self, message: str, *, flux_message: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.stderr = flux_message or None
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """True when waiting longer may help (a release helm-controller still holds)."""
        return self._retryable
