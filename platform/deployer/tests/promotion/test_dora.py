"""DORA metrics from a scripted ledger, each figure checked against arithmetic done by hand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.promotion.dora import DoraFigures, dora_figures, nearest_rank
from deployer.records import DeploymentRecord, Origin

SUCCEEDED = DeployPhase.SUCCEEDED
FAILED = DeployPhase.FAILED
ROLLED_BACK = DeployPhase.ROLLED_BACK

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
WEEK = {"since": MONDAY, "until": MONDAY + timedelta(days=7)}
_ids = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of the scripted week: ``day`` 0 is its Monday."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


@dataclass(frozen=True)
class Release:
    """Makes the ledger's records of one service in one environment."""

    service: str
    environment: str

    def __call__(
        self,
        phase: DeployPhase,
        received: datetime,
        finished: datetime | None = None,
        *,
        commit: datetime | None = None,
        rollback: bool = False,
        to_revision: int | None = None,
    ) -> DeploymentRecord:
        """A record; ``commit`` is the commit's time, ``to_revision`` makes a rollback by
        revision (through the API, without a request)."""
        request = None
        if to_revision is None:
            request = ArtifactPublished(
                service=self.service,
                image=f"registry.example/{self.service}:1.0.0-abcdef0",
                commit="abcdef0",
                commit_time=commit,
                pipeline_id=f"test:{next(_ids)}",
                rollback=rollback,
            )
        return DeploymentRecord(
            id=f"d{next(_ids)}",
            service=self.service,
            environment=self.environment,
            origin=Origin.PIPELINE if to_revision is None else Origin.API,
            request=request,
            rollback_to_revision=to_revision,
            phase=phase,
            revision=to_revision,
            received_at=received,
            started_at=received if finished else None,
            finished_at=finished,
        )


def figures(service: str, environment: str, **counts: object) -> DoraFigures:
    """Expected figures over the scripted week."""
    return DoraFigures.model_validate(
        {"service": service, "environment": environment, **WEEK, **counts}
    )


order_staging = Release("order", "staging")
order_production = Release("order", "production")
payment_staging = Release("payment", "staging")
payment_production = Release("payment", "production")
payment_before_environments = Release("payment", "")

LEDGER = [
    # order/staging
    # Lead 10:00 - 09:00 = 3600.
    order_staging(SUCCEEDED, at(0, 9, 50), at(0, 10), commit=at(0, 9)),
    # Lead 10:00 - 08:00 = 7200.
    order_staging(SUCCEEDED, at(1, 9, 50), at(1, 10), commit=at(1, 8)),
    # A failed change: fails at day 2 12:00.
    order_staging(ROLLED_BACK, at(2, 11, 50), at(2, 12), commit=at(2, 8)),
    # Fix forward: lead 13:00 - 10:00 = 10800; restores the one above, 13:00 - 12:00 = 3600.
    order_staging(SUCCEEDED, at(2, 12, 50), at(2, 13), commit=at(2, 10)),
    # None of these count.
    order_staging(DeployPhase.REJECTED, at(3, 8), at(3, 8)),
    order_staging(DeployPhase.SUPERSEDED, at(3, 9), at(3, 10)),
    order_staging(DeployPhase.UNCHANGED, at(3, 11), at(3, 11)),
    order_staging(DeployPhase.PROGRESSING, at(6, 23)),
    #
    # order/production
    # Lead 12:00 - 11:30 = 1800.
    order_production(SUCCEEDED, at(1, 11, 50), at(1, 12), commit=at(1, 11, 30)),
    # A rollback that was rejected does not count, so the change above did not need one.
    order_production(DeployPhase.REJECTED, at(1, 13), at(1, 13), rollback=True),
    # No commit time: lead from received, 14:10 - 14:00 = 600.
    order_production(SUCCEEDED, at(2, 14), at(2, 14, 10)),
    # Rollback to an older image: the change above needed it, failed when this was received
    # (16:10) and was restored when this finished, 16:15 - 16:10 = 300. Its own lead time (from
    # day 0 09:00) is not one: a rollback is no change.
    order_production(SUCCEEDED, at(2, 16, 10), at(2, 16, 15), commit=at(0, 9), rollback=True),
    # Lead 09:30 - 08:00 = 5400.
    order_production(SUCCEEDED, at(4, 9, 20), at(4, 9, 30), commit=at(4, 8)),
    #
    # payment/staging
    # A failed change at day 2 09:00.
    payment_staging(FAILED, at(2, 8, 50), at(2, 9), commit=at(2, 8)),
    # Lead 11:00 - 07:00 = 14400; restores the one above, 11:00 - 09:00 = 7200.
    payment_staging(SUCCEEDED, at(2, 10, 50), at(2, 11), commit=at(2, 7)),
    # A failed change at day 5 10:00 that stays open: the rollback after it failed too.
    payment_staging(FAILED, at(5, 9, 50), at(5, 10), commit=at(5, 8)),
    payment_staging(FAILED, at(5, 10, 30), at(5, 10, 35), to_revision=3),
    #
    # payment before environments
    # Before the window: does not count.
    payment_before_environments(SUCCEEDED, at(-1, 11), at(-1, 12), commit=at(-1, 10)),
    # Lead 12:00 - 11:00 = 3600.
    payment_before_environments(SUCCEEDED, at(0, 11, 50), at(0, 12), commit=at(0, 11)),
    #
    # payment/production: nothing that counts in the window, so no entry.
    payment_production(DeployPhase.REJECTED, at(1, 9), at(1, 9)),
    payment_production(SUCCEEDED, at(7, 1), at(7, 1, 5), commit=at(7, 0)),
]


