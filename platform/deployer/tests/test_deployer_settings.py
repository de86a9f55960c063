"""The deployer's settings: what it may deploy."""

from __future__ import annotations

from pathlib import Path

from deployer.settings import DeployerSettings
from kit import layout


def test_the_services_are_the_deployable_charts(repo_root: Path) -> None:
    # charts/ also holds the library, the deployer's chart and the platform's NATS and PostgreSQL.
    charts = DeployerSettings(charts_dir=repo_root / "charts").service_charts()
    assert tuple(charts) == layout.service_names(repo_root)
    assert all(path == repo_root / "charts" / name for name, path in charts.items())
