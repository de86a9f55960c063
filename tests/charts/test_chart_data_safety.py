"""The service charts refuse a database setup that loses data, and accept the two that keep it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.chartsupport import (
    CHARTS_WITH_DATABASE,
    TAG,
    Helm,
    merge,
    minimal_values,
    sqlite_values,
)

TAG_ONLY: dict[str, Any] = {"image": {"tag": TAG}}

# name: (values, text helm's error must contain)
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "replicas 2 without a database secret": (
        merge(TAG_ONLY, {"replicaCount": 2}),
        "database.existingSecret is required with replicaCount: 2",
    ),
    "the chart defaults (2 replicas, no database)": (
        TAG_ONLY,
        "database.existingSecret is required with replicaCount: 2",
    ),
    "replicas 2 on a SQLite claim": (
        merge(
            TAG_ONLY,
            {"replicaCount": 2, "database": {"sqlite": {"persistence": {"enabled": True}}}},
        ),
        "database.existingSecret is required with replicaCount: 2",
    ),
    "SQLite on an emptyDir": (
        merge(TAG_ONLY, {"replicaCount": 1}),
        "database.existingSecret is empty and database.sqlite.persistence.enabled is false",
    ),
    "autoscaling on SQLite": (
        merge(
            TAG_ONLY,
            {
                "replicaCount": 1,
                "autoscaling": {"enabled": True},
                "database": {"sqlite": {"persistence": {"enabled": True}}},
            },
        ),
        "database.existingSecret is required with autoscaling.enabled",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
@pytest.mark.parametrize("chart", CHARTS_WITH_DATABASE)
def test_data_loss_is_refused_naming_the_field(helm: Helm, chart: str, name: str) -> None:
    values, expected = REFUSED[name]
    error = helm.template_error(chart, values)
    assert expected in error, error
    assert "Name a Secret holding DATABASE_URL" in error, "the message says what to do"


@pytest.mark.parametrize("chart", CHARTS_WITH_DATABASE)
def test_postgres_runs_any_number_of_replicas(helm: Helm, chart: str) -> None:
    rendered = helm.template(chart, merge(minimal_values(chart), {"replicaCount": 3}))
    assert rendered.deployment["spec"]["replicas"] == 3
    assert "PersistentVolumeClaim" not in rendered.kinds
    volumes = {v["name"] for v in rendered.pod_spec["volumes"]}
    assert "data" not in volumes
    assert "DATABASE_URL" not in rendered.config_data


@pytest.mark.parametrize("chart", CHARTS_WITH_DATABASE)
def test_sqlite_runs_one_replica_on_a_kept_claim(helm: Helm, chart: str) -> None:
    rendered = helm.template(chart, sqlite_values(chart))
    claim = rendered.one("PersistentVolumeClaim")
    assert claim["metadata"]["name"] == f"{chart}-sqlite"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "storageClassName" not in claim["spec"], "unset: the cluster's default class"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    assert volumes["data"] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    assert rendered.deployment["spec"]["replicas"] == 1
    assert rendered.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        rendered.config_data["DATABASE_URL"] == f"sqlite+aiosqlite:////var/lib/flotilla/{chart}.db"
    )


def test_sqlite_on_an_existing_claim_with_a_class(helm: Helm) -> None:
    values = merge(
        sqlite_values("order"),
        {"database": {"sqlite": {"persistence": {"existingClaim": "orders-data"}}}},
    )
    rendered = helm.template("order", values)
    assert "PersistentVolumeClaim" not in rendered.kinds
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "orders-data"}
    values = merge(
        sqlite_values("order"),
        {"database": {"sqlite": {"persistence": {"storageClassName": "flotilla-local"}}}},
    )
    claim = helm.template("order", values).one("PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "flotilla-local"
