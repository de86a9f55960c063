"""``helm template`` started ahead: a helm process spends most of a render starting up (the Go
runtime and the initialisation of every Kubernetes client package it links: 30-90 ms, more than
the render itself), and a render is on the path from a pipeline event to its upgrade, where the
plan is made. So after an upgrade of a release, the next render of it is started at once, up to
the point where helm reads its values (``--values -``, stdin), and waits there; the next
deployment of the release hands it its values. helm loads the chart and renders only then, so the
output is exactly that of a render started at that moment.

At most ``limit`` of them wait (the releases upgraded last): each holds about 12 MB until used.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger(__name__)

Spawn = Callable[[tuple[str, ...]], subprocess.Popen[bytes]]


class WarmRenders:
    """helm processes started ahead of their renders, by their exact command line."""

    def __init__(self, limit: int, spawn: Spawn) -> None:
        self._limit = limit
        self._spawn = spawn
        self._ready: OrderedDict[tuple[str, ...], subprocess.Popen[bytes]] = OrderedDict()

    def take(self, argv: tuple[str, ...]) -> subprocess.Popen[bytes] | None:
        """The process started ahead for ``argv``, still waiting for its values; else None."""
        process = self._ready.pop(argv, None)
        if process is None:
            return None
        if process.poll() is not None:  # it ended on its own (killed?): start a new one
            _discard(process)
            return None
        return process

    def prepare(self, argv: tuple[str, ...]) -> None:
        """Start ``argv`` ahead, unless it is already; the least recently prepared one above the
        limit is stopped."""
        if self._limit <= 0:
            return
        if argv in self._ready and self._ready[argv].poll() is None:
            self._ready.move_to_end(argv)
            return
        try:
            self._ready[argv] = self._spawn(argv)
        except Exception as exc:  # best effort: the render will start helm itself
            log.warning("could not start a render ahead", extra={"error": repr(exc)})
            return
        while len(self._ready) > self._limit:
            _, oldest = self._ready.popitem(last=False)
            _discard(oldest)

    def close(self) -> None:
        """Stop every process waiting."""
        while self._ready:
            _, process = self._ready.popitem()
            _discard(process)


def _discard(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` (it only waits for its values) and reap it in the background."""
    if process.poll() is None:
        process.kill()
    threading.Thread(target=process.communicate, name="helm-discard", daemon=True).start()
