"""The deployer chart's own values: its RBAC, API tokens, deploy policy, environments and drift
detection."""

from __future__ import annotations

from deployer.drift.config import DriftConfig
from deployer.intake.policy import DeployPolicy, ServicePolicy
from deployer.promotion.environments import Environments
from deployer.settings import DeployerSettings

from .builders import DATA_KEY, DNS_LABEL, DNS_SUBDOMAIN, Schema, empty_or, obj, secret_name, string
from .models import field_schema, from_model


def deployer_properties() -> Schema:
    """Keys only the deployer chart has."""
    properties: Schema = {}
    properties["rbac"] = obj(
        {
            "create": {"type": "boolean"},
            "helmStorage": {
                "enum": ["secret", "configmap"],
                "description": "Helm's release storage (HELM_DRIVER); secret needs Secrets.",
            },
            "namespaces": {
                "type": "array",
                "uniqueItems": True,
                "items": string(DNS_LABEL),
                "description": "Namespaces of the service releases; empty: the release namespace.",
            },
        }
    )
    properties["api"] = obj(
        {
            "existingSecret": secret_name("Secret with the HTTP API tokens."),
            "tokenKey": string(
                empty_or(DATA_KEY),
                "Its key with one token of every scope (DEPLOYER_API_TOKEN); empty: none.",
            ),
            "tokensKey": string(
                empty_or(DATA_KEY),
                "Its key with the scoped tokens, YAML (DEPLOYER_API_TOKENS); empty: none.",
            ),
        }
    )
    properties["git"] = obj(
        {
            "existingSecret": secret_name(
                "Secret with the credentials the deployer pushes gitops environments with."
            ),
            "usernameKey": string(DATA_KEY, "Its key for DEPLOYER_GIT_USERNAME."),
            "passwordKey": string(DATA_KEY, "Its key for DEPLOYER_GIT_PASSWORD."),
        }
    )
    properties["leases"] = obj(
        {"seconds": field_schema(DeployerSettings, "lease_seconds")},
        description="The leases the replicas share (DEPLOYER_LEASE_SECONDS): a replica that "
        "stops renewing them loses them after this long, and the standby takes over.",
    )
    properties["policy"] = policy()
    properties["environments"] = environments()
    properties["drift"] = drift()
    return properties


def policy() -> Schema:
    """policy: the deploy policy, generated from the deployer's DeployPolicy.

    The chart checks one shape of rules at every level (the keys, the approvals' kinds, the
    replicas factor) and leaves the bounds and where ``environments`` may nest to the deployer,
    which checks the whole policy when it starts and stops naming the field.
    """
    rules = from_model(
        ServicePolicy,
        replace={"Bound": {"type": "object"}},
        refine={"ServicePolicy.environments": {"additionalProperties": None}},
    )
    return from_model(
        DeployPolicy,
        replace={"Rules": rules, "ServicePolicy": rules},
        # Kubernetes Secret names, which the deployer compares without checking them.
        refine={"DeployPolicy.sharedSecrets": {"items": string(DNS_SUBDOMAIN)}},
        description="The deploy policy (docs/deploy-policy.md): which values a deployment may "
        "set; empty: the image alone. The deployer checks it whole at start.",
    )


def environments() -> Schema:
    """environments: the environments and their promotion rules, generated from the deployer's
    Environments.

    Each environment's shape is checked here; what spans them (unique names, one entry, upstreams
    that exist and never loop) and the freeze windows' times and rules are the deployer's to
    check when it starts, as it does for the policy.
    """
    listed = from_model(
        Environments,
        refine={
            # Empty is the chart's "unset": the deployer then serves its own environment alone.
            "Environments.environments": {"minItems": None},
            # A path inside the deployer's container; "path" is no JSON Schema format.
            "EnvironmentSpec.valuesDir": {"format": None},
            # Local wall-clock times without an offset ("2026-12-24T00:00"), which RFC 3339's
            # date-time refuses; the deployer reads them in the window's timezone.
            "FreezeWindow.start": {"format": None},
            "FreezeWindow.end": {"format": None},
            # An ISO 8601 duration (PT62H) or a number of seconds, as pydantic reads a timedelta.
            "FreezeWindow.duration": {"type": ["string", "number"], "format": None},
        },
    )["properties"]["environments"]
    return {
        "type": listed.pop("type"),
        "description": "The environments in promotion order and their promotion rules "
        "(DEPLOYER_ENVIRONMENTS); empty: the deployer's own environment alone. The deployer "
        "checks them whole at start.",
        **listed,
    }


def drift() -> Schema:
    """drift: the check's interval (DeployerSettings) and rules (DriftConfig), generated."""
    rules = from_model(
        DriftConfig,
        # IgnoreRule checks its paths in a validator, which its JSON schema cannot show.
        refine={"IgnoreRule.paths": {"items": {"type": "string", "pattern": "^/"}}},
    )
    interval = field_schema(DeployerSettings, "drift_interval_seconds")
    return obj(
        {"intervalSeconds": interval, "rules": rules},
        description="Drift detection (docs/deploy-plans.md): how often, and per service what to "
        "do about live objects that differ from the release's manifest.",
    )
