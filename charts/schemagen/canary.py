"""The service charts' canary values: ``strategy``, which the deployer reads (generated from its
model), and ``canary``, which the deployer sets while a canary runs."""

from __future__ import annotations

from deployer.canary.strategy import StrategyValues
from kit import naming

from .builders import IMAGE_REPOSITORY, IMMUTABLE_TAG, Schema, empty_or, integer, obj, string
from .models import from_model


def strategy() -> Schema:
    """strategy: how a new image reaches the pods, generated from the deployer's StrategyValues.

    The charts' values.yaml set every key, so every key but an optional one is required.
    """
    return from_model(
        StrategyValues,
        every_key_required=True,
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
