"""The app factory: a service is its settings, routers, event handlers and background workers."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from sqlalchemy.ext.asyncio import AsyncSession

from kit.api_document import install_document_rules
from kit.db import Database
from kit.draining import CloseConnections, Drain
from kit.events.bus import EventBus
from kit.events.consumer import Consumer, HandlerDependencies, Subscription
from kit.events.idempotency import kit_metadata
from kit.events.outbox import Outbox
from kit.events.streams import DEAD_LETTER, StreamSpec
from kit.faults import injected_errors
from kit.health import ReadinessCheck, health_router
from kit.http_methods import HeadServedAsGet
from kit.http_middleware import RequestObservabilityMiddleware
from kit.logs import configure_logging
from kit.metrics import metrics_endpoint
from kit.problems import install_problem_handlers
from kit.settings import (
    DatabaseSettings,
    IdentitySettings,
    NatsSettings,
    ServiceSettings,
    TelemetrySettings,
    load_settings,
    refuse_placeholder_secrets,
)
from kit.tracing import configure_tracing

log = logging.getLogger(__name__)

Worker = Callable[["Runtime"], Coroutine[Any, Any, None]]
StartHook = Callable[["Runtime"], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that makes one service what it is; the chassis supplies the rest."""

    name: str
    version: str = "0.1.0"
    description: str = ""
    routers: Sequence[APIRouter] = ()
    subscriptions: Sequence[Subscription] = ()
    streams: Sequence[StreamSpec] = ()
    migrations: Path | None = None
    uses_database: bool = False
    uses_nats: bool = True
    outbox: bool = False
    workers: Sequence[Worker] = ()
    # Run once the database is migrated and NATS connected (its streams provisioned), before
    # any consumer or worker starts: what the handlers need that the chassis does not build.
    # A hook that raises is retried, like the stream set-up, until it succeeds or shutdown.
    on_start: StartHook | None = None
    app_hooks: Sequence[Callable[[FastAPI], None]] = ()
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)


@dataclass
class Settings:
    """The chassis settings of one process, loaded and validated together."""

    service: ServiceSettings
    nats: NatsSettings
    database: DatabaseSettings
    identity: IdentitySettings
    telemetry: TelemetrySettings

    @classmethod
    def load(cls, service_name: str) -> Settings:
        """Read every group from the environment, refusing placeholder secrets in production."""
        settings = cls(
            service=load_settings(ServiceSettings, name=service_name),
            nats=load_settings(NatsSettings),
            database=load_settings(DatabaseSettings),
            identity=load_settings(IdentitySettings),
            telemetry=load_settings(TelemetrySettings),
        )
        refuse_placeholder_secrets(
            settings.service.environment, settings.nats, settings.database, settings.identity
        )
        return settings


class Runtime:
    """The live parts of a running service: bus, database, consumers and workers."""

    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.bus = EventBus(settings.nats, client_name=spec.name)
        self.db = (
            Database.from_settings(settings.database, spec.name)
            if spec.uses_database or spec.migrations is not None
            else None
        )
        self.outbox: Outbox | None = None
        if spec.outbox:
            if self.db is None:
                raise ValueError(f"{spec.name}: the outbox needs a database (set migrations)")
            self.outbox = Outbox(self.db, self.bus)
        dependencies = HandlerDependencies(database=self.db, outbox=self.outbox)
        self.consumers = [
            Consumer(self.bus, s, spec.name, dependencies) for s in spec.subscriptions
        ]
        self._stop = asyncio.Event()
        self.drain = Drain()
        self._starter: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def database(self) -> Database:
        """The service's database; a clear error when the spec declared none."""
        if self.db is None:
            raise RuntimeError(f"{self.spec.name} declared no database (ServiceSpec.migrations)")
        return self.db

    @property
    def events_outbox(self) -> Outbox:
        """The service's outbox; a clear error when the spec declared none."""
        if self.outbox is None:
            raise RuntimeError(f"{self.spec.name} declared no outbox (ServiceSpec.outbox)")
        return self.outbox

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """The checks behind /readyz: not draining, NATS connected, database reachable."""

        async def nats_connected() -> None:
            if not self.bus.is_connected:
                raise ConnectionError("not connected to NATS")

        checks: dict[str, ReadinessCheck] = {"draining": self.drain.check}
        if self.spec.uses_nats:
            checks["nats"] = nats_connected
        if self.db is not None:
            checks["database"] = self.db.ping
        return {**checks, **self.spec.readiness}

    async def start(self) -> None:
        """Prepare the database now; connect, run on_start, consume and work in the background."""
        if self.db is not None:
            await self.db.create_tables(kit_metadata)
            if self.spec.migrations is not None:
                from kit.migrations import upgrade_to_head  # Alembic is slow to import

                await upgrade_to_head(self.db, self.spec.migrations)
            await self.db.warm_up()
        self._starter = asyncio.create_task(self._bring_up(), name="start")

    async def _bring_up(self) -> None:
        if self.spec.uses_nats and not await self.bus.connect_with_retry(self._stop):
            return
        if self.spec.on_start is not None:
            # The hook may publish or open key-value buckets: the streams exist before it runs.
            if self.spec.uses_nats and not await self._until_done(
                "stream set-up", self._ensure_streams
            ):
                return
            if not await self._until_done("start-up hook", self.spec.on_start, self):
                return
        if not await self._until_done("stream or consumer set-up", self._start_consumers):
            return
        self._start_workers()

    async def _ensure_streams(self) -> None:
        streams = {s.name: s for s in (*self.spec.streams, DEAD_LETTER)}
        for sub in self.spec.subscriptions:
            streams.setdefault(sub.stream.name, sub.stream)
        await self.bus.ensure_streams(streams.values())

    async def _start_consumers(self) -> None:
        if self.spec.uses_nats:
            await self._ensure_streams()  # (again) on each attempt: NATS may have restarted
        for consumer in self.consumers:
            await consumer.start()  # a no-op for one started by an earlier attempt

    async def _until_done(
        self, step: str, action: Callable[..., Awaitable[None]], *args: Any
    ) -> bool:
        """Retry ``action`` every second until it succeeds (True) or shutdown begins (False)."""
        while not self._stop.is_set():
            try:
                await action(*args)
                return True
            except Exception as exc:
                log.warning(f"{step} failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
        return False

    def _start_workers(self) -> None:
        if self.outbox is not None:
            self._tasks.append(asyncio.create_task(self.outbox.run(self._stop), name="outbox"))
        for worker in self.spec.workers:
            task = asyncio.create_task(worker(self), name=getattr(worker, "__name__", "worker"))
            task.add_done_callback(_log_worker_end)
            self._tasks.append(task)

    @property
    def stopping(self) -> asyncio.Event:
        """Set when shutdown begins; workers watch it to finish their loop."""
        return self._stop

    async def shutdown(self) -> None:
        """Stop fetching, let in-flight handlers finish, stop workers, drain NATS, close the DB."""
        self._stop.set()
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()  # connecting, provisioning or in on_start: nothing in flight
            await asyncio.gather(self._starter, return_exceptions=True)
        timeout = self.settings.service.shutdown_timeout_seconds
        await asyncio.gather(*(c.stop(timeout) for c in self.consumers))
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.bus.drain()
        if self.db is not None:
            await self.db.close()
        log.info("shutdown complete")


def _log_worker_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background worker crashed",
            extra={"worker": task.get_name()},
            exc_info=task.exception(),
        )


