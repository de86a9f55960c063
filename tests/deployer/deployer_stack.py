"""The deployer as a real process, with real NATS (the local users and permissions), the pinned
helm and the local control plane; CI's side of the conversation as the `ci` NATS user.

With ``environments`` the deployer serves several environments (DEPLOYER_ENVIRONMENTS); the stack
creates their namespaces, all but its own (the test's), and deletes them when it stops. Every
environment reads the stack's values directory (the kwok values), as none names its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from deploy_contract.drift import DriftReport
from deploy_contract.events import (
    ARTIFACT_PUBLISHED,
    DRIFTED_TYPE,
    DeployEventData,
    pipeline_subject,
)
from deploy_contract.promotions import PROMOTION_TYPE, PromotionEventData
from devkit.localstack.environment import deployer_environment
from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from devkit.localstack.tools import built_tool
from kit.events import CloudEvent, EventBus
from kit.events.streams import DEPLOY, PIPELINE
from kit.layout import service_names, services_with_database
from kit.settings import NatsSettings
from tests.e2e.clustersupport import Kubectl, create_test_namespace, delete_test_namespace

SERVICES = service_names()
WITH_DATABASE = services_with_database()
API_TOKEN = "e2e-deployer-token"
REPOSITORY = "registry.local/{service}-service"
# What the suites' events may set besides the image (the default policy allows the image alone).
TEST_POLICY: dict[str, Any] = {
    "default": {"allow": {"replicaCount": {"min": 1, "max": 10}, "podAnnotations": {}}}
}


async def metric(process: ServiceProcess, name: str) -> float | None:
    """The value of the unlabelled metric ``name`` at the process's /metrics (None: absent)."""
    async with aiohttp.ClientSession() as http, http.get(process.base_url + "/metrics") as r:
        text = await r.text()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def until_metric(process: ServiceProcess, name: str, value: float, timeout: float) -> float:
    """Seconds until ``process``'s metric ``name`` reads ``value``; fails after ``timeout``."""
    began = time.monotonic()
    while await metric(process, name) != value:
        assert time.monotonic() - began < timeout, (
            f"{process.name}: {name} not {value} in {timeout} s"
        )
        await asyncio.sleep(0.1)
    return time.monotonic() - began


def image(service: str, tag: str) -> str:
    """An image reference of ``service`` (kwok never pulls it)."""
    return f"{REPOSITORY.format(service=service)}:{tag}"


def kwok_values(service: str) -> dict[str, Any]:
    """Small and quick on kwok: one replica, ready half a second after it starts; PostgreSQL by
    reference (the charts refuse SQLite on an emptyDir; kwok starts no pod)."""
    service_values: dict[str, Any] = {
        "replicaCount": 1,
        "podAnnotations": {"flotilla.dev/ready-after": "500ms"},
    }
    if service in WITH_DATABASE:
        service_values["database"] = {"existingSecret": f"{service}-database"}
    return service_values


