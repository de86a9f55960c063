"""Which charts get a schema: discovered from the folders, never listed."""

from __future__ import annotations

from pathlib import Path

from kit import layout

CHARTS_DIR = Path(__file__).resolve().parents[1]
# Discovered, never listed: every services/<name>/ has the chart charts/<name>/, and a chart has a
# database when its values.yaml has a top-level `database` block (what flotilla-lib checks).
SERVICE_CHARTS = layout.service_names(CHARTS_DIR.parent)
CHARTS_WITH_DATABASE = layout.services_with_database(CHARTS_DIR.parent)
ALL_CHARTS = (*SERVICE_CHARTS, "deployer")
# The platform's own dependencies: StatefulSets with a schema of their own (see dependency_schema).
DEPENDENCY_CHARTS = ("nats", "postgres")
