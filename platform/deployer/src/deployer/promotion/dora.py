"""The four DORA metrics per release (service and environment), from the deployment ledger.

Pure: the records and the window ``[since, until)`` are passed in; nothing is read or timed.

Definitions:

- A *deployment* is a record that ended ``succeeded``, ``failed`` or ``rolled_back``: it ran
  helm, changing or trying to change the release. It is placed in time by its ``finished_at``;
  one counts in the window when ``since <= finished_at < until``.
- A *rollback* is a deployment with ``rollback_to_revision`` (a rollback by revision through the
  API) or whose request has ``rollback=true`` (an older image). Rollbacks are remediation; every
  other deployment is a *change*.
- A change *failed* when it ended ``failed`` or ``rolled_back``, or when it succeeded but the
  next deployment of its release (by ``received_at``) is a rollback: it needed one. It failed at
  its ``finished_at``, or, when it needed a rollback, at the rollback's ``received_at`` (when
  someone noticed).
- A failure is *restored* by the next deployment of its release (by ``received_at``) that
  succeeded, rollback or fix-forward, at that deployment's ``finished_at``; without one it is
  *open*.
- The *lead time* of a successful change is its ``finished_at`` minus its commit's time, or
  minus its ``received_at`` when the request carries no commit time (counted apart).

The window picks which deployments count; what happened to them is read from all the records
given, so a change in the window rolled back after ``until`` is still a failed change, and a
restore after ``until`` still restores it.

Records written before environments have the environment ``""``; it is kept as given, a release
of its own, not merged into any named environment.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from deploy_contract.events import DeployPhase
from deployer.records import DeploymentRecord

COUNTING_PHASES = frozenset({DeployPhase.SUCCEEDED, DeployPhase.FAILED, DeployPhase.ROLLED_BACK})
"""The outcomes of a deployment that ran helm."""

LEAD_TIME_PERCENTILE = 90
_DAY = timedelta(days=1)


class DoraFigures(BaseModel):
    """The DORA metrics of one release over one window."""

    model_config = ConfigDict(frozen=True)

    service: str
    environment: str = Field(
        description='Where the service deploys; "" for records written before environments'
    )
    since: datetime = Field(description="Start of the window, included")
    until: datetime = Field(description="End of the window, excluded")
    deployments: int = Field(
        description="Deployments (changes and rollbacks) that ended succeeded, failed or "
        "rolled_back in the window"
    )
    successful_deployments: int = Field(description="Those of them that succeeded")
    deployments_per_day: float = Field(
        description="Deployment frequency: successful deployments per day of the window"
    )
    lead_time_median_seconds: float | None = Field(
        description="Median lead time for changes (commit to successful deployment); None "
        "without successful changes"
    )
    lead_time_p90_seconds: float | None = Field(
        description="90th percentile of the lead times (nearest rank); None without any"
    )
    lead_times: int = Field(description="Successful changes the lead times are of")
    lead_times_without_commit_time: int = Field(
        description="Lead times measured from when the deployer received the request, as it "
        "carried no commit time"
    )
    changes: int = Field(description="Deployments in the window that were not rollbacks")
    failed_changes: int = Field(
        description="Changes that ended failed or rolled_back, or succeeded and were followed "
        "by a rollback"
    )
    change_failure_rate: float | None = Field(
        description="failed_changes / changes; None without changes"
    )
    restores: int = Field(description="Failed changes a later successful deployment restored")
    open_failures: int = Field(description="Failed changes no successful deployment followed yet")
    time_to_restore_median_seconds: float | None = Field(
        description="Median time from a failure to the successful deployment restoring it; "
        "None without restores"
    )


def is_rollback(record: DeploymentRecord) -> bool:
    """True for a rollback: by revision through the API, or to an older image."""
    if record.rollback_to_revision is not None:
        return True
    return record.request is not None and record.request.rollback


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The ``percent``-th percentile of ``values`` by the nearest-rank method: the smallest
    value at least ``percent`` % of the values are less than or equal to."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], not {percent}")
    # Ceiling in integers: in floats 7 / 100 * 100 is 7.000000000000001, one rank too far.
    rank = -(-percent * len(values) // 100)
    return sorted(values)[rank - 1]


def dora_figures(
    records: Iterable[DeploymentRecord], *, since: datetime, until: datetime
) -> list[DoraFigures]:
    """One entry per (service, environment) with at least one deployment in ``[since, until)``,
    sorted by service then environment. Raises ValueError when ``until`` is not after ``since``."""
    if until <= since:
        raise ValueError(f"the window is empty: since {since} is not before until {until}")
    by_release: defaultdict[tuple[str, str], list[_Deployment]] = defaultdict(list)
    for record in records:
        if record.phase in COUNTING_PHASES and record.finished_at is not None:
            by_release[(record.service, record.environment)].append(
                _Deployment(record, record.finished_at)
            )
    figures = []
    for service, environment in sorted(by_release):
        deployments = by_release[(service, environment)]
        deployments.sort(key=lambda d: (d.record.received_at, d.record.id))
        release = _Release(service, environment, deployments)
        if any(since <= d.finished_at < until for d in deployments):
            figures.append(release.figures(since, until))
    return figures


@dataclass(frozen=True)
class _Deployment:
    """A record that counts as a deployment, with its (then known) finish time."""

    record: DeploymentRecord
    finished_at: datetime

    @property
    def succeeded(self) -> bool:
        """True when it ended succeeded."""
        return self.record.phase is DeployPhase.SUCCEEDED

    def lead_time_start(self) -> tuple[datetime, bool]:
        """Where its lead time starts, and whether that is the commit's time."""
        request = self.record.request
        if request is not None and request.commit_time is not None:
            return request.commit_time, True
        return self.record.received_at, False


