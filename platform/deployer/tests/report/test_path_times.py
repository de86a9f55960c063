"""The path from a pipeline event to helm, timed step by step."""

from __future__ import annotations

from deployer.report.pathtimes import PathTimes


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_counts_from_the_one_before_and_helm_ends_the_path() -> None:
    clock = Clock()
    times = PathTimes(clock)
    times.begin("d1")
    clock.now += 0.002
    times.step("d1", "intake")
    clock.now += 0.010
    times.step("d1", "render")
    assert times.arrived("d1") == 100.0
    assert times.finish("d1", clock.now + 0.0005) == {"intake": 2.0, "render": 10.0, "helm": 0.5}
    assert times.arrived("d1") is None, "a path is reported once"


def test_a_step_run_again_adds_to_its_time_in_its_first_place() -> None:
    clock = Clock()
    times = PathTimes(clock)
    times.begin("d1")
    for _ in range(2):  # a retried pass
        clock.now += 0.004
        times.step("d1", "render")
        clock.now += 0.001
        times.step("d1", "dry-run")
    assert list(times.finish("d1", clock.now) or {}) == ["render", "dry-run", "helm"]


def test_a_deployment_not_timed_here_has_no_path() -> None:
    times = PathTimes(Clock())
    times.step("resumed", "render")
    assert times.finish("resumed", 101.0) is None
    times.begin("dropped")
    times.drop("dropped")
    assert times.finish("dropped", 101.0) is None
