"""The values every application chart shares (read by flotilla-lib)."""

from __future__ import annotations

from kit import naming

from .builders import (
    DATA_KEY,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    DURATION,
    ENV_NAME,
    IMAGE_REPOSITORY,
    IMMUTABLE_TAG,
    INT_OR_PERCENT,
    NATS_SERVERS,
    QUANTITY,
    QUANTITY_VALUE,
    Schema,
    empty_or,
    integer,
    obj,
    passthrough,
    probe,
    secret_name,
    string,
    string_map,
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
                "url": string(
                    NATS_SERVERS,
                    "NATS_URL: one server, or every member of a cluster separated by commas.",
                    1,
                ),
                "user": string(description="NATS_USER (not secret); used with passwordKey."),
                "existingSecret": secret_name("Secret with this service's NATS credentials."),
                "passwordKey": string(DATA_KEY, "Key of the password (NATS_PASSWORD).", 1),
                "credsKey": string(
                    empty_or(DATA_KEY), "Key of a .creds file instead (NATS_CREDS_FILE)."
                ),
                "streamReplicas": {
                    "enum": [1, 3, 5],
                    "description": "NATS_STREAM_REPLICAS: the copies of every stream and key-value "
                    "bucket the service creates (3 on a three-member cluster, 1 on one server).",
                },
            },
            required=["url", "user", "existingSecret", "passwordKey", "credsKey", "streamReplicas"],
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
