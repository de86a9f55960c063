"""The schemas of the platform's own dependencies, the nats and postgres charts."""

from __future__ import annotations

from .application import chart_envelope
from .builders import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    QUANTITY,
    Schema,
    empty_or,
    integer,
    obj,
    peers,
    probe,
    string,
)
from .common import common_properties

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
        properties["cluster"] = obj(
            {
                # Any count the schema lets through; the chart refuses an even one with a message
                # saying why (nats.replicas).
                "replicas": integer(
                    1, description="The members: 3 (or 5) for a cluster, 1 for a single server."
                ),
                "name": string(empty_or(DNS_LABEL), "The cluster's name; empty: the release's."),
                "noAdvertise": {
                    "type": "boolean",
                    "description": "true: clients are not told the members' pod IPs; they use "
                    "the DNS names of their NATS_URL.",
                },
            }
        )
        properties["networkPolicy"]["properties"]["dnsTo"] = peers(
            "Where a cluster's members resolve each other's names; empty: any destination."
        )
        properties["networkPolicy"]["required"] = sorted(properties["networkPolicy"]["properties"])
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
