"""Small manifests for the plan's and the CLI's tests."""

from __future__ import annotations

from typing import Any

import yaml


def config(level: str) -> dict[str, Any]:
    """A ConfigMap ``app-config`` holding LOG_LEVEL."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config"},
        "data": {"LOG_LEVEL": level},
    }


def manifest(*objects: dict[str, Any]) -> str:
    """``objects`` as one multi-document manifest."""
    return yaml.safe_dump_all(objects)
