"""Chapter 9's machinery: staging and prod beside the demo's namespace (dev), and the deployer
started again to serve all three, with promotion rules.

On one machine the three environments share the cluster's NATS and PostgreSQL (order's Secrets
are copied into staging and prod); in a real cluster each environment has its own, named by its
values files (docs/environments.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from demo_common import DemoError
from demo_platform import Platform, service_values

# What order needs in a namespace: its NATS user, its database and the platform's identity keys.
ORDER_SECRETS = ("order-nats", "order-database", "flotilla-identity")
STAGING_SOAK_SECONDS = 20
PROD_SOAK_SECONDS = 5
FREEZE_ZONE = "Europe/Berlin"
# Order's pods while a rollout runs on a loaded laptop: the analysis allows a slow p99.
ANALYSIS = {"minSuccessRate": 0.99, "maxP99Seconds": 2.0, "minRequests": 20}


@dataclass(frozen=True)
class Environments:
    """The demo's environments: their namespaces, the configuration the deployer got, and when
    prod's freeze lifts (local time in FREEZE_ZONE)."""

    namespaces: dict[str, str]
    config: dict[str, Any]
    freeze_until: datetime


def environments_config(platform: Platform, now: datetime) -> Environments:
    """dev (the demo's namespace, every service) -> staging (order: soak and analysis) -> prod
    (order: soak, a freeze in effect now for two hours, approval)."""
    dev = platform.namespaces.services
    namespaces = {"dev": dev, "staging": f"{dev}-staging", "prod": f"{dev}-prod"}
    local = now.astimezone(ZoneInfo(FREEZE_ZONE)).replace(second=0, microsecond=0, tzinfo=None)
    until = local + timedelta(hours=2)
    values = platform.run_dir
    config = {
        "environments": [
            {"name": "dev", "namespace": dev, "valuesDir": str(values / "values")},
            {
                "name": "staging",
                "namespace": namespaces["staging"],
                "upstream": "dev",
                "services": ["order"],
                "valuesDir": str(values / "values-staging"),
                "promotion": {"soakSeconds": STAGING_SOAK_SECONDS, "analysis": ANALYSIS},
            },
            {
                "name": "prod",
                "namespace": namespaces["prod"],
                "upstream": "staging",
                "services": ["order"],
                "valuesDir": str(values / "values-prod"),
                "promotion": {
                    "soakSeconds": PROD_SOAK_SECONDS,
                    "approval": True,
                    "freeze": [
                        {
                            "name": "demo-freeze",
                            "reason": "the demo's change freeze",
                            "timezone": FREEZE_ZONE,
                            "start": (local - timedelta(minutes=10)).isoformat(),
                            "end": until.isoformat(),
                        }
                    ],
                },
            },
        ]
    }
    return Environments(namespaces, config, until)


async def prepare_environments(platform: Platform, environments: Environments) -> None:
    """The namespaces of staging and prod with order's Secrets, and their values: order's, with
    one pod (dev keeps the values the deployer had)."""
    for name, namespace in environments.namespaces.items():
        if name == "dev":
            continue
        values = platform.run_dir / f"values-{name}"
        values.mkdir(parents=True, exist_ok=True)
        chart_values = service_values("order", platform.namespaces)
        chart_values["replicaCount"] = 1
        (values / "order.yaml").write_text(json.dumps(chart_values, indent=2))
        platform.supervisor.add_namespace(
            str(platform.kubectl_binary), str(platform.kubeconfig), namespace
        )
        await platform.kubectl(
            "delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
            "--timeout=120s",
        )  # fmt: skip
        await platform.kubectl("create", "namespace", namespace)
        await platform.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
        )
        for secret in ORDER_SECRETS:
            await copy_secret(platform, secret, platform.namespaces.services, namespace)


async def copy_secret(platform: Platform, name: str, source: str, target: str) -> None:
    """The Secret ``name`` of ``source`` created in ``target`` (its data as it is)."""
    found = await platform.kubectl("get", "secret", name, "--namespace", source, "-o", "json")
    secret = json.loads(found.stdout)
    copy = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": target},
        "type": secret.get("type", "Opaque"),
        "data": secret.get("data", {}),
    }
    manifest = platform.run_dir / f"secret-{target}-{name}.json"
    manifest.write_text(json.dumps(copy))
    try:
        await platform.kubectl("apply", "-f", str(manifest))
    finally:
        manifest.unlink(missing_ok=True)


async def serve_environments(platform: Platform, environments: Environments) -> None:
    """Stop the deployer and start it again serving the three environments (what a team does
    when it adds environments to its deployer's configuration)."""
    old = platform.deployer
    if old is None:
        raise DemoError("the deployer is not running")
    platform.supervisor.stop(old)
    await platform.start_deployer(
        {
            "DEPLOYER_ENVIRONMENTS": json.dumps(environments.config),
            "DEPLOYER_PROMOTION_SECONDS": "1",
        }
    )
