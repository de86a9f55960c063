"""The service charts' canary values: ``strategy`` (the deployer reads it) and ``canary`` (the
deployer sets it while a canary runs)."""

from __future__ import annotations

from kit import naming

from .builders import IMAGE_REPOSITORY, IMMUTABLE_TAG, Schema, empty_or, integer, obj, string


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
