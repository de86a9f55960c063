"""Entry point of the deployer service: the orchestrator, its API and dashboard, on the chassis."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import Any

from fastapi import HTTPException
from pydantic import SecretStr

from deploy_contract.events import PIPELINE_SUBJECT_PREFIX
from deployer.adapters.cluster import Cluster
from deployer.adapters.helm import Helm
from deployer.adapters.prometheus import PrometheusQueries
from deployer.adapters.promotion_store import PromotionKV
from deployer.adapters.store import Store
from deployer.drift.config import DriftConfig, load_drift_config
from deployer.gitops.place import gitops_place
from deployer.ha.fenced import fenced
from deployer.ha.leadership import Leadership
from deployer.ha.leases import Holder, LeaseBook
from deployer.intake.policy import DeployPolicy, PolicyError, load_policy
from deployer.orchestrator import Orchestrator
from deployer.promotion.environments import (
    Environments,
    EnvironmentsError,
    EnvironmentSpec,
    load_environments,
)
from deployer.reconcile.ports import Place, Ports
from deployer.settings import DeployerSettings
from deployer.targets import Target
from deployer.web.api import api_router
from deployer.web.dashboard import dashboard_router
from deployer.web.deps import install
from deployer.web.tokens import TokenBook, TokenError
from kit.app import Runtime, ServiceSpec
from kit.events import CloudEvent, Delivery, EventBus, Subscription
from kit.events.streams import DEPLOY, PIPELINE
from kit.serve import serve
from kit.settings import (
    ConfigurationError,
    Environment,
    ServiceSettings,
    load_settings,
    refuse_placeholder_secrets,
)

log = logging.getLogger(__name__)
CONSUMER = "deployer-pipeline"


class Deployer:
    """Builds the orchestrator in the start-up hook, before the pipeline consumer starts."""

    def __init__(
        self,
        settings: DeployerSettings,
        tokens: TokenBook,
        policy: DeployPolicy,
        environments: Environments,
        drift: DriftConfig | None = None,
    ) -> None:
        self.settings = settings
        self._drift = drift
        self._tokens = tokens
        self._policy = policy
        self._environments = environments
        self._orchestrator: Orchestrator | None = None
        self._clusters: list[Cluster] = []
        self._helms: list[Helm] = []
        self._prometheus: PrometheusQueries | None = None
        self._bus: EventBus | None = None
        self._leader: Leadership | None = None

    def orchestrator(self) -> Orchestrator:
        """The running orchestrator (routes get a 503 problem until it exists)."""
        if self._orchestrator is None:
            raise HTTPException(503, "The deployer is starting (waiting for NATS); retry shortly.")
        return self._orchestrator

    def tokens(self) -> TokenBook:
        """The API tokens."""
        return self._tokens

    async def start(self, runtime: Runtime) -> None:
        """Start-up hook: open the state, then wait to lead; the leader claims the lanes and
        resumes their unfinished deployments.

        The chassis runs it once NATS is up and before the pipeline consumer starts, so only the
        leader consumes pipeline events; a standby replica is ready meanwhile and forwards the
        API to the leader.
        """
        self._bus = runtime.bus
        while True:
            try:
                leadership = await self._leadership(runtime)
                orchestrator = await self._orchestrate(runtime, leadership)
                break
            except Exception as exc:
                log.error("cannot start the orchestrator; retrying", extra={"error": repr(exc)})
                await self._close()
                await asyncio.sleep(self.settings.retry_seconds)
        try:
            # One attempt before the API opens: a lone replica leads from its first request.
            leading = await leadership.try_lead()
            self._orchestrator = orchestrator
            if not leading and not await leadership.lead(runtime.stopping):
                return
            await orchestrator.promoter.resume()
        except BaseException:
            await leadership.step_down()
            raise
        leadership.claim_lanes(orchestrator.targets, self._claimed)

    async def _leadership(self, runtime: Runtime) -> Leadership:
        if self._leader is not None:
            return self._leader
        settings = self.settings
        book = await LeaseBook.open(
            runtime.bus.js,
            ttl_seconds=settings.lease_seconds,
            replicas=runtime.bus.stream_replicas,
        )
        self._leader = Leadership(
            book,
            Holder(replica=replica_id(settings), url=advertise_url(settings, runtime)),
            on_lane_lost=self._lane_lost,
            on_leadership_lost=self._leadership_lost,
        )
        return self._leader

    async def _claimed(self, targets: list[Target]) -> None:
        resumed = await self.orchestrator().resume_lanes(targets)
        if resumed:
            log.info("resumed unfinished deployments", extra={"count": resumed})

    async def _lane_lost(self, target: Target) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.lanes.cancel(target)

    async def _leadership_lost(self) -> None:
        """Another replica may lead now: stop every lane at once (their helm processes too),
        then end the process; its restart stands by."""
        if self._orchestrator is not None:
            await self._orchestrator.lanes.stop(0)
        os.kill(os.getpid(), signal.SIGTERM)

    async def _orchestrate(self, runtime: Runtime, leadership: Leadership) -> Orchestrator:
        """The orchestrator over the real adapters: helm, the Kubernetes API, NATS, Prometheus;
        every write to a release fenced by its lane's lease."""
        settings = self.settings
        store = await Store.open(runtime.bus.js, runtime.bus.stream_replicas)
        places = {
            spec.name: fenced(await self._place(spec), leadership.fence, spec.name)
            for spec in self._environments.environments
        }
        if settings.prometheus_url:
            self._prometheus = PrometheusQueries(
                settings.prometheus_url,
                scrape_interval_seconds=settings.prometheus_scrape_interval_seconds,
            )
        ports = Ports(
            places=places,
            metrics=self._prometheus.numbers if self._prometheus else None,
            store=store,
            publisher=runtime.bus,
            promotions=await PromotionKV.open(runtime.bus.js, runtime.bus.stream_replicas),
        )
        return Orchestrator(
            settings, ports, self._policy, environments=self._environments, drift=self._drift,
            holds=leadership.holds,
        )  # fmt: skip

    async def _place(self, spec: EnvironmentSpec) -> Place:
        """Helm and the Kubernetes API for ``spec``'s namespace (in its cluster); in a gitops
        environment, commits to its repository that Flux applies."""
        settings = self.settings
        helm = Helm(
            settings.helm(), settings.kubeconfig, spec.namespace, kube_context=spec.kube_context,
            warm_renders=settings.warm_renders,
        )  # fmt: skip
        self._helms.append(helm)
        cluster = await self._connect_cluster(spec)
        if spec.gitops is not None:
            if cluster is None:
                raise ConfigurationError(
                    f"environment {spec.name} is a gitops environment: the deployer needs the "
                    "Kubernetes API to follow Flux (set DEPLOYER_KUBECONFIG)"
                )
            return await gitops_place(settings, spec, spec.gitops, helm, cluster)
        return Place(
            namespace=spec.namespace,
            releases=helm,
            apply=helm,
            rollouts=cluster,
            objects=cluster.objects if cluster else None,
        )

    async def run(self, runtime: Runtime) -> None:
        """Worker: decide promotions and check for drift until shutdown, then stop the
        orchestrator."""
        orchestrator = self.orchestrator()
        interval = self.settings.drift_interval_seconds
        loops = [asyncio.create_task(orchestrator.promoter.loop(self.settings.promotion_seconds))]
        if interval > 0:
            loops.append(
                asyncio.create_task(orchestrator.drift.loop(self._drift_targets, interval))
            )
        await runtime.stopping.wait()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        # Half the shutdown budget: the rest drains NATS (the outcome events) after it.
        await orchestrator.stop(runtime.settings.service.shutdown_timeout_seconds / 2)
        if self._leader is not None:
            await self._leader.step_down()  # a standby takes over now, not when leases expire
        await self._close()

    def _drift_targets(self) -> list[Target]:
        """The targets whose drift the deployer owns: Flux owns a gitops environment's."""
        return [
            target
            for target in self.orchestrator().targets()
            if self._environments.get(target.environment).mode == "push"
        ]

    async def _close(self) -> None:
        helms, self._helms = self._helms, []
        for helm in helms:
            helm.close()
        clusters, self._clusters = self._clusters, []
        for cluster in clusters:
            await cluster.close()
        if self._prometheus is not None:
            await self._prometheus.aclose()
            self._prometheus = None

    async def _connect_cluster(self, spec: EnvironmentSpec) -> Cluster | None:
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
        if self.settings.kubeconfig is None and not in_cluster:
            log.warning("no kubeconfig and not in a cluster: rollouts report no progress")
            return None
        cluster = await Cluster.connect(self.settings.kubeconfig, spec.namespace, spec.kube_context)
        self._clusters.append(cluster)
        return cluster

    def leadership(self) -> Leadership | None:
        """Who leads, once the lease book is open (the API forwards to the leader)."""
        return self._leader

    async def ready(self) -> None:
        """Readiness: the orchestrator is up (state opened); a standby replica is ready too, it
        forwards the API to the leader."""
        if self._orchestrator is None:
            raise RuntimeError("the orchestrator is starting")

    async def on_event(self, event: CloudEvent, delivery: Delivery) -> None:
        """Pipeline event handler: the orchestrator accepts or rejects it."""
        await self.orchestrator().admission.on_pipeline_event(event, delivery)

    async def on_invalid(self, raw: bytes, error: str, delivery: Delivery) -> None:
        """A pipeline message that is not a CloudEvent: rejected with the parse error."""
        await self.orchestrator().admission.on_invalid_event(raw, error, delivery)

    async def subscribe_deploy_events(self, callback: Any) -> Any:
        """A core NATS subscription to every deploy event (for the SSE stream)."""
        if self._bus is None:
            raise RuntimeError("the deployer is starting (waiting for NATS)")
        return await self._bus.nc.subscribe("deploy.>", cb=callback)


