"""How many pods each Deployment of a canary runs, and the moves between two splits.

The traffic split is the replica ratio behind the one Service. A weight becomes pods as
``ceil(replicas * weight / 100)``, at least 1, and at most ``replicas - 1`` while the weight is
below 100 (so the stable keeps serving): with 10 replicas 10% is 1 pod; with 2 replicas every
weight below 100 is 1 pod, half of the traffic.

Each move is one ``helm upgrade --wait``: pods are added first (bounded by maxSurge) and removed
only after the added ones are ready (bounded by maxUnavailable), so the pods of both
Deployments together never exceed ``replicas + maxSurge`` nor fall below
``replicas - maxUnavailable``. maxSurge and maxUnavailable resolve like the Deployment
controller's: a percentage of replicas, surge rounded up, unavailable rounded down.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"^(\d{1,3})%$")


@dataclass(frozen=True, order=True)
class Split:
    """Pods of the stable and of the canary Deployment."""

    stable: int
    """Pods of ``<service>``, the Deployment that runs the image serving before the canary."""
    canary: int
    """Pods of ``<service>-canary``, the Deployment that runs the new image."""

    def total(self) -> int:
        """Pods of both Deployments."""
        return self.stable + self.canary

    def share(self) -> float:
        """The canary's share of the pods (and so of the requests), 0..1."""
        return self.canary / self.total() if self.total() else 0.0


def canary_pods(replicas: int, weight: int) -> int:
    """The canary pods for ``weight`` percent of ``replicas`` (see the module's rounding rule)."""
    if not 0 <= weight <= 100:
        raise ValueError(f"a canary weight is 0..100, not {weight}")
    if weight == 0:
        return 0
    if weight == 100:
        return replicas
    pods = math.ceil(replicas * weight / 100)
    return max(1, min(pods, replicas - 1)) if replicas > 1 else 1


def resolve_bound(value: int | str, replicas: int, *, round_up: bool) -> int:
    """A maxSurge (``round_up``) or maxUnavailable value as pods: ``2`` or ``"25%"``."""
    if isinstance(value, int):
        return value
    match = _PERCENT.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is neither a number of pods nor a percentage like '25%'")
    exact = replicas * int(match.group(1)) / 100
    return math.ceil(exact) if round_up else math.floor(exact)


@dataclass(frozen=True)
class Bounds:
    """The pods a canary may run at any time: ``replicas - unavailable .. replicas + surge``."""

    replicas: int
    surge: int
    unavailable: int

    @classmethod
    def of(cls, replicas: int, max_surge: int | str, max_unavailable: int | str) -> Bounds:
        """Bounds from a chart's ``rollingUpdate`` values; like the Deployment controller, a
        surge and an unavailability that both resolve to 0 become an unavailability of 1."""
        surge = resolve_bound(max_surge, replicas, round_up=True)
        unavailable = resolve_bound(max_unavailable, replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return cls(replicas, surge, unavailable)

    @property
    def most(self) -> int:
        """The most pods both Deployments may run together."""
        return self.replicas + self.surge

    @property
    def fewest(self) -> int:
        """The fewest pods both Deployments may run together."""
        return max(self.replicas - self.unavailable, 0)


def moves(start: Split, target: Split, bounds: Bounds) -> list[Split]:
    """The splits to pass through from ``start`` to ``target`` (both at ``bounds.replicas``
    pods, or ``start`` below it after a scale-down), each within ``bounds``; ``target`` last.

    The side that grows grows first, by what the surge allows; the side that shrinks shrinks
    next, by what was added plus what the unavailability allows. Empty when already there.
    """
    current, path = start, []
    while current != target:
        before = current
        room = bounds.most - current.total()
        if target.canary > current.canary:
            current = Split(
                current.stable, current.canary + min(target.canary - current.canary, room)
            )
        elif target.stable > current.stable:
            current = Split(
                current.stable + min(target.stable - current.stable, room), current.canary
            )
        if current != before:
            path.append(current)
        grown = current
        room = current.total() - bounds.fewest
        if current.stable > target.stable:
            current = Split(
                current.stable - min(current.stable - target.stable, room), current.canary
            )
        elif current.canary > target.canary:
            current = Split(
                current.stable, current.canary - min(current.canary - target.canary, room)
            )
        if current != grown:
            path.append(current)
        if current == before:
            raise ValueError(
                f"cannot move from {start} to {target} within {bounds}: raise maxSurge or "
                "maxUnavailable"
            )
    return path
