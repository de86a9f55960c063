"""The DORA figures as Prometheus gauges, per service and environment (the last 30 days)."""

from __future__ import annotations

from datetime import datetime, timedelta

from deployer.promotion.dora import dora_figures
from deployer.records import DeploymentRecord
from deployer.report.metrics import (
    DORA_CHANGE_FAILURE_RATE,
    DORA_DEPLOYMENTS_PER_DAY,
    DORA_LEAD_TIME,
    DORA_TIME_TO_RESTORE,
)

WINDOW = timedelta(days=30)


def export_dora(records: list[DeploymentRecord], now: datetime) -> None:
    """Set the gauges from the ledger; a figure without data (no lead time yet) is left out."""
    for figures in dora_figures(records, since=now - WINDOW, until=now):
        labels = (figures.service, figures.environment)
        DORA_DEPLOYMENTS_PER_DAY.labels(*labels).set(figures.deployments_per_day)
        for gauge, value in (
            (DORA_LEAD_TIME, figures.lead_time_median_seconds),
            (DORA_CHANGE_FAILURE_RATE, figures.change_failure_rate),
            (DORA_TIME_TO_RESTORE, figures.time_to_restore_median_seconds),
        ):
            if value is not None:
                gauge.labels(*labels).set(value)
