"""Generate every application chart's values.schema.json from one definition.

Helm validates values against each chart's own schema and cannot share a schema file between
charts, so the common part lives here once and each chart adds its own keys. Run

    .venv/bin/python charts/schemagen.py           # rewrite charts/*/values.schema.json
    .venv/bin/python charts/schemagen.py --check   # exit 1 when a committed schema is stale

after changing a schema; the chart tests run --check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kit import layout, naming

Schema = dict[str, Any]

CHARTS_DIR = Path(__file__).resolve().parent
# Discovered, never listed: every services/<name>/ has the chart charts/<name>/, and a chart has a
# database when its values.yaml has a top-level `database` block (what flotilla-lib checks).
SERVICE_CHARTS = layout.service_names(CHARTS_DIR.parent)
CHARTS_WITH_DATABASE = layout.services_with_database(CHARTS_DIR.parent)
ALL_CHARTS = (*SERVICE_CHARTS, "deployer")
# The platform's own dependencies: StatefulSets with a schema of their own (see dependency_schema).
DEPENDENCY_CHARTS = ("nats", "postgres")

# The image rules are kit.naming's, shared with CI and the deployer. The tag pattern cannot match
# "latest"; the explicit `not` below only makes that refusal read clearly.
IMMUTABLE_TAG = naming.IMAGE_TAG
IMAGE_REPOSITORY = naming.IMAGE_REPOSITORY
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DATA_KEY = r"^[-._a-zA-Z0-9]+$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DURATION = r"^[0-9]+(ms|s|m|h)$"
# The label that tells a canary pod from a stable one (flotilla-lib.canaryTrackLabel); podLabels
# may not set it, since the stable pods must not carry it and the canary's value is the chart's.
TRACK_LABEL = "flotilla.dev/track"


def empty_or(pattern: str) -> str:
    """``pattern``, or the empty string."""
    return "^$|" + pattern


def obj(properties: Schema, required: list[str] | None = None, description: str = "") -> Schema:
    """A closed object: unknown keys are refused, so a typo fails instead of being ignored."""
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["additionalProperties"] = False
    schema["required"] = sorted(properties) if required is None else required
    schema["properties"] = properties
    return schema


def integer(minimum: int, maximum: int | None = None, description: str = "") -> Schema:
    """An integer within bounds."""
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def string(pattern: str | None = None, description: str = "", min_length: int = 0) -> Schema:
    """A string, optionally matching a (Go RE2) pattern."""
    schema: Schema = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if pattern:
        schema["pattern"] = pattern
    if description:
        schema["description"] = description
    return schema


def secret_name(description: str) -> Schema:
    """The name of an existing Secret, or empty for "none"."""
    return {"type": "string", "pattern": empty_or(DNS_SUBDOMAIN), "description": description}


def string_map(description: str = "") -> Schema:
    """A map of strings (labels, annotations, node selectors)."""
    schema: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
    if description:
        schema["description"] = description
    return schema


def passthrough(kind: str, description: str) -> Schema:
    """A Kubernetes structure passed through as is; the API server validates it."""
    return {"type": kind, "description": description}


def peers(description: str) -> Schema:
    """A list of NetworkPolicy peers (podSelector / namespaceSelector / ipBlock)."""
    return {"type": "array", "items": {"type": "object"}, "description": description}


INT_OR_PERCENT: Schema = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^[0-9]+%$"},
    ]
}
QUANTITY_VALUE: Schema = {
    "oneOf": [{"type": "string", "pattern": QUANTITY}, {"type": "number", "exclusiveMinimum": 0}]
}


def probe(description: str) -> Schema:
    """Timing of one probe; its path is fixed by the kit (/healthz, /readyz)."""
    return obj(
        {
            "initialDelaySeconds": integer(0),
            "periodSeconds": integer(1),
            "timeoutSeconds": integer(1),
            "failureThreshold": integer(1),
        },
        required=["periodSeconds", "timeoutSeconds", "failureThreshold"],
        description=description,
    )


def common_properties() -> Schema:
    """The values every application chart shares (read by flotilla-lib)."""
    compute = obj({"cpu": QUANTITY_VALUE, "memory": QUANTITY_VALUE}, required=["cpu", "memory"])
    compute["additionalProperties"] = QUANTITY_VALUE
    return {
        "global": {"type": "object", "description": "Helm's values shared with subcharts."},
        "flotilla-lib": {
            "type": "object",
            "description": "Set by Helm for the library dependency; takes no values.",
            "additionalProperties": False,
            "properties": {"global": {"type": "object"}},
        },
        "nameOverride": string(empty_or(DNS_LABEL), "Replaces the chart name."),
        "fullnameOverride": string(empty_or(DNS_LABEL), "Replaces the resource names."),
        "image": obj(
            {
                "repository": string(IMAGE_REPOSITORY, "Image repository, without tag.", 1),
                "tag": {
                    "type": "string",
                    "description": "Immutable tag <semver>-<git sha>, e.g. 1.4.2-a8f3d21. "
                    "Required; never empty or latest.",
                    "minLength": 1,
                    "not": {"const": "latest"},
                    "pattern": IMMUTABLE_TAG,
                },
                "digest": string(
                    empty_or(naming.IMAGE_DIGEST),
                    "Optional sha256:<hex>; when set the image is pulled as repository@digest.",
                ),
                "pullPolicy": {"enum": ["IfNotPresent", "Always", "Never"]},
            },
            required=["repository", "tag", "pullPolicy"],
        ),
        "imagePullSecrets": {
            "type": "array",
            "items": obj({"name": string(DNS_SUBDOMAIN, min_length=1)}),
            "description": "Names of existing image pull Secrets.",
        },
        "replicaCount": integer(1, description="Pods when autoscaling is off; at least 1."),
        "revisionHistoryLimit": integer(0),
        "minReadySeconds": integer(0),
        "progressDeadlineSeconds": integer(1),
        "rollingUpdate": obj(
            {"maxUnavailable": INT_OR_PERCENT, "maxSurge": INT_OR_PERCENT},
            description="RollingUpdate parameters; default maxUnavailable 0, maxSurge 25%.",
        ),
        "resources": obj(
            {"requests": compute, "limits": compute},
            description="Requests and limits of the container; both required (cpu and memory).",
        ),
        "config": obj(
            {
                "environment": {
                    "enum": ["development", "test", "production"],
                    "description": "SERVICE_ENVIRONMENT; production requires every secret "
                    "reference (existingSecret) to be set.",
                },
                "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
                "otelExporterEndpoint": string(
                    r"^$|^(https?|grpc)://\S+$", "OTEL_EXPORTER_OTLP_ENDPOINT; empty: no export."
                ),
                "rollOnChange": {
                    "type": "boolean",
                    "description": "true: the pods carry the checksum/config annotation, so a "
                    "changed ConfigMap rolls them; false: running pods keep the old values until "
                    "they restart (the deployer's plan warns).",
                },
                "extra": {
                    "type": "object",
                    "description": "More non-secret environment variables (NAME: value).",
                    "propertyNames": {"pattern": ENV_NAME},
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
            },
            required=["environment", "logLevel", "otelExporterEndpoint", "rollOnChange", "extra"],
        ),
        "nats": obj(
            {
                "url": string(r"^(nats|tls|ws|wss)://\S+$", "NATS_URL.", 1),
                "user": string(description="NATS_USER (not secret); used with passwordKey."),
                "existingSecret": secret_name("Secret with this service's NATS credentials."),
                "passwordKey": string(DATA_KEY, "Key of the password (NATS_PASSWORD).", 1),
                "credsKey": string(
                    empty_or(DATA_KEY), "Key of a .creds file instead (NATS_CREDS_FILE)."
                ),
            },
            required=["url", "user", "existingSecret", "passwordKey", "credsKey"],
        ),
        "identity": obj(
            {
                "existingSecret": secret_name("Secret with IDENTITY_SHARED_SECRET."),
                "sharedSecretKey": string(DATA_KEY, min_length=1),
            }
        ),
        "extraSecretEnv": {
            "type": "array",
            "description": "More secret environment variables, by reference only.",
            "items": obj(
                {
                    "name": string(ENV_NAME),
                    "existingSecret": string(DNS_SUBDOMAIN, min_length=1),
                    "key": string(DATA_KEY, min_length=1),
                }
            ),
        },
        "service": obj(
            {
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": integer(1, 65535),
                "annotations": string_map(),
            }
        ),
        "lifecycle": obj(
            {
                "preStopSleepSeconds": integer(
                    1, description="preStop: seconds of draining (kit.prestop) before SIGTERM."
                ),
                "shutdownTimeoutSeconds": integer(
                    1, description="SERVICE_SHUTDOWN_TIMEOUT_SECONDS."
                ),
                "terminationGracePeriodSeconds": integer(
                    1,
                    description="Default preStop + shutdown + 5; a value below preStop + "
                    "shutdown is refused.",
                ),
            },
            required=["preStopSleepSeconds", "shutdownTimeoutSeconds"],
        ),
        "probes": obj(
            {
                "startup": probe("startupProbe on /healthz."),
                "liveness": probe("livenessProbe on /healthz."),
                "readiness": probe("readinessProbe on /readyz."),
            }
        ),
        "securityContext": obj(
            {
                "runAsUser": integer(1, description="Non-root user id (not 0)."),
                "runAsGroup": integer(1, description="Non-root group id (not 0)."),
            }
        ),
        "tmpSizeLimit": string(QUANTITY, "Size limit of the /tmp emptyDir."),
        "serviceAccount": obj(
            {
                "create": {"type": "boolean"},
                "name": string(empty_or(DNS_SUBDOMAIN)),
                "annotations": string_map(),
            }
        ),
        "podAnnotations": string_map("Extra pod annotations (part of the pod template)."),
        "podLabels": string_map("Extra pod labels (part of the pod template)."),
        "priorityClassName": string(),
        "nodeSelector": string_map(),
        "tolerations": passthrough("array", "Pod tolerations."),
        "affinity": passthrough("object", "Pod affinity."),
        "topologySpreadConstraints": passthrough("array", "Pod topology spread constraints."),
        "podDisruptionBudget": obj(
            {
                "enabled": {"type": "boolean"},
                "maxUnavailable": INT_OR_PERCENT,
                "minAvailable": INT_OR_PERCENT,
            },
            required=["enabled"],
            description="PodDisruptionBudget; minAvailable wins over maxUnavailable when set.",
        ),
        "autoscaling": obj(
            {
                "enabled": {"type": "boolean"},
                "minReplicas": integer(1),
                "maxReplicas": integer(1),
                "targetCPUUtilizationPercentage": integer(1),
                "targetMemoryUtilizationPercentage": integer(0, description="0: CPU only."),
                "behavior": passthrough("object", "HPA scaling behavior."),
            }
        ),
        "serviceMonitor": obj(
            {
                "enabled": {"type": "boolean"},
                "interval": string(DURATION),
                "scrapeTimeout": string(DURATION),
                "labels": string_map("Labels your Prometheus selects ServiceMonitors by."),
            }
        ),
    }


def canary_steps() -> Schema:
    """strategy.canary.steps: objects of exactly one key, the first a setWeight.

    "Exactly one of setWeight, pause, analysis" is written as one closed object with min/max one
    property rather than a oneOf of three: helm then names the one thing wrong ("maxProperties:
    got 2, want 1", "additional properties 'setweight' not allowed") instead of listing why each
    of the three alternatives failed.
    """
    step: Schema = {
        "type": "object",
        "description": "One step, exactly one of: setWeight (percent of the replicas on the new "
        "image), pause ({} until promoted by hand, or {seconds: N}), analysis ({} or {count: N}).",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {
            "setWeight": integer(1, 100, "Percent of the replicas that run the new image."),
            "pause": obj(
                {"seconds": integer(1, description="Resume after N seconds.")},
                required=[],
                description="{}: wait until promoted by hand; {seconds: N}: wait N seconds.",
            ),
            "analysis": obj(
                {"count": integer(1, description="Measurements; overrides analysis.count.")},
                required=[],
                description="Measure the canary (strategy.canary.analysis) before going on.",
            ),
        },
    }
    first = {**step, "required": ["setWeight"]}
    first["description"] = "The first step is a setWeight: before it no pod runs the new image."
    return {
        "type": "array",
        "minItems": 1,
        "description": "Run in order; a last setWeight below 100 is followed by the promotion.",
        "prefixItems": [first],
        "items": step,
    }


def canary_analysis() -> Schema:
    """strategy.canary.analysis: what one analysis step measures, and its thresholds."""
    share = {"type": "number", "minimum": 0, "maximum": 1}
    return obj(
        {
            "intervalSeconds": integer(5, 3600, "One measurement per interval, over that window."),
            "count": integer(1, 1000, "Measurements per analysis step."),
            "failureLimit": integer(1, description="Failed measurements that abort the canary."),
            "inconclusiveLimit": integer(
                1, description="Inconclusive measurements (no traffic) that pause it."
            ),
            "minRequests": integer(
                1,
                description="Canary requests (or handler deliveries) per window, else the "
                "measurement is inconclusive.",
            ),
            "successRate": {**share, "description": "Lowest non-5xx share of canary requests."},
            "p99Milliseconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Highest canary p99 latency.",
            },
            "maxSuccessRateDrop": {
                **share,
                "description": "Largest drop below the stable pods' success rate (same window).",
            },
            "maxP99Ratio": {
                "type": "number",
                "minimum": 1,
                "description": "Highest canary p99 / stable p99.",
            },
            "maxHandlerFailures": integer(
                0, description="Event deliveries the canary retried or dead-lettered."
            ),
            "maxDeadLetters": integer(0, description="Dead letters from the canary."),
        },
        description="How an analysis step measures the canary (Prometheus) and its thresholds.",
    )


def strategy() -> Schema:
    """strategy: how a new image reaches the pods (the service charts; not the deployer's)."""
    return obj(
        {
            "type": {
                "enum": ["rolling", "canary"],
                "description": "rolling: the Deployment's rolling update; canary: the deployer "
                "runs the new image on a share of the pods and measures it between steps.",
            },
            "canary": obj({"steps": canary_steps(), "analysis": canary_analysis()}),
        },
        description="How a new image reaches the pods; see charts/README.md, Canary.",
    )


def canary_state() -> Schema:
    """canary: set by the deployer while a canary runs (never by hand)."""
    schema = obj(
        {
            "enabled": {"type": "boolean"},
            "replicas": integer(0, description="Canary pods; at least 1 while enabled."),
            "stableReplicas": integer(
                0, description="The stable Deployment's replicas while the canary runs."
            ),
            "image": obj(
                {
                    "repository": string(
                        empty_or(IMAGE_REPOSITORY),
                        "The new image's repository; empty: image.repository.",
                    ),
                    "tag": {
                        "type": "string",
                        "description": "The new image's immutable tag <semver>-<git sha>, as "
                        "image.tag; required while enabled.",
                        "not": {"const": "latest"},
                        "pattern": empty_or(IMMUTABLE_TAG),
                    },
                    "digest": string(
                        empty_or(naming.IMAGE_DIGEST), "Optional sha256:<hex> of the new image."
                    ),
                }
            ),
        },
        description="Set by the deployer while a canary runs, never by hand.",
    )
    schema["if"] = {"required": ["enabled"], "properties": {"enabled": {"const": True}}}
    schema["then"] = {
        "description": "A running canary needs its image tag and at least one pod.",
        "required": ["image", "replicas"],
        "properties": {
            "image": {"required": ["tag"], "properties": {"tag": {"minLength": 1}}},
            "replicas": integer(1),
        },
    }
    return schema


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
                    "description": "Namespaces of the service releases; empty: the release "
                    "namespace.",
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


# Any image tag but latest (the dependency images are tagged by the build, e.g. 2.15.1-a8f3d21).
DEPENDENCY_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
NATS_SIZE = r"^[0-9]+(B|KB|MB|GB|TB|K|M|G|T)$"


def dependency_schema(chart: str) -> Schema:
    """The values.schema.json of the nats or postgres chart."""
    common = common_properties()
    image = obj(
        {
            "repository": common["image"]["properties"]["repository"],
            "tag": {
                "type": "string",
                "description": "The image tag; required, never latest.",
                "minLength": 1,
                "not": {"const": "latest"},
                "pattern": DEPENDENCY_TAG,
            },
            "digest": common["image"]["properties"]["digest"],
            "pullPolicy": common["image"]["properties"]["pullPolicy"],
        },
        required=["repository", "tag", "pullPolicy"],
    )
    claim = obj(
        {
            "storageClassName": string(
                empty_or(DNS_SUBDOMAIN), "Empty: the cluster's default StorageClass."
            ),
            "size": string(QUANTITY, "Requested storage.", 1),
        }
    )
    properties: Schema = {
        key: common[key]
        for key in (
            "global",
            "flotilla-lib",
            "nameOverride",
            "fullnameOverride",
            "imagePullSecrets",
            "resources",
            "securityContext",
            "tmpSizeLimit",
            "podAnnotations",
            "podLabels",
            "priorityClassName",
            "nodeSelector",
            "tolerations",
            "affinity",
        )
    }
    properties["image"] = image
    properties["auth"] = obj(
        {
            "existingSecret": string(
                DNS_SUBDOMAIN, "Secret with one password per user (key: the user name).", 1
            )
        }
    )
    properties["service"] = obj(
        {"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]}, "port": integer(1, 65535)}
    )
    properties["probes"] = obj(
        {
            "startup": probe("startupProbe."),
            "liveness": probe("livenessProbe."),
            "readiness": probe("readinessProbe."),
        }
    )
    properties["terminationGracePeriodSeconds"] = integer(1)
    properties["networkPolicy"] = obj(
        {
            "enabled": {"type": "boolean"},
            "clientsFrom": peers("Peers that may connect; empty: any pod."),
        }
    )
    if chart == "nats":
        properties["server"] = obj(
            {
                "maxPayload": string(NATS_SIZE, "max_payload, e.g. 1MB.", 1),
                "lameDuckDurationSeconds": integer(
                    30, description="lame_duck_duration (nats: >= 30)."
                ),
                "logLevel": {"enum": ["info", "debug", "trace"]},
            }
        )
        properties["jetstream"] = obj(
            {
                "maxMemoryStore": string(NATS_SIZE, "max_memory_store, e.g. 256MB.", 1),
                "maxFileStore": string(NATS_SIZE, "max_file_store, e.g. 2GB.", 1),
                "persistence": claim,
            }
        )
    else:
        properties["databases"] = {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "description": "One database and one login role (its owner) per entry.",
            "items": string(r"^[a-z_][a-z0-9_]{0,62}$", min_length=1),
            "not": {"contains": {"const": "postgres"}},
        }
        properties["server"] = obj(
            {
                "maxConnections": integer(10, description="max_connections."),
                "sharedBuffers": string(r"^[0-9]+(kB|MB|GB)$", "shared_buffers, e.g. 128MB.", 1),
            }
        )
        properties["persistence"] = claim
    return chart_envelope(chart, properties)


def render(chart: str) -> str:
    """The schema of ``chart`` as the committed file text."""
    schema = dependency_schema(chart) if chart in DEPENDENCY_CHARTS else build_schema(chart)
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for chart in (*ALL_CHARTS, *DEPENDENCY_CHARTS):
        path = CHARTS_DIR / chart / "values.schema.json"
        if not (CHARTS_DIR / chart / "Chart.yaml").is_file():
            print(
                f"charts/{chart}/Chart.yaml not found: every service (services/{chart}/) needs "
                f"its chart charts/{chart}/ (make new-service creates both)",
                file=sys.stderr,
            )
            return 1
        text = render(chart)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(CHARTS_DIR.parent)) for p in stale)
        print(f"stale: {names}; run: .venv/bin/python charts/schemagen.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