@dataclass(frozen=True)
class _Release:
    """Every deployment of one release, in the order they were received."""

    service: str
    environment: str
    deployments: list[_Deployment]

    def failed_at(self, index: int) -> datetime | None:
        """When the change at ``index`` failed; None when it did not."""
        change = self.deployments[index]
        if not change.succeeded:
            return change.finished_at
        following = self.deployments[index + 1 : index + 2]
        if following and is_rollback(following[0].record):
            return following[0].record.received_at
        return None

    def restored_at(self, index: int) -> datetime | None:
        """When a successful deployment after the one at ``index`` finished; None if none did."""
        for later in self.deployments[index + 1 :]:
            if later.succeeded:
                return later.finished_at
        return None

    def lead_times(self, changes: list[int]) -> tuple[list[float], int]:
        """The lead times in seconds of the successful ones of ``changes`` (indexes), and how
        many of them start when the request was received, for want of a commit time."""
        seconds: list[float] = []
        without_commit_time = 0
        for i in changes:
            deployment = self.deployments[i]
            if not deployment.succeeded:
                continue
            start, from_commit = deployment.lead_time_start()
            seconds.append((deployment.finished_at - start).total_seconds())
            if not from_commit:
                without_commit_time += 1
        return seconds, without_commit_time

    def failures(self, changes: list[int]) -> tuple[int, list[float]]:
        """How many of ``changes`` (indexes) failed, and the seconds to restore each restored
        one."""
        failed_changes = 0
        restore_times: list[float] = []
        for i in changes:
            failed = self.failed_at(i)
            if failed is None:
                continue
            failed_changes += 1
            restored = self.restored_at(i)
            if restored is not None:
                restore_times.append((restored - failed).total_seconds())
        return failed_changes, restore_times

    def figures(self, since: datetime, until: datetime) -> DoraFigures:
        """The figures of the deployments that finished in ``[since, until)``."""
        in_window = [
            i
            for i, deployment in enumerate(self.deployments)
            if since <= deployment.finished_at < until
        ]
        changes = [i for i in in_window if not is_rollback(self.deployments[i].record)]
        successful = sum(self.deployments[i].succeeded for i in in_window)
        lead_times, without_commit_time = self.lead_times(changes)
        failed_changes, restore_times = self.failures(changes)
        return DoraFigures(
            service=self.service,
            environment=self.environment,
            since=since,
            until=until,
            deployments=len(in_window),
            successful_deployments=successful,
            deployments_per_day=successful / ((until - since) / _DAY),
            lead_time_median_seconds=_median(lead_times),
            lead_time_p90_seconds=(
                nearest_rank(lead_times, LEAD_TIME_PERCENTILE) if lead_times else None
            ),
            lead_times=len(lead_times),
            lead_times_without_commit_time=without_commit_time,
            changes=len(changes),
            failed_changes=failed_changes,
            change_failure_rate=failed_changes / len(changes) if changes else None,
            restores=len(restore_times),
            open_failures=failed_changes - len(restore_times),
            time_to_restore_median_seconds=_median(restore_times),
        )


def _median(values: list[float]) -> float | None:
    # The usual median: the mean of the two middle values of an even count.
    return statistics.median(values) if values else None
