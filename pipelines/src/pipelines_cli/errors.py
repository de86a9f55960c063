"""The errors a CI user can cause; each message says what was wrong and what to do."""

from __future__ import annotations


class PipelineError(Exception):
    """A problem the CLI reports in one line and exits with code 1."""


class GitError(PipelineError):
    """A git command failed or the path is not a git work tree."""


class UnknownServiceError(PipelineError):
    """The service named on the command line is not a deployable of this repository."""


class TagError(PipelineError):
    """No valid immutable image tag can be made (bad version, dirty tree)."""


class DirtyTreeError(TagError):
    """The work tree has uncommitted changes, so an image would not match its commit."""