def build_spec() -> ServiceSpec:
    """The deployer service, configured from DEPLOYER_* variables."""
    settings = load_settings(DeployerSettings)
    environment = load_settings(ServiceSettings, name="deployer").environment
    refuse_placeholder_secrets(environment, settings)  # the API tokens must be real
    deployer = Deployer(
        settings,
        api_tokens(settings, environment),
        deploy_policy(settings),
        deploy_environments(settings, environment),
        drift_config(settings),
    )
    return ServiceSpec(
        name="deployer",
        description="Pipeline events over NATS drive one Helm release per service.",
        routers=[api_router(), dashboard_router()],
        app_hooks=[install(deployer)],
        streams=[PIPELINE, DEPLOY],
        subscriptions=[
            Subscription(
                durable=CONSUMER,
                stream=PIPELINE,
                subjects=(f"{PIPELINE_SUBJECT_PREFIX}>",),
                handler=deployer.on_event,
                on_invalid_event=deployer.on_invalid,
                # Intake is quick (record, then queue); one at a time keeps publish order.
                concurrency=1,
                max_deliver=10,
            )
        ],
        on_start=deployer.start,
        workers=[deployer.run],
        readiness={"orchestrator": deployer.ready},
    )


def replica_id(settings: DeployerSettings) -> str:
    """DEPLOYER_REPLICA_ID, else this host's name and process id (unique on a machine)."""
    return settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"