def test_the_scripted_week() -> None:
    # Reversed: the order records come in does not matter.
    assert dora_figures(reversed(LEDGER), **WEEK) == [
        figures(
            "order",
            "production",
            deployments=4,  # three changes and one rollback
            successful_deployments=4,
            deployments_per_day=4 / 7,
            lead_time_median_seconds=1800,  # 600, 1800, 5400
            lead_time_p90_seconds=5400,  # rank ceil(0.9 * 3) = 3
            lead_times=3,
            lead_times_without_commit_time=1,
            changes=3,
            failed_changes=1,  # the one rolled back by the rollback deployment
            change_failure_rate=1 / 3,
            restores=1,
            open_failures=0,
            time_to_restore_median_seconds=300,
        ),
        figures(
            "order",
            "staging",
            deployments=4,  # rejected, superseded, unchanged and unfinished ones do not count
            successful_deployments=3,
            deployments_per_day=3 / 7,
            lead_time_median_seconds=7200,  # 3600, 7200, 10800
            lead_time_p90_seconds=10800,  # rank ceil(0.9 * 3) = 3
            lead_times=3,
            lead_times_without_commit_time=0,
            changes=4,
            failed_changes=1,  # rolled_back
            change_failure_rate=1 / 4,
            restores=1,
            open_failures=0,
            time_to_restore_median_seconds=3600,
        ),
        figures(
            "payment",
            "",  # records before environments: an environment of their own
            deployments=1,
            successful_deployments=1,
            deployments_per_day=1 / 7,
            lead_time_median_seconds=3600,
            lead_time_p90_seconds=3600,
            lead_times=1,
            lead_times_without_commit_time=0,
            changes=1,
            failed_changes=0,
            change_failure_rate=0.0,
            restores=0,
            open_failures=0,
            time_to_restore_median_seconds=None,
        ),
        figures(
            "payment",
            "staging",
            deployments=4,  # three changes and one rollback by revision
            successful_deployments=1,
            deployments_per_day=1 / 7,
            lead_time_median_seconds=14400,
            lead_time_p90_seconds=14400,
            lead_times=1,
            lead_times_without_commit_time=0,
            changes=3,
            failed_changes=2,  # both failed ones
            change_failure_rate=2 / 3,
            restores=1,
            open_failures=1,  # the failed rollback restored nothing
            time_to_restore_median_seconds=7200,
        ),
    ]


def test_the_window_includes_since_and_excludes_until() -> None:
    since, until = at(1, 0), at(2, 0)
    records = [
        order_staging(SUCCEEDED, at(0, 23), since),
        order_staging(SUCCEEDED, at(1, 23), until),
    ]
    [only] = dora_figures(records, since=since, until=until)
    assert (only.deployments, only.successful_deployments) == (1, 1)
    assert only.deployments_per_day == 1.0  # one in a one-day window
    assert only.lead_time_median_seconds == 3600  # since - at(0, 23), from received
    assert dora_figures(records, since=until, until=at(3, 0))[0].deployments == 1
    assert dora_figures(records, since=at(2, 0, 1), until=at(3, 0)) == []


def test_what_follows_the_window_still_marks_and_restores_its_changes() -> None:
    since, until = at(0, 0), at(1, 0)
    records = [
        order_staging(SUCCEEDED, at(0, 9), at(0, 10)),
        # After the window: the change above needed this rollback, noticed at day 1 08:00 and
        # restored at 08:30, 1800 seconds.
        order_staging(SUCCEEDED, at(1, 8), at(1, 8, 30), to_revision=1),
    ]
    [only] = dora_figures(records, since=since, until=until)
    assert (only.deployments, only.changes, only.failed_changes) == (1, 1, 1)
    assert (only.restores, only.open_failures, only.time_to_restore_median_seconds) == (1, 0, 1800)
    # The rollback's own window holds no change.
    [after] = dora_figures(records, since=until, until=at(2, 0))
    assert (after.deployments, after.successful_deployments, after.changes) == (1, 1, 0)
    assert after.change_failure_rate is None
    assert (after.lead_times, after.lead_time_median_seconds, after.lead_time_p90_seconds) == (
        0,
        None,
        None,
    )


def test_median_and_p90_of_one_and_of_two_lead_times() -> None:
    one = [order_staging(SUCCEEDED, at(0, 9), at(0, 10), commit=at(0, 9))]
    [single] = dora_figures(one, **WEEK)
    assert (single.lead_time_median_seconds, single.lead_time_p90_seconds) == (3600, 3600)

    two = [
        *one,
        order_staging(SUCCEEDED, at(1, 9), at(1, 10), commit=at(1, 8)),
    ]
    [pair] = dora_figures(two, **WEEK)
    # 3600 and 7200: the median is their mean, 5400; p90 is rank ceil(0.9 * 2) = 2, 7200.
    assert (pair.lead_time_median_seconds, pair.lead_time_p90_seconds) == (5400, 7200)


def test_nearest_rank() -> None:
    assert nearest_rank([5.0], 90) == 5.0
    assert nearest_rank([5.0], 1) == 5.0
    assert nearest_rank([2.0, 1.0], 90) == 2.0  # rank ceil(0.9 * 2) = 2
    assert nearest_rank([2.0, 1.0], 50) == 1.0  # rank ceil(0.5 * 2) = 1
    # Rank ceil(0.07 * 100) = 7; in floats 7 / 100 * 100 is just above 7, which would give 8.
    assert nearest_rank([float(v) for v in range(1, 101)], 7) == 7.0
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 90)
    with pytest.raises(ValueError, match="percent"):
        nearest_rank([1.0], 0)


def test_no_records_no_figures() -> None:
    assert dora_figures([], **WEEK) == []


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window is empty"):
        dora_figures([], since=MONDAY, until=MONDAY)
