"""docs/benchmarks.md: each benchmark owns one marked section and rewrites only that."""

from __future__ import annotations

import platform as host
from datetime import UTC, datetime
from pathlib import Path

REPORT = Path("docs/benchmarks.md")
HEADER = """# Benchmarks

Written by `make bench` (not part of `make test`). The machine is shared and noisy, so every
target is a ratio or a percentile measured within one run; absolute figures are for orientation.
"""


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of the report with ``body``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    cpu = host.processor() or host.machine()
    stamp = f"_{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {host.node()}, {cpu}_"
    section = f"{start}\n{body.strip()}\n\n{stamp}\n{end}"
    text = REPORT.read_text() if REPORT.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
