"""Schema rejections: bad values make helm fail, with a message that names the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.charts.chartsupport import CHARTS, Helm, merge, minimal_values, scenario_values

# Marks a key to leave out of the values entirely.
ABSENT = "<absent>"

# name: (values merged over the defaults, text helm's error must contain)
REJECTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "missing tag": ({"image": {"tag": ABSENT}}, "at '/image': missing property 'tag'"),
    "null tag": ({"image": {"tag": None}}, "at '/image/tag': got null, want string"),
    "latest tag": ({"image": {"tag": "latest"}}, "at '/image/tag': 'not' failed"),
    "empty tag": ({"image": {"tag": ""}}, "at '/image/tag': minLength: got 0, want 1"),
    "mutable tag": ({"image": {"tag": "1.4.2"}}, "at '/image/tag': '1.4.2' does not match"),
    "tag with a digest": ({"image": {"tag": "sha256:abc"}}, "at '/image/tag'"),
    "bad digest": ({"image": {"digest": "md5:00"}}, "at '/image/digest'"),
    "negative replicas": ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 1"),
    "zero replicas": ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
    "replicas as text": ({"replicaCount": "2"}, "at '/replicaCount'"),
    "unknown top-level key": ({"replicas": 3}, "at '': additional properties 'replicas'"),
    "unknown nested key": ({"image": {"pullpolicy": "Always"}}, "'pullpolicy' not allowed"),
    "missing resources": ({"resources": None}, "at '': missing property 'resources'"),
    "missing limits": ({"resources": {"limits": None}}, "at '/resources': missing property"),
    "missing memory request": (
        {"resources": {"requests": {"memory": None}}},
        "at '/resources/requests': missing property 'memory'",
    ),
    "root user": ({"securityContext": {"runAsUser": 0}}, "at '/securityContext/runAsUser'"),
    "a password by value": (
        {"nats": {"password": "hunter2"}},
        "at '/nats': additional properties 'password' not allowed",
    ),
    "production without secret references": (
        {"config": {"environment": "production"}},
        "at '/nats/existingSecret': minLength: got 0, want 1",
    ),
    "unknown environment": ({"config": {"environment": "prod"}}, "at '/config/environment'"),
    "lower-case extra env": (
        {"config": {"extra": {"feature": "x"}}},
        "invalid propertyName 'feature'",
    ),
    "grace period shorter than shutdown": (
        {"lifecycle": {"terminationGracePeriodSeconds": 10}},
        "lifecycle.terminationGracePeriodSeconds (10) must be at least",
    ),
    "extra env overriding a chart setting": (
        {"config": {"extra": {"NATS_URL": "nats://elsewhere:4222"}}},
        "config.extra.NATS_URL: NATS_URL is set by the chart",
    ),
    "autoscaling minimum above maximum": (
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
        "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)",
    ),
    "an even number of stream copies": (
        {"nats": {"streamReplicas": 2}},
        "at '/nats/streamReplicas': value must be one of 1, 3, 5",
    ),
    "a NATS server list with a web socket": (
        {"nats": {"url": "nats://nats-0.n:4222,ws://nats-1.n:443"}},
        "at '/nats/url'",
    ),
    "a NATS server list with spaces": (
        {"nats": {"url": "nats://nats-0.n:4222, nats://nats-1.n:4222"}},
        "at '/nats/url'",
    ),
    "credentials file without a secret": (
        {"nats": {"credsKey": "user.creds"}},
        "nats.existingSecret is required when nats.credsKey is set",
    ),
}


@pytest.fixture(scope="module")
def rejection_errors(helm: Helm) -> dict[tuple[str, str], str]:
    """helm's error for every chart and every rejected change, rendered in parallel."""
    cells = [(chart, name) for chart in CHARTS for name in REJECTIONS]

    def render(cell: tuple[str, str]) -> str:
        chart, name = cell
        values = without_absent(merge(scenario_values(chart, "defaults"), REJECTIONS[name][0]))
        return helm.template_error(chart, values)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cells, pool.map(render, cells), strict=True))


@pytest.mark.parametrize("name", list(REJECTIONS))
@pytest.mark.parametrize("chart", CHARTS)
def test_rejected_with_the_field_named(
    rejection_errors: dict[tuple[str, str], str], chart: str, name: str
) -> None:
    error = rejection_errors[chart, name]
    assert REJECTIONS[name][1] in error, error


def without_absent(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the keys marked ABSENT."""
    return {
        key: without_absent(value) if isinstance(value, dict) else value
        for key, value in values.items()
        if value != ABSENT
    }


@pytest.mark.parametrize("chart", CHARTS)
def test_default_values_need_only_a_tag_and_a_database(helm: Helm, chart: str) -> None:
    rendered = helm.template(chart, minimal_values(chart))
    assert rendered.deployment


@pytest.mark.parametrize(
    "tag", ["1.4.2-a8f3d21", "v1.4.2-a8f3d21", "2.0.0-rc.1-a8f3d21", "0.1.0-" + "ab" * 20]
)
def test_immutable_tags_accepted(helm: Helm, tag: str) -> None:
    rendered = helm.template("order", merge(minimal_values("order"), {"image": {"tag": tag}}))
    assert rendered.pod_spec["containers"][0]["image"].endswith(f":{tag}")


@pytest.mark.parametrize("chart", ["auth", "deployer"])
def test_production_names_each_missing_secret(helm: Helm, chart: str) -> None:
    values = merge(scenario_values(chart, "defaults"), {"config": {"environment": "production"}})
    error = helm.template_error(chart, values)
    extra = {"auth": "/signingKeys/existingSecret", "deployer": "/api/existingSecret"}[chart]
    for field in ("/nats/existingSecret", "/identity/existingSecret", extra):
        assert f"at '{field}'" in error, error