def advertise_url(settings: DeployerSettings, runtime: Runtime) -> str:
    """Where the other replicas reach this one's API: DEPLOYER_ADVERTISE_URL, else the address
    it listens on (none when that is every interface: set DEPLOYER_ADVERTISE_URL then)."""
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    service = runtime.settings.service
    if service.host in ("0.0.0.0", "::"):  # every interface: no address to give
        return ""
    return f"http://{service.host}:{service.port}"


def api_tokens(settings: DeployerSettings, environment: Environment) -> TokenBook:
    """The scoped tokens and the admin token; "dev" as admin when none is set, in development."""
    scoped, admin = settings.api_tokens, settings.api_token
    if scoped is None and admin is None:
        if environment is not Environment.DEVELOPMENT:
            raise ConfigurationError(
                f"no API token in {environment.value}: set DEPLOYER_API_TOKENS (scoped tokens, "
                "from a Secret) or DEPLOYER_API_TOKEN (one token with every scope)"
            )
        admin = SecretStr("dev")
    try:
        return TokenBook.load(
            scoped.get_secret_value() if scoped else None,
            admin.get_secret_value() if admin else None,
        )
    except TokenError as exc:
        raise ConfigurationError(str(exc)) from None


def deploy_policy(settings: DeployerSettings) -> DeployPolicy:
    """The deploy policy of DEPLOYER_POLICY or DEPLOYER_POLICY_FILE (default: the image alone)."""
    try:
        return load_policy(settings.policy, settings.policy_file)
    except PolicyError as exc:
        raise ConfigurationError(str(exc)) from None


def deploy_environments(settings: DeployerSettings, environment: Environment) -> Environments:
    """The environments of DEPLOYER_ENVIRONMENTS(_FILE); default: this deployer's environment
    alone, in its namespace."""
    alone = EnvironmentSpec(
        name=environment.value, namespace=settings.namespace, values_dir=settings.values_dir
    )
    try:
        environments = load_environments(
            settings.environments, settings.environments_file, default=alone
        )
    except EnvironmentsError as exc:
        raise ConfigurationError(str(exc)) from None
    named = [spec for spec in environments.environments if spec.services]
    known = set(settings.service_charts()) if named else set()
    for spec in named:
        unknown = sorted(set(spec.services or []) - known)
        if unknown:
            raise ConfigurationError(
                f"environment {spec.name} runs {', '.join(unknown)}, which have no chart: the "
                f"services are {', '.join(sorted(known))}"
            )
    gitops = [spec.name for spec in environments.environments if spec.mode == "gitops"]
    if gitops and settings.kubeconfig is None and "KUBERNETES_SERVICE_HOST" not in os.environ:
        raise ConfigurationError(
            f"environments {', '.join(gitops)} are gitops environments: the deployer follows Flux "
            "through the Kubernetes API; set DEPLOYER_KUBECONFIG (or run it in the cluster)"
        )
    contexts = [spec.name for spec in environments.environments if spec.kube_context]
    if contexts and settings.kubeconfig is None:
        raise ConfigurationError(
            f"environments {', '.join(contexts)} name a kubeContext: set DEPLOYER_KUBECONFIG to "
            "the kubeconfig that has those contexts"
        )
    return environments


def drift_config(settings: DeployerSettings) -> DriftConfig:
    """The drift rules of DEPLOYER_DRIFT (default: warn about every field of every release)."""
    try:
        return load_drift_config(settings.drift)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def main() -> None:
    """Run the deployer (configured from the environment)."""
    serve(build_spec)


if __name__ == "__main__":
    main()
