"""The environment each process of the local stack reads, written once for `make run`, the demo
and the test stacks: NATS users of platform/nats/local.conf, the services' wiring, the deployer's
helm and cluster."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def local_password(user: str) -> str:
    """The public development password of a platform/nats/local.conf user."""
    return f"{user}-local-only"


def nats_environment(user: str, nats_url: str) -> dict[str, str]:
    """How ``user`` reaches the local NATS (its user of platform/nats/local.conf)."""
    return {"NATS_URL": nats_url, "NATS_USER": user, "NATS_PASSWORD": local_password(user)}


def nats_command(binary: str, port: int, store_dir: Path, config: Path | None) -> list[str]:
    """nats-server with JetStream on 127.0.0.1:``port``, its store in ``store_dir``."""
    command = [
        binary,
        "--addr", "127.0.0.1",
        "--port", str(port),
        "--jetstream",
        "--store_dir", str(store_dir),
    ]  # fmt: skip
    return command + (["--config", str(config)] if config is not None else [])


def service_environment(
    name: str, *, nats_url: str, urls: Mapping[str, str], database_url: str
) -> dict[str, str]:
    """What service ``name`` reads when it runs as a local process: its NATS user, its database
    and, for the gateway, where the other services answer (``urls`` by service name)."""
    environment = {
        "SERVICE_ENVIRONMENT": "development",
        "SERVICE_HOST": "127.0.0.1",
        **nats_environment(name, nats_url),
        "DATABASE_URL": database_url,
    }
    upstreams = {
        "GATEWAY_AUTH_URL": urls.get("auth"),
        "GATEWAY_ORDER_URL": urls.get("order"),
        "GATEWAY_PAYMENT_URL": urls.get("payment"),
        "GATEWAY_JWKS_URL": f"{urls['auth']}/auth/jwks.json" if "auth" in urls else None,
    }
    environment.update({key: value for key, value in upstreams.items() if value is not None})
    return environment


def deployer_environment(
    *,
    nats_url: str,
    charts_dir: Path,
    namespaces: str,
    helm: Path,
    kubeconfig: Path,
    values_dir: Path,
    helm_timeout_seconds: float,
    api_token: str,
) -> dict[str, str]:
    """What the deployer reads when it runs as a local process against a local cluster."""
    return {
        "SERVICE_ENVIRONMENT": "development",
        "SERVICE_HOST": "127.0.0.1",
        **nats_environment("deployer", nats_url),
        "DEPLOYER_CHARTS_DIR": str(charts_dir),
        "DEPLOYER_NAMESPACES": namespaces,
        "DEPLOYER_HELM_BINARY": str(helm),
        "DEPLOYER_KUBECONFIG": str(kubeconfig),
        "DEPLOYER_VALUES_DIR": str(values_dir),
        "DEPLOYER_HELM_TIMEOUT_SECONDS": f"{helm_timeout_seconds:g}",
        "DEPLOYER_API_TOKEN": api_token,
        # One local deployer: a stable id lets a restarted one take its leases back at once.
        "DEPLOYER_REPLICA_ID": "local",
    }
