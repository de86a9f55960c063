"""The deployer chart's own values: its RBAC, API tokens, deploy policy and drift detection."""

from __future__ import annotations

from .builders import DATA_KEY, DNS_LABEL, DNS_SUBDOMAIN, Schema, empty_or, obj, secret_name, string


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
    rules = {
        "type": "object",
        "properties": {
            "allow": {"type": "object", "additionalProperties": {"type": "object"}},
            "requireApproval": {
                "type": "array",
                "items": {"enum": ["limit-lowered", "replicas-changed", "secret-added"]},
            },
            "replicasFactor": {"type": "number", "exclusiveMinimum": 1},
            "environments": {"type": "object"},
        },
        "additionalProperties": False,
    }
    properties["policy"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "sharedSecrets": {"type": "array", "items": string(DNS_SUBDOMAIN)},
            "default": rules,
            "environments": {"type": "object", "additionalProperties": rules},
            "services": {"type": "object", "additionalProperties": rules},
        },
        "description": "The deploy policy (docs/deploy-policy.md): which values a "
        "deployment may set; empty: the image alone. The deployer checks it whole at start.",
    }
    drift_rules = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"enum": ["off", "warn", "correct"]},
            "ignore": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["paths"],
                    "properties": {
                        "paths": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "pattern": "^/"},
                        },
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                    },
                },
            },
        },
    }
    properties["drift"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["intervalSeconds", "rules"],
        "properties": {
            "intervalSeconds": {"type": "number", "minimum": 0},
            "rules": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "default": drift_rules,
                    "services": {"type": "object", "additionalProperties": drift_rules},
                },
            },
        },
        "description": "Drift detection (docs/deploy-plans.md): how often, and per service "
        "what to do about live objects that differ from the release's manifest.",
    }
    return properties
