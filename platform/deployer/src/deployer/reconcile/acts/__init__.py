"""The acts: one module per action :func:`deployer.reconcile.decide.decide` can pick, each behind
the :class:`Act` protocol. An act changes the world through the ports and returns how the pass
ended (an :class:`deployer.reconcile.context.Ending`), or None when the loop must observe the
release again and decide anew. Acts report progress; the loop reports the outcome."""

from __future__ import annotations

from typing import Protocol, TypeVar

from deployer.reconcile.context import Crew, Ending, Pass

A_contra = TypeVar("A_contra", contravariant=True)


class Act(Protocol[A_contra]):
    """Carries out one kind of action for one pass."""

    async def __call__(self, crew: Crew, current: Pass, action: A_contra) -> Ending | None:
        """Act; the pass's ending, or None to observe and decide again."""