def create_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app of a service from its spec, with the whole chassis wired in."""
    settings = settings or Settings.load(spec.name)
    configure_logging(spec.name, settings.service.log_level)
    configure_tracing(spec.name, settings.telemetry)
    runtime = Runtime(spec, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        runtime.drain.listen()
        # Everything loaded so far lives as long as the process: keep the garbage collector's
        # full collections from walking it again and again (they showed as latency spikes).
        gc.collect()
        gc.freeze()
        # The non-secret settings the process runs with: what `kubectl logs` shows of a pod's
        # configuration (a changed ConfigMap reaches a pod only when it restarts).
        service = settings.service
        if service.fault_error_ratio:
            log.warning(
                "injecting errors: SERVICE_FAULT_ERROR_RATIO answers 500 to this share of the "
                "API's requests (a drill image; never set it otherwise)",
                extra={"ratio": service.fault_error_ratio},
            )
        log.info(
            "service started",
            extra={
                "port": service.port,
                "environment": service.environment.value,
                "log_level": service.log_level,
            },
        )
        yield
        runtime.drain.stop_listening()
        await runtime.shutdown()

    ratio = runtime.settings.service.fault_error_ratio
    app = FastAPI(
        title=spec.name,
        version=spec.version,
        description=spec.description,
        lifespan=lifespan,
        # HTTP spans come from the OpenTelemetry instrumentation below; FastAPI's own telemetry
        # would only wrap every request to find that out.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(injected_errors(ratio))] if ratio else None,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(health_router(lambda request: runtime_of(request).readiness_checks()))
    # An API route (not a plain one), so its requests are counted under route="/metrics"
    # and a canary analysis can leave Prometheus' own scrapes out.
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in spec.routers:
        app.include_router(router)
    install_document_rules(app)
    for hook in spec.app_hooks:
        hook(app)
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    # Added first, so innermost: the middlewares around it see the request's own method.
    app.add_middleware(HeadServedAsGet)
    app.add_middleware(RequestObservabilityMiddleware)
    app.add_middleware(
        CloseConnections,
        drain=runtime.drain,
        max_age_seconds=runtime.settings.service.connection_max_age_seconds,
    )
    return app


def runtime_of(request: Request) -> Runtime:
    """The Runtime of the app serving ``request``."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime_dependency(request: Request) -> Runtime:
    # async: FastAPI would run a plain function in its thread pool.
    return runtime_of(request)


async def get_bus(request: Request) -> EventBus:
    """Dependency: the service's event bus."""
    return runtime_of(request).bus


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Dependency: a database session in one transaction, committed when the route returns."""
    async with runtime_of(request).database.transaction() as session:
        yield session


BusDep = Annotated[EventBus, Depends(get_bus)]
# scope="function": commit before the response is sent, so a failed commit is the client's error.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(_runtime_dependency)]
