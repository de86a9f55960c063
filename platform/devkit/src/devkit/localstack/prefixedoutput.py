"""A child's output on the terminal: its JSON log records as readable lines, prefixed by its name.

A pump never stops reading its child's output before the child closes it: a line it cannot turn
into text is written as it came, and once the terminal is gone (closed, or a broken pipe) lines
are read and dropped. Otherwise the pipe would fill up and the child block on its next log line,
in the middle of a shutdown as well.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from typing import IO, TextIO

LEVEL_COLOURS = {"WARNING": "33", "ERROR": "31", "CRITICAL": "31"}
QUIET_KEYS = {"time", "level", "logger", "message", "service", "request_id", "trace_id", "span_id"}


def readable(line: str) -> str:
    """A JSON log record as ``LEVL message key=value trace=...``; any other line as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    level = str(record.get("level", ""))
    extras = " ".join(
        f"{key}={value}"
        for key, value in record.items()
        if key not in QUIET_KEYS and value is not None
    )
    colour = LEVEL_COLOURS.get(level)
    message = f"\033[{colour}m{record['message']}\033[0m" if colour else str(record["message"])
    ids = f" trace={str(record['trace_id'])[:8]}" if record.get("trace_id") else ""
    return f"{level[:4]:<4} {message}{(' ' + extras) if extras else ''}{ids}"


class OutputPump:
    """A daemon thread copying one child's output to ``sink`` line by line until end of file."""

    def __init__(self, prefix: str, stream: IO[bytes], sink: TextIO | None = None) -> None:
        self.prefix = prefix
        self._stream = stream
        self._sink = sink if sink is not None else sys.stdout
        self._thread = threading.Thread(target=self._run, name=f"output {prefix}", daemon=True)

    def start(self) -> None:
        """Start copying."""
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the end of the output; whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        writable = True
        for raw in iter(self._stream.readline, b""):
            if not writable:
                continue
            text = raw.decode(errors="replace").rstrip()
            with contextlib.suppress(Exception):  # an odd record is shown as it came
                text = readable(text)
            try:
                self._sink.write(self.prefix + text + "\n")
                self._sink.flush()
            except (OSError, ValueError):
                writable = False  # the terminal is gone (EIO, EPIPE) or stdout closed
        self._stream.close()
