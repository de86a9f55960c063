"""The deployer chart carries the deploy policy and the scoped API tokens to the deployer."""

from __future__ import annotations

import json

from deployer.intake.policy import load_policy
from tests.charts.chartsupport import Helm, merge, minimal_values

POLICY = {
    "sharedSecrets": ["flotilla-identity"],
    "default": {"allow": {"replicaCount": {"min": 1, "max": 10}}},
    "services": {
        "order": {
            "allow": {"resources.limits.memory": {"max": "1Gi"}},
            "requireApproval": ["limit-lowered"],
            "environments": {"production": {"allow": {}}},
        }
    },
}


def test_the_policy_reaches_the_deployer_as_json_it_accepts(helm: Helm) -> None:
    rendered = helm.template("deployer", merge(minimal_values("deployer"), {"policy": POLICY}))
    policy = load_policy(rendered.config_data["DEPLOYER_POLICY"], None)
    assert policy.rules("order", "production").allow == {}
    assert [r.value for r in policy.rules("order", "test").require_approval] == ["limit-lowered"]
    assert json.loads(rendered.config_data["DEPLOYER_POLICY"]) == POLICY
    default = helm.template("deployer", minimal_values("deployer"))
    assert "DEPLOYER_POLICY" not in default.config_data  # the image alone


def test_a_malformed_policy_is_refused_by_helm_naming_the_field(helm: Helm) -> None:
    bad = {"default": {"requireApproval": ["coffee"]}}
    error = helm.template_error("deployer", merge(minimal_values("deployer"), {"policy": bad}))
    assert "at '/policy/default/requireApproval/0'" in error
    error = helm.template_error(
        "deployer", merge(minimal_values("deployer"), {"policy": {"defaults": {}}})
    )
    assert "additional properties 'defaults' not allowed" in error


def test_scoped_tokens_come_from_the_api_secret(helm: Helm) -> None:
    values = merge(
        minimal_values("deployer"),
        {"api": {"existingSecret": "deployer-api", "tokenKey": "", "tokensKey": "tokens.yaml"}},
    )
    env = {e["name"]: e for e in helm.template("deployer", values).pod_spec["containers"][0]["env"]}
    assert "DEPLOYER_API_TOKEN" not in env
    assert env["DEPLOYER_API_TOKENS"]["valueFrom"]["secretKeyRef"] == {
        "name": "deployer-api",
        "key": "tokens.yaml",
    }
