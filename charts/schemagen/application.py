"""The schema of an application chart: the common values, the chart's own, production's rules."""

from __future__ import annotations

from .builders import (
    DATA_KEY,
    DNS_SUBDOMAIN,
    QUANTITY,
    TRACK_LABEL,
    Schema,
    empty_or,
    integer,
    obj,
    peers,
    secret_name,
    string,
    string_map,
)
from .canary import canary_state, strategy
from .common import common_properties
from .deployer_chart import deployer_properties
from .discovery import CHARTS_WITH_DATABASE, SERVICE_CHARTS


def network_policy(chart: str) -> Schema:
    """The networkPolicy values; charts with a database or the Kubernetes API add their peers."""
    properties: Schema = {
        "enabled": {"type": "boolean"},
        "allowIngressFromAnywhere": {"type": "boolean"},
        "ingressFrom": peers("Peers that may call the http port."),
        "metricsFrom": peers("Peers that may scrape it when serviceMonitor.enabled."),
        "dnsTo": peers("The cluster DNS pods."),
        "natsTo": peers("The NATS server pods; empty: any destination on natsPort."),
        "natsPort": integer(1, 65535),
        "extraIngress": peers("More ingress rules."),
        "extraEgress": peers("More egress rules."),
    }
    if chart in CHARTS_WITH_DATABASE:
        properties["databaseTo"] = peers("The database; empty: any destination on databasePort.")
        properties["databasePort"] = integer(1, 65535)
    if chart == "deployer":
        properties["kubernetesApiTo"] = peers("The Kubernetes API server endpoints.")
        properties["kubernetesApiPorts"] = {
            "type": "array",
            "minItems": 1,
            "items": integer(1, 65535),
        }
    return obj(properties)


def chart_properties(chart: str) -> tuple[Schema, dict[str, list[str]]]:
    """Keys only ``chart`` has, and which secret references production requires."""
    required_in_production: dict[str, list[str]] = {
        "nats": ["existingSecret"],
        "identity": ["existingSecret"],
    }
    properties: Schema = {}
    if chart in SERVICE_CHARTS:
        properties["strategy"] = strategy()
        properties["canary"] = canary_state()
        # A "not" on the key itself rather than propertyNames: helm's validator reports
        # propertyNames failures at the wrong path, this one at /podLabels/flotilla.dev~1track.
        properties["podLabels"] = {
            **string_map(f"Extra pod labels (part of the pod template); not {TRACK_LABEL}."),
            "properties": {
                TRACK_LABEL: {"not": {}, "description": "Set by the chart, on canary pods only."}
            },
        }
    if chart in CHARTS_WITH_DATABASE:
        persistence = obj(
            {
                "enabled": {"type": "boolean"},
                "existingClaim": string(empty_or(DNS_SUBDOMAIN), "Claim to use; empty: create."),
                "storageClassName": string(
                    empty_or(DNS_SUBDOMAIN), "Empty: the cluster's default StorageClass."
                ),
                "size": string(QUANTITY, "Requested storage.", 1),
            },
            description="SQLite on a PersistentVolumeClaim: one replica, Recreate rollouts.",
        )
        properties["database"] = obj(
            {
                "existingSecret": secret_name(
                    "Secret with DATABASE_URL (PostgreSQL); required for more than one replica."
                ),
                "urlKey": string(DATA_KEY, min_length=1),
                "sqlite": obj({"persistence": persistence}),
            }
        )
        required_in_production["database"] = ["existingSecret"]
    if chart == "auth":
        key_id = string(r"^$|^[A-Za-z0-9._-]{1,64}$")
        properties["signingKeys"] = obj(
            {
                "existingSecret": secret_name("Secret with the JWT signing keys (PEM files)."),
                "mountPath": string(r"^/[^\s]*$", min_length=2),
                "signingKeyKey": string(DATA_KEY, "Its key with the private key.", 1),
                "keyId": key_id,
                "previousPublicKeyKey": string(
                    empty_or(DATA_KEY), "Its key with the previous public key (rotation)."
                ),
                "previousKeyId": key_id,
            }
        )
        required_in_production["signingKeys"] = ["existingSecret"]
    if chart == "gateway":
        upstream = string(r"^https?://\S+$", min_length=1)
        properties["upstreams"] = obj(
            {
                "auth": upstream,
                "order": upstream,
                "payment": upstream,
                "jwksPath": string(r"^/\S*$"),
            },
            description="Base URLs of the services the gateway routes to, and auth's JWKS path.",
        )
    if chart == "deployer":
        properties.update(deployer_properties())
        required_in_production["api"] = ["existingSecret"]
    return properties, required_in_production


def chart_envelope(chart: str, properties: Schema) -> Schema:
    """A chart's schema around its properties: strict, every key but the subcharts' required."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Values of the {chart} chart",
        "type": "object",
        "additionalProperties": False,
        "required": sorted(k for k in properties if k not in ("global", "flotilla-lib")),
        "properties": dict(sorted(properties.items())),
    }


def build_schema(chart: str) -> Schema:
    """The complete values.schema.json of one application chart."""
    properties = common_properties()
    extra, required_in_production = chart_properties(chart)
    properties.update(extra)
    properties["networkPolicy"] = network_policy(chart)
    nonempty: Schema = {"type": "string", "minLength": 1}
    return {
        **chart_envelope(chart, properties),
        "if": {
            "required": ["config"],
            "properties": {
                "config": {
                    "required": ["environment"],
                    "properties": {"environment": {"const": "production"}},
                }
            },
        },
        "then": {
            "description": "Production takes every secret by reference: set each existingSecret.",
            "properties": {
                group: {"required": keys, "properties": dict.fromkeys(keys, nonempty)}
                for group, keys in sorted(required_in_production.items())
            },
        },
    }
