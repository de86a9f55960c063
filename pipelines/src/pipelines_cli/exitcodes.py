"""The exit codes of the CLI, documented in pipelines/README.md."""

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of ``pipelines wait`` (and of the CLI in general)."""

    SUCCEEDED = 0
    ERROR = 1
    USAGE = 2
    FAILED = 3
    REJECTED = 4
    SUPERSEDED = 5
    TIMEOUT = 6
