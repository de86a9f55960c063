"""The replica-ratio canary: a second Deployment beside the stable one while canary.enabled.

The deployer drives it by `helm upgrade` with canary.* per step; these tests render what each step
gives with the real helm, and what the charts refuse (charts/README.md, "Canary").
"""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartsupport import (
    CHARTS,
    CHARTS_WITH_DATABASE,
    SCENARIOS,
    SERVICE_CHARTS,
    TAG,
    Helm,
    Manifest,
    Rendered,
    Values,
    merge,
    minimal_values,
    sqlite_values,
)

TRACK = "flotilla.dev/track"
NEW_TAG = "1.4.3-b9e4e32"
DIGEST = "sha256:" + "b9e4e32" * 9 + "1"
STABLE_DIGEST = "sha256:" + "a8f3d21" * 9 + "0"


def canary_values(chart: str, **canary: Any) -> Values:
    """A canary step: 4 replicas, 1 of them on NEW_TAG (25 %), with ``canary`` merged in."""
    running = {"enabled": True, "replicas": 1, "stableReplicas": 3, "image": {"tag": NEW_TAG}}
    return merge(
        minimal_values(chart),
        {
            "replicaCount": 4,
            "strategy": {"type": "canary"},
            "canary": merge(running, canary),
            "serviceMonitor": {"enabled": True},
        },
    )


def stable_and_canary(rendered: Rendered) -> tuple[Manifest, Manifest]:
    """The stable Deployment and the canary Deployment of a render with a canary."""
    by_name = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    assert sorted(by_name) == sorted([rendered.chart, f"{rendered.chart}-canary"]), by_name
    return by_name[rendered.chart], by_name[f"{rendered.chart}-canary"]


def image_of(deployment: Manifest) -> str:
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """True when a matchLabels selector matches a set of labels."""
    return selector.items() <= labels.items()


# --- what the deployer's steps render --------------------------------------------------------


@pytest.fixture(scope="module")
def renders(helm: Helm) -> dict[tuple[str, str], Rendered]:
    """Per service chart: rolling (the defaults), canary strategy idle, and a canary running."""
    variants: dict[str, Any] = {
        "rolling": lambda chart: merge(minimal_values(chart), {"replicaCount": 4}),
        "idle": lambda chart: merge(
            minimal_values(chart), {"replicaCount": 4, "strategy": {"type": "canary"}}
        ),
        "running": canary_values,
        "stable digest": lambda chart: merge(
            canary_values(chart), {"image": {"digest": STABLE_DIGEST}}
        ),
        "canary digest": lambda chart: canary_values(chart, image={"digest": DIGEST}),
        "full weight": lambda chart: canary_values(chart, replicas=4, stableReplicas=0),
    }
    cells = [(chart, name) for chart in SERVICE_CHARTS for name in variants]
    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = pool.map(lambda cell: helm.template(cell[0], variants[cell[1]](cell[0])), cells)
        return dict(zip(cells, rendered, strict=True))


