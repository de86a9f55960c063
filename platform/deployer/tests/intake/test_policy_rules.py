"""The deploy policy, the guardrails and the chart-schema check, on the real charts' values."""

from pathlib import Path
from typing import Any

import pytest

from deploy_contract.events import ArtifactPublished
from deployer.intake.chartvalues import ChartValues, merge
from deployer.intake.checks import Intake, RejectedError
from deployer.intake.guardrails import guardrail_violations
from deployer.intake.policy import (
    DeployPolicy,
    PolicyError,
    Rules,
    approvals_needed,
    load_policy,
    policy_violations,
)
from deployer.plan import plan_release

CHARTS = Path(__file__).resolve().parents[4] / "charts"
SERVICES = ("auth", "order", "payment", "gateway", "order-history")


def rules(allow: dict[str, Any], **more: Any) -> Rules:
    return Rules.model_validate({"allow": allow, **more})


def test_the_default_policy_allows_the_image_alone() -> None:
    policy = DeployPolicy()
    assert list(policy_violations({}, policy.rules("order", "production"))) == []
    [problem] = policy_violations({"replicaCount": 3}, policy.rules("order", "production"))
    assert problem.startswith("values.replicaCount: the deploy policy does not let")
    assert "the image only" in problem


def test_bounds_compare_numbers_and_quantities_by_value() -> None:
    limits = rules(
        {
            "replicaCount": {"min": 1, "max": 10},
            "resources.limits.memory": {"max": "1Gi"},
            "config.logLevel": {"oneOf": ["INFO", "DEBUG"]},
        }
    )
    ok = {"replicaCount": 10, "resources": {"limits": {"memory": "1024Mi"}}}
    assert list(policy_violations(ok, limits)) == []
    problems = list(
        policy_violations(
            {
                "replicaCount": 100000,
                "resources": {"limits": {"memory": "2Gi", "cpu": "1"}},
                "config": {"logLevel": "ERROR"},
            },
            limits,
        )
    )
    assert problems == [
        "values.replicaCount: 100000 is above the maximum 10 (deploy policy)",
        'values.resources.limits.memory: "2Gi" is above the maximum "1Gi" (deploy policy)',
        "values.resources.limits.cpu: the deploy policy does not let a deployment set this path "
        "(allowed: config.logLevel, replicaCount, resources.limits.memory)",
        'values.config.logLevel: "ERROR" is not one of "INFO", "DEBUG" (deploy policy)',
    ]
    assert list(policy_violations({"replicaCount": "many"}, limits)) == [
        'values.replicaCount: "many" is not a number or quantity, but the policy bounds it '
        "(deploy policy)"
    ]


def test_a_path_allows_what_is_under_it_and_the_most_specific_bound_wins() -> None:
    limits = rules({"podAnnotations": {}, "resources": {}, "resources.limits.cpu": {"max": 2}})
    assert list(policy_violations({"podAnnotations": {"a.b/c": "x"}}, limits)) == []
    assert list(policy_violations({"resources": {"requests": {"cpu": "5"}}}, limits)) == []
    [problem] = policy_violations({"resources": {"limits": {"cpu": "3"}}}, limits)
    assert "above the maximum 2" in problem


def test_the_most_specific_entry_is_used_whole() -> None:
    policy = load_policy(
        """
        default: {allow: {replicaCount: {max: 3}}}
        environments:
          production: {allow: {}}
        services:
          order:
            allow: {replicaCount: {max: 10}, podAnnotations: {}}
            environments:
              production: {allow: {replicaCount: {max: 20}}, requireApproval: [limit-lowered]}
        """,
        None,
    )
    assert set(policy.rules("payment", "development").allow) == {"replicaCount"}
    assert policy.rules("payment", "production").allow == {}
    assert set(policy.rules("order", "development").allow) == {"replicaCount", "podAnnotations"}
    production = policy.rules("order", "production")
    assert set(production.allow) == {"replicaCount"}
    assert [r.value for r in production.require_approval] == ["limit-lowered"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default: {allow: {replicaCount: {max: lots}}}", "neither a number nor a quantity"),
        ("default: {allow: {image.tag: {}}}", "the image is always allowed"),
        ("default: {allow: {'a..b': {}}}", "not a dotted path"),
        ("default: {requireApproval: [coffee]}", "requireApproval"),
        ("defaults: {}", "Extra inputs are not permitted"),
        ("default: [", "is not YAML or JSON"),
    ],
)
def test_a_malformed_policy_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match="deploy policy") as refused:
        load_policy(text, None)
    assert message in str(refused.value)


