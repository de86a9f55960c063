"""The failures a step of the reconcile loop can meet, as the loop decides on them: a transient
one is tried again, anything else is final (see :func:`deployer.reconcile.decide.retry_or_final`).

Adapters raise subclasses of :class:`StepError` (helm's errors, the Kubernetes API's), so the
decisions never import an adapter.
"""

from __future__ import annotations

from typing import ClassVar


class StepError(Exception):
    """A step failed in a system the deployer drives; ``retryable``: asking again may succeed."""

    system: ClassVar[str] = "a dependency"
    stderr: str | None = None  # what the failed command printed, when it was a command

    @property
    def retryable(self) -> bool:
        """True when the same step may succeed later."""
        return False