@pytest.mark.parametrize(("chart", "scenario"), [(c, s) for c in CHARTS for s in SCENARIOS])
def test_without_a_canary_nothing_carries_the_track_label(
    matrix: dict[tuple[str, str], Rendered], chart: str, scenario: str
) -> None:
    """No pod of a release without a canary changes: one Deployment, no track label anywhere."""
    rendered = matrix[chart, scenario]
    assert [d["metadata"]["name"] for d in rendered.of_kind("Deployment")] == [chart]
    assert TRACK not in json.dumps(rendered.manifests)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_canary_strategy_alone_changes_no_workload(
    renders: dict[tuple[str, str], Rendered], chart: str
) -> None:
    """strategy.type: canary without a running canary renders the rolling Deployment exactly."""
    rolling, idle = renders[chart, "rolling"], renders[chart, "idle"]
    assert idle.deployment == rolling.deployment
    assert idle.deployment["spec"]["replicas"] == 4
    assert idle.one("Service") == rolling.one("Service")


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_canary_runs_beside_the_stable_deployment(
    renders: dict[tuple[str, str], Rendered], chart: str
) -> None:
    before = renders[chart, "rolling"].deployment
    stable, canary = stable_and_canary(renders[chart, "running"])
    # The stable Deployment: the same object but for its replicas, so its pods do not roll.
    assert stable["spec"]["replicas"] == 3
    assert {**stable["spec"], "replicas": 4} == before["spec"]
    assert stable["metadata"] == before["metadata"]
    assert TRACK not in json.dumps(stable)
    assert image_of(stable) == f"ghcr.io/flotilla/{chart}-service:{TAG}"
    # The canary: the new image, its own replicas, the track label on all three levels.
    assert canary["spec"]["replicas"] == 1
    assert image_of(canary) == f"ghcr.io/flotilla/{chart}-service:{NEW_TAG}"
    assert canary["metadata"]["labels"][TRACK] == "canary"
    assert canary["metadata"]["labels"]["app.kubernetes.io/version"] == NEW_TAG
    selector = canary["spec"]["selector"]["matchLabels"]
    assert selector == {**stable["spec"]["selector"]["matchLabels"], TRACK: "canary"}
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[TRACK] == "canary"
    assert pod_labels["app.kubernetes.io/version"] == NEW_TAG


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_canary_pods_are_the_stable_pods_on_the_new_image(
    renders: dict[tuple[str, str], Rendered], chart: str
) -> None:
    """Only the image and the version and track labels differ between the two pod templates."""
    stable, canary = stable_and_canary(renders[chart, "running"])
    template = copy.deepcopy(canary["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image_of(stable)
    labels = template["metadata"]["labels"]
    assert labels.pop(TRACK) == "canary"
    labels["app.kubernetes.io/version"] = TAG
    assert template == stable["spec"]["template"]
    # Everything else of the Deployment is the stable one's (strategy, deadlines, history).
    others = ("replicas", "selector", "template")
    assert {k: v for k, v in canary["spec"].items() if k not in others} == {
        k: v for k, v in stable["spec"].items() if k not in others
    }


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_service_budget_and_policy_select_both_tracks(
    renders: dict[tuple[str, str], Rendered], chart: str
) -> None:
    """The traffic split is the replica ratio: one Service (and PDB, NetworkPolicy) for both."""
    rendered = renders[chart, "running"]
    stable, canary = stable_and_canary(rendered)
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in (stable, canary)]
    selectors = {
        "Service": rendered.one("Service")["spec"]["selector"],
        "PodDisruptionBudget": rendered.one("PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ],
        "NetworkPolicy": rendered.one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert all(selects(selector, labels) for labels in pods), kind
    assert rendered.one("Service") == renders[chart, "rolling"].one("Service")
    # Each Deployment selects its own pods; the canary's selector never matches a stable pod.
    assert selects(stable["spec"]["selector"]["matchLabels"], pods[0])
    assert selects(canary["spec"]["selector"]["matchLabels"], pods[1])
    assert not selects(canary["spec"]["selector"]["matchLabels"], pods[0])


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_canary_image_digest(renders: dict[tuple[str, str], Rendered], chart: str) -> None:
    """The canary pulls its own digest when set, and never inherits the stable image's digest."""
    stable, canary = stable_and_canary(renders[chart, "canary digest"])
    assert image_of(canary) == f"ghcr.io/flotilla/{chart}-service@{DIGEST}"
    assert image_of(stable) == f"ghcr.io/flotilla/{chart}-service:{TAG}"
    stable, canary = stable_and_canary(renders[chart, "stable digest"])
    assert image_of(stable) == f"ghcr.io/flotilla/{chart}-service@{STABLE_DIGEST}"
    assert image_of(canary) == f"ghcr.io/flotilla/{chart}-service:{NEW_TAG}"


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_full_weight_leaves_the_stable_deployment_at_zero(
    renders: dict[tuple[str, str], Rendered], chart: str
) -> None:
    stable, canary = stable_and_canary(renders[chart, "full weight"])
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (0, 4)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_service_monitor_carries_the_track_label(
    renders: dict[tuple[str, str], Rendered], helm: Helm, chart: str
) -> None:
    """With strategy canary the series get track=canary from the pods' flotilla.dev/track, and
    track=stable from the pods without it: the label the deployer's analysis asks by."""
    source = "__meta_kubernetes_pod_label_flotilla_dev_track"
    wanted = [
        {"sourceLabels": [source], "regex": "(.+)", "targetLabel": "track"},
        {"sourceLabels": [source], "regex": "", "targetLabel": "track", "replacement": "stable"},
    ]
    monitor = renders[chart, "running"].one("ServiceMonitor")["spec"]
    assert monitor["endpoints"][0]["relabelings"] == wanted
    idle = merge(minimal_values(chart), {"strategy": {"type": "canary"}})
    idle_monitor = helm.template(chart, merge(idle, {"serviceMonitor": {"enabled": True}}))
    assert idle_monitor.one("ServiceMonitor")["spec"]["endpoints"][0]["relabelings"] == wanted
    rolling = merge(minimal_values(chart), {"serviceMonitor": {"enabled": True}})
    endpoint = helm.template(chart, rolling).one("ServiceMonitor")["spec"]["endpoints"][0]
    assert "relabelings" not in endpoint


def test_canary_name_stays_a_dns_label(helm: Helm) -> None:
    long_name = "order-" + "x" * 57
    values = merge(canary_values("order"), {"fullnameOverride": long_name})
    names = [d["metadata"]["name"] for d in helm.template("order", values).of_kind("Deployment")]
    assert long_name in names
    canary = next(name for name in names if name != long_name)
    assert canary.endswith("-canary")
    assert len(canary) <= 63


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_lint_strict_with_a_canary(helm: Helm, chart: str) -> None:
    output = helm.run(
        "lint",
        "--strict",
        str(helm.charts_dir / chart),
        "--values",
        "-",
        stdin=yaml.safe_dump(canary_values(chart)),
    )
    assert "0 chart(s) failed" in output


# --- what the charts refuse -----------------------------------------------------------------

HPA_MESSAGE = (
    "the canary's split is a replica ratio; an HPA would fight it: set "
    "autoscaling.enabled=false for a canary service, or use strategy rolling"
)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_canary_with_autoscaling_is_refused(helm: Helm, chart: str) -> None:
    hpa = {"autoscaling": {"enabled": True}}
    error = helm.template_error(chart, merge(canary_values(chart), hpa))
    assert f"canary.enabled with autoscaling.enabled: {HPA_MESSAGE}" in error, error
    # Already when the strategy is chosen, before the deployer's first step.
    idle = merge(minimal_values(chart), {"strategy": {"type": "canary"}, **hpa})
    error = helm.template_error(chart, idle)
    assert f"strategy.type: canary with autoscaling.enabled: {HPA_MESSAGE}" in error, error


@pytest.mark.parametrize("chart", CHARTS_WITH_DATABASE)
@pytest.mark.parametrize("running", [False, True], ids=["strategy", "running"])
def test_canary_on_sqlite_is_refused(helm: Helm, chart: str, running: bool) -> None:
    values = merge(sqlite_values(chart), {"strategy": {"type": "canary"}})
    if running:
        canary = {"enabled": True, "replicas": 1, "stableReplicas": 0, "image": {"tag": NEW_TAG}}
        values = merge(values, {"canary": canary})
    error = helm.template_error(chart, values)
    what = "canary.enabled" if running else "strategy.type: canary"
    assert f"{what} needs PostgreSQL" in error, error
    assert "two processes sharing one SQLite file" in error
    assert "database.existingSecret" in error
    assert "strategy.type: rolling" in error


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_a_running_canary_needs_the_canary_strategy(helm: Helm, chart: str) -> None:
    values = merge(canary_values(chart), {"strategy": {"type": "rolling"}})
    error = helm.template_error(chart, values)
    assert "canary.enabled is true but strategy.type is rolling" in error, error


# name: (values merged over canary_values, text helm's error must contain)
SCHEMA_REJECTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "weight 0": (
        {"strategy": {"canary": {"steps": [{"setWeight": 0}]}}},
        "at '/strategy/canary/steps/0/setWeight': minimum: got 0, want 1",
    ),
    "weight 101": (
        {"strategy": {"canary": {"steps": [{"setWeight": 101}]}}},
        "at '/strategy/canary/steps/0/setWeight': maximum: got 101, want 100",
    ),
    "weight as text": (
        {"strategy": {"canary": {"steps": [{"setWeight": "25%"}]}}},
        "at '/strategy/canary/steps/0/setWeight': got string, want integer",
    ),
    "a step with two keys": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"setWeight": 20, "pause": {}}]}}},
        "at '/strategy/canary/steps/1': maxProperties: got 2, want 1",
    ),
    "an unknown step": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"wait": 30}]}}},
        "at '/strategy/canary/steps/1': additional properties 'wait' not allowed",
    ),
    "an empty step": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {}]}}},
        "at '/strategy/canary/steps/1': minProperties: got 0, want 1",
    ),
    "a pause of seconds as a number": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": 30}]}}},
        "at '/strategy/canary/steps/1/pause': got number, want object",
    ),
    "a pause of 0 seconds": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"seconds": 0}}]}}},
        "at '/strategy/canary/steps/1/pause/seconds': minimum: got 0, want 1",
    ),
    "an analysis of no measurement": (
        {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"analysis": {"count": 0}}]}}},
        "at '/strategy/canary/steps/1/analysis/count': minimum: got 0, want 1",
    ),
    "a first step that is not a setWeight": (
        {"strategy": {"canary": {"steps": [{"analysis": {}}, {"setWeight": 50}]}}},
        "at '/strategy/canary/steps/0': missing property 'setWeight'",
    ),
    "no steps": (
        {"strategy": {"canary": {"steps": []}}},
        "at '/strategy/canary/steps': minItems: got 0, want 1",
    ),
    "an unknown strategy": ({"strategy": {"type": "blue-green"}}, "at '/strategy/type'"),
    "an interval below 5 s": (
        {"strategy": {"canary": {"analysis": {"intervalSeconds": 4}}}},
        "at '/strategy/canary/analysis/intervalSeconds': minimum: got 4, want 5",
    ),
    "a success rate above 1": (
        {"strategy": {"canary": {"analysis": {"successRate": 1.5}}}},
        "at '/strategy/canary/analysis/successRate': maximum: got 1.5, want 1",
    ),
    "a failure limit of 0": (
        {"strategy": {"canary": {"analysis": {"failureLimit": 0}}}},
        "at '/strategy/canary/analysis/failureLimit': minimum: got 0, want 1",
    ),
    "a p99 ratio below 1": (
        {"strategy": {"canary": {"analysis": {"maxP99Ratio": 0.5}}}},
        "at '/strategy/canary/analysis/maxP99Ratio': minimum: got 0.5, want 1",
    ),
    "an unknown analysis key": (
        {"strategy": {"canary": {"analysis": {"errorRate": 0.1}}}},
        "at '/strategy/canary/analysis': additional properties 'errorRate' not allowed",
    ),
    "a mutable canary tag": (
        {"canary": {"image": {"tag": "1.4.3"}}},
        "at '/canary/image/tag': '1.4.3' does not match",
    ),
    "latest as the canary tag": (
        {"canary": {"image": {"tag": "latest"}}},
        "at '/canary/image/tag': 'not' failed",
    ),
    "a running canary without a tag": (
        {"canary": {"image": {"tag": ""}}},
        "at '/canary/image/tag': minLength: got 0, want 1",
    ),
    "a running canary of no pod": (
        {"canary": {"replicas": 0}},
        "at '/canary/replicas': minimum: got 0, want 1",
    ),
    "negative stable replicas": (
        {"canary": {"stableReplicas": -1}},
        "at '/canary/stableReplicas': minimum: got -1, want 0",
    ),
    "a bad canary digest": (
        {"canary": {"image": {"digest": "md5:00"}}},
        "at '/canary/image/digest'",
    ),
    "an unknown canary key": (
        {"canary": {"weight": 25}},
        "at '/canary': additional properties 'weight' not allowed",
    ),
    "the track label on every pod": (
        {"podLabels": {TRACK: "stable"}},
        "at '/podLabels/flotilla.dev~1track': 'not' failed",
    ),
}


