"""Durable deployer state in NATS key-value buckets (Helm keeps its own release history): the
record store of :mod:`deployer.report.ports`."""

from __future__ import annotations

import hashlib

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from deployer.records import DeploymentRecord, ServiceState
from deployer.targets import Target
from kit.events.streams import placed, raise_replicas

DEPLOYMENTS_BUCKET = "deployer-deployments"
SERVICES_BUCKET = "deployer-services"
KEEP_SECONDS = 30 * 24 * 3600


def _key(deployment_id: str) -> str:
    # Ids come from CI and may hold characters KV keys do not allow.
    return hashlib.sha256(deployment_id.encode()).hexdigest()[:40]


def _service_key(target: Target) -> str:
    # A target's state is one key: <environment>.<service> (both are valid key tokens).
    return f"{target.environment}.{target.service}" if target.environment else target.service


async def bucket_keys(js: JetStreamContext, name: str) -> list[str]:
    """The keys of the bucket ``name``, from its stream's subjects. nats.py's ``keys()`` lists
    them with a watcher that can signal "no more" before the first key arrives when the process
    is busy, and then finds none."""
    prefix = f"$KV.{name}."
    info = await js.stream_info(f"KV_{name}", subjects_filter=f"{prefix}>")
    return [subject.removeprefix(prefix) for subject in info.state.subjects or {}]


async def bucket(js: JetStreamContext, name: str, ttl: float | None, replicas: int) -> KeyValue:
    """The key-value bucket ``name`` with ``replicas`` copies (``NATS_STREAM_REPLICAS``):
    created (one value per key, kept ``ttl`` seconds) when missing, given more copies when it
    has fewer."""
    try:
        kv = await js.key_value(name)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=name, history=1, ttl=ttl, storage=StorageType.FILE, replicas=replicas
        )
        return await placed(js.create_key_value(config=config), f"KV_{name}", replicas)
    await raise_replicas(js, f"KV_{name}", replicas)
    return kv


class Store:
    """Deployment records by id and the state of each service."""

    def __init__(self, js: JetStreamContext, deployments: KeyValue, services: KeyValue) -> None:
        self._js = js
        self._deployments = deployments
        self._services = services

    @classmethod
    async def open(cls, js: JetStreamContext, replicas: int) -> Store:
        """Open (creating when missing) the deployer's buckets, with ``replicas`` copies."""
        return cls(
            js,
            await bucket(js, DEPLOYMENTS_BUCKET, KEEP_SECONDS, replicas),
            await bucket(js, SERVICES_BUCKET, None, replicas),
        )

    async def get(self, deployment_id: str) -> DeploymentRecord | None:
        """The record of ``deployment_id``, if known."""
        try:
            entry = await self._deployments.get(_key(deployment_id))
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return DeploymentRecord.model_validate_json(entry.value)

    async def put(self, record: DeploymentRecord) -> None:
        """Save ``record`` (last write wins: one lane writes a deployment at a time)."""
        await self._deployments.put(_key(record.id), record.model_dump_json().encode())

    async def all(self) -> list[DeploymentRecord]:
        """Every known deployment, oldest first."""
        keys = await bucket_keys(self._js, DEPLOYMENTS_BUCKET)
        records = []
        for key in keys:
            try:
                entry = await self._deployments.get(key)
            except KeyNotFoundError:
                continue
            if entry.value:
                records.append(DeploymentRecord.model_validate_json(entry.value))
        return sorted(records, key=lambda r: r.received_at)

    async def service(self, target: Target) -> ServiceState | None:
        """The last known state of ``target``."""
        try:
            entry = await self._services.get(_service_key(target))
        except KeyNotFoundError:
            return None
        return ServiceState.model_validate_json(entry.value) if entry.value else None

    async def put_service(self, state: ServiceState) -> None:
        """Save the state of a service."""
        await self._services.put(_service_key(state.target), state.model_dump_json().encode())