class DeployerStack:
    """NATS + the deployer process for one namespace of the session's cluster."""

    def __init__(
        self,
        repo: Path,
        directory: Path,
        kubeconfig: Path,
        namespace: str,
        *,
        policy: dict[str, Any] | None = None,
        tokens: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
        values: dict[str, dict[str, Any]] | None = None,
        environments: dict[str, Any] | None = None,
    ) -> None:
        self.repo = repo
        self.environments = environments
        self.extra_env = env or {}
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.policy = TEST_POLICY if policy is None else policy
        self.tokens = tokens
        self.nats = NatsServer(directory / "nats", config_file=repo / "platform/nats/local.conf")
        real_helm = built_tool("helm", repo)
        # The real helm, behind a script that notes each run's arguments (helm_calls()).
        self.helm_log = directory / "helm-calls.log"
        self.helm_binary = directory / "helm"
        self.helm_binary.write_text(
            f'#!/bin/sh\necho "$*" >> {shlex.quote(str(self.helm_log))}\n'
            f'exec {shlex.quote(str(real_helm))} "$@"\n'
        )
        self.helm_binary.chmod(0o755)
        values_dir = directory / "values"
        values_dir.mkdir()
        for service in SERVICES:
            service_values = (values or {}).get(service) or kwok_values(service)
            (values_dir / f"{service}.yaml").write_text(json.dumps(service_values))
        self.directory = directory
        self.values_dir = values_dir
        self.kubectl = Kubectl(built_tool("kubectl", repo), kubeconfig)
        self.created_namespaces: list[str] = []
        self.deployer = self._process()
        self.ci = EventBus(
            NatsSettings(url=self.nats.url, user="ci", password="ci-local-only"),
            client_name="e2e-ci",
        )

    @property
    def admin_headers(self) -> dict[str, str]:
        """The Authorization header of the admin token (every scope)."""
        return {"Authorization": f"Bearer {API_TOKEN}"}

    def helm_calls(self, *words: str) -> list[str]:
        """The helm runs so far whose arguments contain every one of ``words``."""
        if not self.helm_log.exists():
            return []
        lines = self.helm_log.read_text().splitlines()
        return [line for line in lines if all(word in line.split() for word in words)]

    def replica(self, replica_id: str) -> ServiceProcess:
        """One more deployer process of the same stack (same NATS, cluster and settings) with
        its own replica id and port: a second replica, started by the caller."""
        process = self._process(name=f"deployer-{replica_id}")
        process.env["DEPLOYER_REPLICA_ID"] = replica_id
        return process

    def _process(self, name: str = "deployer") -> ServiceProcess:
        # No periodic drift check unless a suite asks for one (a check on demand still works).
        extra = {
            "DEPLOYER_POLICY": json.dumps(self.policy),
            "DEPLOYER_DRIFT_INTERVAL_SECONDS": "0",
            **self.extra_env,
        }
        if self.tokens is not None:
            extra["DEPLOYER_API_TOKENS"] = json.dumps(self.tokens)
        if self.environments is not None:
            extra["DEPLOYER_ENVIRONMENTS"] = json.dumps(self.environments)
        return ServiceProcess(
            name,
            [sys.executable, "-m", "deployer.main"],
            self.directory,
            env={
                **deployer_environment(
                    nats_url=self.nats.url,
                    charts_dir=self.repo / "charts",
                    namespaces=self.namespace,
                    helm=self.helm_binary,
                    kubeconfig=self.kubeconfig,
                    values_dir=self.values_dir,
                    helm_timeout_seconds=20,
                    api_token=API_TOKEN,
                ),
                **extra,
            },
        )

    def environment_namespaces(self) -> list[str]:
        """The namespaces of the environments in this cluster (without a kubeContext), each
        once."""
        specs = (self.environments or {}).get("environments", [])
        found = [s["namespace"] for s in specs if not s.get("kubeContext")]
        return list(dict.fromkeys(found))

    async def start(self) -> None:
        missing = [
            name
            for name in self.environment_namespaces()
            if name != self.namespace and name not in self.created_namespaces
        ]
        self.created_namespaces += missing
        await asyncio.gather(
            *(asyncio.to_thread(create_test_namespace, self.kubectl, name) for name in missing)
        )
        await asyncio.to_thread(self.nats.start)
        await self.ci.connect()
        await self.ci.ensure_streams([PIPELINE])
        await self.start_deployer()

    async def start_deployer(self) -> None:
        await asyncio.to_thread(self.deployer.start)
        await asyncio.to_thread(self.deployer.wait_until, "/readyz", 200, 30)

    async def stop(self) -> None:
        await self.ci.drain()
        self.deployer.stop()
        self.nats.stop()
        for name in self.created_namespaces:
            await asyncio.to_thread(delete_test_namespace, self.kubectl, name)

    async def publish(
        self,
        service: str,
        tag: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        event_id: str | None = None,
        subject: str | None = None,
        rollback: bool = False,
        values: dict[str, Any] | None = None,
    ) -> str:
        """Publish CI's artifact event; returns its id (the deployment id)."""
        event = self.artifact_event(service, tag, data, event_id, rollback, values)
        await self.ci.publish(subject or pipeline_subject(service), event)
        return event.id

    @staticmethod
    def artifact_event(
        service: str,
        tag: str | None = None,
        data: dict[str, Any] | None = None,
        event_id: str | None = None,
        rollback: bool = False,
        values: dict[str, Any] | None = None,
    ) -> CloudEvent:
        """CI's artifact event for ``service`` at ``tag`` (or with ``data`` as it is)."""
        tag = tag or "1.0.0-a1b2c3d"
        sha = tag.rsplit("-", 1)[-1]
        return CloudEvent.new(
            ARTIFACT_PUBLISHED,
            source="/pipelines/e2e",
            subject=service,
            id=event_id or f"e2e-{uuid.uuid4().hex[:12]}-{service}",
            data=data
            if data is not None
            else {
                "service": service,
                "image": image(service, tag),
                "commit": sha if len(sha) >= 7 and sha.isalnum() and sha.islower() else "a1b2c3d",
                "pipeline_id": "e2e",
                "rollback": rollback,
                "values": values or {},
            },
        )

    async def _stream(self) -> list[CloudEvent]:
        """Every CloudEvent in the DEPLOY stream so far, in order."""
        js = self.ci.js
        info = await js.stream_info(DEPLOY.name)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(DEPLOY.name, seq)
            except Exception:  # noqa: S112 - a purged sequence
                continue
            assert msg.data is not None
            found.append(CloudEvent.from_bytes(msg.data))
        return found

    async def events(self, deployment_id: str | None = None) -> list[DeployEventData]:
        """Every deploy event so far (of one deployment), in order, read from the stream."""
        found = [
            DeployEventData.model_validate(event.data)
            for event in await self._stream()
            if event.type not in (DRIFTED_TYPE, PROMOTION_TYPE)
        ]
        return [e for e in found if deployment_id is None or e.deployment_id == deployment_id]

    async def promotion_events(self, service: str) -> list[PromotionEventData]:
        """Every promotion event of ``service`` so far, in order, read from the stream."""
        return [
            PromotionEventData.model_validate(event.data)
            for event in await self._stream()
            if event.type == PROMOTION_TYPE and event.subject == service
        ]

    async def drift_reports(self, service: str) -> list[DriftReport]:
        """Every drift report of ``service`` so far, in order, read from the stream."""
        return [
            DriftReport.model_validate(event.data)
            for event in await self._stream()
            if event.type == DRIFTED_TYPE and event.subject == service
        ]

    async def outcome(self, deployment_id: str, timeout: float = 60) -> DeployEventData:
        """Wait for the deployment's terminal event; there must be exactly one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            terminal = [e for e in await self.events(deployment_id) if e.phase.terminal]
            if terminal:
                assert len(terminal) == 1, f"more than one terminal event: {terminal}"
                return terminal[0]
            await asyncio.sleep(0.2)
        phases = [e.phase.value for e in await self.events(deployment_id)]
        raise AssertionError(
            f"no outcome for {deployment_id} in {timeout}s; events: {phases}\n"
            + self.deployer.logs()[-3000:]
        )