@pytest.fixture(scope="module")
def schema_errors(helm: Helm) -> dict[tuple[str, str], str]:
    cells = [(chart, name) for chart in SERVICE_CHARTS for name in SCHEMA_REJECTIONS]

    def render(cell: tuple[str, str]) -> str:
        chart, name = cell
        return helm.template_error(chart, merge(canary_values(chart), SCHEMA_REJECTIONS[name][0]))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cells, pool.map(render, cells), strict=True))


@pytest.mark.parametrize("name", list(SCHEMA_REJECTIONS))
@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_schema_refuses_with_the_field_named(
    schema_errors: dict[tuple[str, str], str], chart: str, name: str
) -> None:
    error = schema_errors[chart, name]
    assert SCHEMA_REJECTIONS[name][1] in error, error


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_an_idle_canary_takes_no_tag(helm: Helm, chart: str) -> None:
    """Between canaries the deployer leaves canary.enabled false with an empty tag and 0 pods."""
    idle = {"enabled": False, "replicas": 0, "stableReplicas": 0, "image": {"tag": ""}}
    values = merge(minimal_values(chart), {"strategy": {"type": "canary"}, "canary": idle})
    assert len(helm.template(chart, values).of_kind("Deployment")) == 1


@pytest.mark.parametrize(
    "steps",
    [
        [{"setWeight": 100}],
        [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"seconds": 60}}],
        [{"setWeight": 20}, {"analysis": {"count": 5}}, {"analysis": {}}, {"setWeight": 100}],
    ],
    ids=["all at once", "pauses", "analyses"],
)
def test_steps_accepted(helm: Helm, steps: list[dict[str, Any]]) -> None:
    values = merge(canary_values("order"), {"strategy": {"canary": {"steps": steps}}})
    assert len(helm.template("order", values).of_kind("Deployment")) == 2


