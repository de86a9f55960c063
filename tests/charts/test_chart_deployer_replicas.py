"""The deployer chart's defaults give no single point of failure: two replicas that find and
reach each other, a disruption budget, and leases the settings accept."""

from __future__ import annotations

from typing import Any

from deployer.settings import DeployerSettings
from tests.charts.chartsupport import Helm, merge, minimal_values


def render(helm: Helm, **values: Any) -> Any:
    return helm.template("deployer", merge(minimal_values("deployer"), values))


def test_two_replicas_by_default_with_a_disruption_budget(helm: Helm) -> None:
    rendered = render(helm)
    assert rendered.deployment["spec"]["replicas"] == 2
    budget = rendered.one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1


def test_each_replica_is_named_by_its_pod_and_advertises_its_own_address(helm: Helm) -> None:
    env = render(helm).pod_spec["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["DEPLOYER_REPLICA_ID"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.name"}
    }
    assert by_name["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert by_name["DEPLOYER_ADVERTISE_URL"]["value"] == "http://$(POD_IP):8000"
    names = [e["name"] for e in env]
    assert names.index("POD_IP") < names.index("DEPLOYER_ADVERTISE_URL"), (
        "$(POD_IP) must be defined first"
    )


def test_the_replicas_may_reach_each_others_api_and_nobody_else_is_let_in(helm: Helm) -> None:
    rendered = render(helm)
    spec = rendered.one("NetworkPolicy")["spec"]
    own = {"podSelector": {"matchLabels": rendered.deployment["spec"]["selector"]["matchLabels"]}}
    assert spec["ingress"] == [{"from": [own], "ports": [{"port": "http", "protocol": "TCP"}]}]
    assert {"to": [own], "ports": [{"port": 8000, "protocol": "TCP"}]} in spec["egress"]


def test_the_lease_time_reaches_the_deployer_and_the_schema_keeps_its_bounds(helm: Helm) -> None:
    rendered = render(helm, leases={"seconds": 15})
    text = rendered.config_data["DEPLOYER_LEASE_SECONDS"]
    assert DeployerSettings(lease_seconds=text).lease_seconds == 15
    refused = helm.template_error(
        "deployer", merge(minimal_values("deployer"), {"leases": {"seconds": 0}})
    )
    assert "seconds" in refused
