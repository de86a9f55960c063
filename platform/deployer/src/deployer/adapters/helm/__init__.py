"""An async client for the pinned helm 4 binary: one helm process per call, no shell.

:class:`Helm` (:mod:`~deployer.adapters.helm.client`) reads, upgrades, rolls back and recovers
the releases of one namespace; :mod:`~deployer.adapters.helm.process` runs the binary (values on
stdin, deadlines, SIGTERM then SIGKILL, death with the parent);
:mod:`~deployer.adapters.helm.errors` classifies failures into retryable and final errors with a
reason and advice (its docstring holds the table); :mod:`~deployer.adapters.helm.models` holds
what helm answers.
"""

from deployer.adapters.helm.client import (
    DEADLINE_MARGIN_SECONDS,
    DESCRIPTION_LIMIT,
    READ_DEADLINE_SECONDS,
    SERVER_SIDE_APPLY,
    Helm,
)
from deployer.adapters.helm.errors import (
    STDERR_LIMIT,
    HelmError,
    HelmFinalError,
    HelmRetryableError,
    classify,
    trim,
)
from deployer.adapters.helm.models import (
    GOOD_STATUSES,
    PENDING_STATUSES,
    HelmResult,
    ReleaseRevision,
    ReleaseStatus,
)
from deployer.adapters.helm.process import TERMINATE_GRACE_SECONDS

__all__ = [
    "DEADLINE_MARGIN_SECONDS",
    "DESCRIPTION_LIMIT",
    "GOOD_STATUSES",
    "PENDING_STATUSES",
    "READ_DEADLINE_SECONDS",
    "SERVER_SIDE_APPLY",
    "STDERR_LIMIT",
    "TERMINATE_GRACE_SECONDS",
    "Helm",
    "HelmError",
    "HelmFinalError",
    "HelmResult",
    "HelmRetryableError",
    "ReleaseRevision",
    "ReleaseStatus",
    "classify",
    "trim",
]