# --- the values themselves ------------------------------------------------------------------


def chart_values(charts_dir: Path, chart: str) -> Values:
    values: Values = yaml.safe_load((charts_dir / chart / "values.yaml").read_text())
    return values


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_every_service_chart_offers_the_same_canary(charts_dir: Path, chart: str) -> None:
    values = chart_values(charts_dir, chart)
    assert values["strategy"]["type"] == "rolling"
    assert values["canary"] == {
        "enabled": False,
        "replicas": 0,
        "stableReplicas": 0,
        "image": {"repository": "", "tag": "", "digest": ""},
    }
    reference = chart_values(charts_dir, SERVICE_CHARTS[0])
    assert values["strategy"] == reference["strategy"]
    assert (charts_dir / chart / "templates" / "canary-deployment.yaml").is_file()


def test_the_deployer_chart_offers_no_canary(charts_dir: Path, helm: Helm) -> None:
    values = chart_values(charts_dir, "deployer")
    assert not {"strategy", "canary"} & values.keys()
    schema = json.loads((charts_dir / "deployer" / "values.schema.json").read_text())
    assert not {"strategy", "canary"} & schema["properties"].keys()
    assert not (charts_dir / "deployer" / "templates" / "canary-deployment.yaml").exists()
    error = helm.template_error(
        "deployer", merge(minimal_values("deployer"), {"strategy": {"type": "canary"}})
    )
    assert "additional properties 'strategy' not allowed" in error, error
