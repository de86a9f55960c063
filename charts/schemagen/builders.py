"""The patterns and small schema builders every chart's schema is written with."""

from __future__ import annotations

from typing import Any

from kit import naming
from kit.settings import NATS_SERVER_PATTERN

Schema = dict[str, Any]

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
# NATS_URL as the kit reads it: one server, or several separated by commas (no spaces).
NATS_SERVERS = f"^{NATS_SERVER_PATTERN}(,{NATS_SERVER_PATTERN})*$"
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
