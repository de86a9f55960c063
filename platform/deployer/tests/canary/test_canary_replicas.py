"""The canary's split: weights as pods, and moves that stay within maxSurge and maxUnavailable."""

from __future__ import annotations

import itertools

import pytest

from deployer.canary.replicas import Bounds, Split, canary_pods, moves, resolve_bound


@pytest.mark.parametrize(
    ("replicas", "weight", "pods"),
    [
        (10, 10, 1),
        (10, 25, 3),  # 2.5 rounds up
        (10, 99, 9),  # the stable keeps a pod below 100
        (10, 100, 10),
        (2, 10, 1),
        (2, 50, 1),
        (2, 90, 1),
        (1, 50, 1),
        (4, 0, 0),
    ],
)
def test_a_weight_becomes_pods(replicas: int, weight: int, pods: int) -> None:
    assert canary_pods(replicas, weight) == pods


def test_a_weight_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        canary_pods(4, 101)


def test_bounds_resolve_like_the_deployment_controller() -> None:
    assert resolve_bound("25%", 10, round_up=True) == 3
    assert resolve_bound("25%", 10, round_up=False) == 2
    assert resolve_bound(2, 10, round_up=True) == 2
    assert Bounds.of(2, "25%", 0) == Bounds(2, 1, 0)
    # Both 0 cannot roll: the controller takes an unavailability of 1 (its fenceposts).
    assert Bounds.of(10, 0, "5%") == Bounds(10, 0, 1)
    with pytest.raises(ValueError, match="percentage"):
        resolve_bound("a lot", 3, round_up=True)


def within(path: list[Split], start: Split, bounds: Bounds) -> None:
    for before, after in itertools.pairwise([start, *path]):
        assert bounds.fewest <= after.total() <= bounds.most, (before, after, bounds)
        # One side at a time: pods are only removed once those added are ready.
        assert after.stable == before.stable or after.canary == before.canary


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable"), [(2, 1, 0), (10, 3, 0), (10, 1, 1), (4, 0, 1), (5, 2, 2)]
)
def test_moves_to_any_weight_and_back_stay_within_bounds(
    replicas: int, surge: int, unavailable: int
) -> None:
    bounds = Bounds(replicas, surge, unavailable)
    full = Split(replicas, 0)
    for weight in (10, 25, 50, 75, 100):
        pods = canary_pods(replicas, weight)
        target = Split(replicas - pods, pods)
        forth = moves(full, target, bounds)
        assert forth[-1] == target
        within(forth, full, bounds)
        back = moves(target, full, bounds)
        assert back[-1] == full
        within(back, target, bounds)


def test_two_replicas_without_unavailability_surge_first() -> None:
    assert moves(Split(2, 0), Split(1, 1), Bounds(2, 1, 0)) == [Split(2, 1), Split(1, 1)]
    assert moves(Split(1, 1), Split(2, 0), Bounds(2, 1, 0)) == [Split(2, 1), Split(2, 0)]


def test_no_move_when_already_there() -> None:
    assert moves(Split(3, 1), Split(3, 1), Bounds(4, 1, 0)) == []
