"""Renders started ahead: handed over once, the oldest stopped above the limit, a dead one never
handed over (real processes stand in for helm: each waits for its stdin, as helm does)."""

from __future__ import annotations

import subprocess
import time

from deployer.adapters.helm.warm import WarmRenders


def spawn(argv: tuple[str, ...]) -> subprocess.Popen[bytes]:
    """``cat``, waiting for its stdin like a helm given ``--values -`` (``argv`` only names it)."""
    return subprocess.Popen(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def ended(process: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_prepared_render_is_handed_over_once_and_does_its_work() -> None:
    warm = WarmRenders(2, spawn)
    warm.prepare(("template", "order"))
    process = warm.take(("template", "order"))
    assert process is not None
    assert warm.take(("template", "order")) is None, "handed over once"
    assert warm.take(("template", "payment")) is None, "never prepared"
    out, _ = process.communicate(b"values")
    assert out == b"values"


def test_above_the_limit_the_least_recently_prepared_is_stopped() -> None:
    warm = WarmRenders(2, spawn)
    warm.prepare(("order",))
    order = warm._ready[("order",)]
    warm.prepare(("payment",))
    warm.prepare(("order",))  # prepared again: now the most recent
    warm.prepare(("auth",))
    assert warm.take(("payment",)) is None
    assert warm.take(("order",)) is order, "the same process, kept"
    assert warm.take(("auth",)) is not None
    order.kill()
    order.communicate()


def test_a_render_that_died_while_waiting_is_not_handed_over() -> None:
    warm = WarmRenders(1, spawn)
    warm.prepare(("order",))
    dead = warm._ready[("order",)]
    dead.kill()
    assert ended(dead)
    assert warm.take(("order",)) is None


def test_close_stops_every_waiting_render_and_a_limit_of_0_starts_none() -> None:
    warm = WarmRenders(2, spawn)
    warm.prepare(("order",))
    warm.prepare(("payment",))
    waiting = list(warm._ready.values())
    warm.close()
    assert all(ended(process) for process in waiting)
    none = WarmRenders(0, spawn)
    none.prepare(("order",))
    assert none.take(("order",)) is None
