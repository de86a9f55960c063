"""Fixtures of the chart contract tests: the pinned helm and the rendered values matrix."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.charts.chartsupport import CHARTS, SCENARIOS, Helm, Rendered, built_tool, scenario_values


@pytest.fixture(scope="session")
def charts_dir(repo_root: Path) -> Path:
    """The charts/ directory of the checkout."""
    return repo_root / "charts"


@pytest.fixture(scope="session")
def helm(repo_root: Path, charts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (platform/cluster/build-tools.sh --path helm), with isolated homes."""
    return Helm(built_tool(repo_root, "helm"), charts_dir, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def matrix(helm: Helm) -> dict[tuple[str, str], Rendered]:
    """Every chart rendered with every scenario of the matrix, in parallel."""
    cells = [(chart, scenario) for chart in CHARTS for scenario in SCENARIOS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = pool.map(lambda cell: helm.template(cell[0], scenario_values(*cell)), cells)
        return dict(zip(cells, rendered, strict=True))