def test_guardrails_keep_secrets_claims_and_accounts_to_the_release() -> None:
    base = merge(ChartValues(CHARTS / "order").defaults(), {})

    def problems(values: dict[str, Any]) -> list[str]:
        return list(guardrail_violations("order", values, base, SERVICES, ["flotilla-identity"]))

    assert problems({"database": {"existingSecret": "order-database"}}) == []
    assert problems({"identity": {"existingSecret": "flotilla-identity"}}) == []
    own = [{"name": "X", "existingSecret": "order", "key": "k"}]
    assert problems({"extraSecretEnv": own}) == []
    [secret] = problems(
        {"extraSecretEnv": [{"name": "DB", "existingSecret": "payment-database", "key": "url"}]}
    )
    assert secret.startswith("values.extraSecretEnv[0].existingSecret: 'payment-database' is not")
    # A longer service name owns its own prefix.
    [longer] = problems({"nats": {"existingSecret": "order-history-nats"}})
    assert "'order-history-nats' is not a Secret of order" in longer
    [pull] = problems({"imagePullSecrets": [{"name": "registry-admin"}]})
    assert pull.startswith("values.imagePullSecrets[0].name")
    [claim] = problems({"database": {"sqlite": {"persistence": {"existingClaim": "auth-sqlite"}}}})
    assert "not a PersistentVolumeClaim of order" in claim
    [account] = problems({"serviceAccount": {"name": "deployer"}})
    assert account.startswith("values.serviceAccount.name: 'deployer' is not a ServiceAccount")
    assert problems({"serviceAccount": {"name": "order"}}) == []


def test_guardrails_refuse_changes_to_security_network_and_probes() -> None:
    base = merge(ChartValues(CHARTS / "order").defaults(), {})

    def problems(values: dict[str, Any]) -> list[str]:
        return list(guardrail_violations("order", values, base, SERVICES))

    [network] = problems({"networkPolicy": {"enabled": False}})
    assert network == (
        "values.networkPolicy.enabled: true -> false: a deployment cannot change the "
        "NetworkPolicy; change it in the environment's values file"
    )
    assert problems({"networkPolicy": {"enabled": True}}) == []  # no change
    assert problems({"networkPolicy": {}}) == []
    assert "security context" in problems({"securityContext": {"runAsUser": 0}})[0]
    assert "the probes" in problems({"probes": {"liveness": {"failureThreshold": 1000}}})[0]
    assert "resource names" in problems({"fullnameOverride": "payment"})[0]
    [label] = problems({"podLabels": {"app.kubernetes.io/name": "gateway", "team": "a"}})
    assert label.startswith("values.podLabels.app.kubernetes.io/name: a deployment cannot set")


def test_the_schema_check_refuses_what_helm_would(tmp_path: Path) -> None:
    (tmp_path / "order.yaml").write_text("database: {existingSecret: order-database}\n")
    allow_all = DeployPolicy.model_validate(
        {"default": {"allow": {"replicaCount": {}, "config": {}, "podAnnotations": {}}}}
    )
    intake = Intake({"order": CHARTS / "order"}, tmp_path, allow_all, "development")

    def request(values: dict[str, Any]) -> ArtifactPublished:
        return ArtifactPublished(
            service="order",
            image="registry.local/order-service:1.0.0-a1b2c3d",
            commit="a1b2c3d",
            pipeline_id="t",
            values=values,
        )

    intake.check_values(request({"replicaCount": 3, "podAnnotations": {"a": "b"}}))
    with pytest.raises(RejectedError) as refused:
        intake.check_values(request({"replicaCount": "two", "config": {"logLevel": "LOUD"}}))
    reason = str(refused.value)
    assert reason.startswith("values refused (2 problems): ")
    assert 'values.replicaCount: "two" is not of type "integer"' in reason
    assert "values.config.logLevel:" in reason
    assert "order chart's values.schema.json" in reason


def test_approval_is_needed_for_the_notices_the_rules_name(tmp_path: Path) -> None:
    def deployment(replicas: int, memory: str, secrets: list[str]) -> str:
        env = [
            {"name": s.upper(), "valueFrom": {"secretKeyRef": {"name": s, "key": "k"}}}
            for s in secrets
        ]
        return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: order}}
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: order
          image: order:1.0.0-a1b2c3d
          env: {env}
          resources: {{limits: {{cpu: 500m, memory: {memory}}}}}
"""

    before = deployment(2, "256Mi", ["order-database"])
    after = deployment(6, "128Mi", ["order-database", "order-extra"])
    plan = plan_release("order", before, after)
    assert {n.kind.value for n in plan.notices} == {
        "limit-lowered",
        "replicas-changed",
        "secret-added",
    }
    assert "Deployment/order replicas 2 -> 6 (x3)" in plan.warnings
    assert "Deployment/order the pods now read Secret/order-extra" in plan.warnings
    gated = rules({}, requireApproval=["replicas-changed", "secret-added"])
    assert approvals_needed(plan, gated) == [
        "replicas-changed: Deployment/order replicas 2 -> 6 (x3)",
        "secret-added: Deployment/order the pods now read Secret/order-extra",
    ]
    relaxed = rules({}, requireApproval=["replicas-changed"], replicasFactor=3)
    assert approvals_needed(plan, relaxed) == []  # x3 is not more than a factor of 3
    assert approvals_needed(plan_release("order", None, after), gated) == []  # a first install
