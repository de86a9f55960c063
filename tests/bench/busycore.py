"""Another process that keeps one core busy while a benchmark measures: a laptop running the
platform is rarely idle, and the platform's figures must hold there too."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from devkit.localstack.process import terminate


@contextmanager
def one_core_busy() -> Iterator[None]:
    """A Python process spinning at the default priority until the block ends (stopped by its
    PID then)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        terminate(spinner, grace=2.0)
