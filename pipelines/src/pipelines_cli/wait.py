"""Waiting for the outcome of one deployment, or for its release to reach an environment, read
from the DEPLOY stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from nats import errors as nats_errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from deploy_contract.events import DEPLOY_SUBJECT_PREFIX, DRIFTED_TYPE, DeployEventData, DeployPhase
from deploy_contract.promotions import PROMOTION_TYPE, PromotionEventData, PromotionState
from kit.events import CloudEvent, EventBus, InvalidEventError, PermanentEventError
from kit.events.streams import DEPLOY
from kit.settings import NatsSettings
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.publish import connect

log = logging.getLogger(__name__)

FETCH_BATCH = 256
FETCH_SECONDS = 2.0
RETRY_SECONDS = 1.0
# The server deletes the ephemeral consumer this long after the last fetch (e.g. a killed job).
CONSUMER_INACTIVE_SECONDS = 60.0


EXIT_CODES = {
    DeployPhase.SUCCEEDED: ExitCode.SUCCEEDED,
    DeployPhase.UNCHANGED: ExitCode.SUCCEEDED,
    DeployPhase.FAILED: ExitCode.FAILED,
    DeployPhase.ROLLED_BACK: ExitCode.FAILED,
    DeployPhase.REJECTED: ExitCode.REJECTED,
    DeployPhase.SUPERSEDED: ExitCode.SUPERSEDED,
}


def exit_code(outcome: DeployEventData | None) -> ExitCode:
    """The exit code for a terminal deploy event, or TIMEOUT when there was none."""
    if outcome is None:
        return ExitCode.TIMEOUT
    return EXIT_CODES[outcome.phase]


def deploy_filter(service: str) -> str:
    """The subjects of every deploy event of ``service``."""
    return f"{DEPLOY_SUBJECT_PREFIX}{service}.>"


def parse_event(msg: Msg) -> DeployEventData | PromotionEventData | None:
    """The data of a deploy or a promotion event, or None for a drift report and (logged) for a
    message that is neither."""
    try:
        event = CloudEvent.from_bytes(msg.data)
        if event.type == DRIFTED_TYPE:
            return None
        if event.type == PROMOTION_TYPE:
            return event.data_as(PromotionEventData)
        return event.data_as(DeployEventData)
    except (InvalidEventError, PermanentEventError) as exc:
        log.warning("ignoring a malformed deploy event on %s: %s", msg.subject, exc)
        return None


def parse_deploy_event(msg: Msg) -> DeployEventData | None:
    """The data of a deploy event, or None for anything else (drift reports, promotions, and,
    logged, a malformed message)."""
    data = parse_event(msg)
    return data if isinstance(data, DeployEventData) else None


class _Reader:
    """An ephemeral pull consumer over the service's whole history in the DEPLOY stream, so an
    outcome published before ``wait`` started is read too. The ci user may create and delete
    consumers on DEPLOY and pull from them, nothing more (platform/nats/local.conf)."""

    def __init__(self, js: JetStreamContext, service: str) -> None:
        self.js = js
        self.service = service
        self.name = f"pipelines-wait-{uuid.uuid4().hex[:12]}"
        self.sub: JetStreamContext.PullSubscription | None = None

    async def open(self) -> JetStreamContext.PullSubscription:
        """Create the consumer (NotFoundError while the stream does not exist) and bind to it."""
        config = ConsumerConfig(
            name=self.name,
            filter_subject=deploy_filter(self.service),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            inactive_threshold=CONSUMER_INACTIVE_SECONDS,
        )
        await self.js.add_consumer(DEPLOY.name, config=config)
        self.sub = await self.js.pull_subscribe_bind(consumer=self.name, stream=DEPLOY.name)
        return self.sub

    async def close(self) -> None:
        """Unsubscribe and delete the consumer; the server would drop it when inactive anyway."""
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(DEPLOY.name, self.name)


async def _messages(
    bus: EventBus, service: str, deadline: float, on_notice: Callable[[str], None]
) -> AsyncGenerator[Msg, None]:
    """Every message of the service's deploy subjects in the DEPLOY stream, from its first, in
    stream order and once each, until ``deadline`` (the loop's clock); acked before it is
    yielded. Close it (``contextlib.aclosing``) to delete the consumer."""
    loop = asyncio.get_running_loop()
    reader = _Reader(bus.js, service)
    seen: set[int] = set()
    stream_missing_noted = False
    try:
        while (remaining := deadline - loop.time()) > 0:
            sub = reader.sub
            if sub is None:
                try:
                    sub = await reader.open()
                except NotFoundError:
                    if not stream_missing_noted:
                        on_notice(
                            f"stream {DEPLOY.name} does not exist yet (is the deployer running?); "
                            "waiting for it"
                        )
                        stream_missing_noted = True
                    await asyncio.sleep(min(RETRY_SECONDS, remaining))
                    continue
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=min(FETCH_SECONDS, remaining))
            except TimeoutError:
                continue
            except nats_errors.Error as exc:
                # The consumer went away (server restart, inactivity): make a new one; the stream
                # sequences already seen are skipped.
                on_notice(f"re-reading {DEPLOY.name} after {exc!r}")
                await reader.close()
                reader = _Reader(bus.js, service)
                await asyncio.sleep(min(RETRY_SECONDS, remaining))
                continue
            for msg in msgs:
                await msg.ack()
                sequence = msg.metadata.sequence.stream
                if sequence in seen:
                    continue
                seen.add(sequence)
                yield msg
    finally:
        await reader.close()


async def wait_for_outcome(
    settings: NatsSettings,
    service: str,
    deployment_id: str,
    timeout: float,
    on_event: Callable[[DeployEventData], None],
    on_notice: Callable[[str], None],
) -> DeployEventData | None:
    """Follow deployment ``deployment_id`` of ``service`` until a terminal phase, or None after
    ``timeout`` seconds.

    Every event of the deployment goes to ``on_event`` in stream order; ``on_notice`` gets
    one-line notes on waiting conditions (stream missing, consumer recreated).
    """
    deadline = asyncio.get_running_loop().time() + timeout
    bus = await connect(settings)
    try:
        async with contextlib.aclosing(_messages(bus, service, deadline, on_notice)) as messages:
            async for msg in messages:
                data = parse_deploy_event(msg)
                if data is None or data.deployment_id != deployment_id:
                    continue
                on_event(data)
                if data.phase.terminal:
                    return data
        return None
    finally:
        await bus.drain()


PROMOTION_EXIT_CODES = {
    PromotionState.FAILED: ExitCode.FAILED,
    PromotionState.CANCELLED: ExitCode.REJECTED,
    PromotionState.SUPERSEDED: ExitCode.SUPERSEDED,
}
"""The promotion states that end a wait for a release in an environment: a gate failed or the
environment refused the release; a person cancelled it (like a denied approval); a newer release
took its place."""


@dataclass(frozen=True)
class Arrival:
    """How waiting for a release in an environment ended: the exit code, and why in one line."""

    code: ExitCode
    summary: str


class ReleaseWatch:
    """Follows the release of deployment ``deployment_id`` (the one CI's event started) into
    ``environment``, one event at a time in stream order; pure, so the rules are testable alone.

    The release is the ``release_id`` of the deployment's events, or, from a deployer that does
    not send one, the image it deploys. It has arrived when a deployment of it in the
    environment ends; it never will when the deployment CI started ends without success
    elsewhere, or a promotion of it into the environment fails, is cancelled or superseded.
    The deployer promotes a release into an environment once, so when the same release was
    published before, the end it already had there (seen earlier in the stream) is the answer,
    once the deployment CI started succeeded.
    """

    def __init__(self, deployment_id: str, environment: str) -> None:
        self.deployment_id = deployment_id
        self.environment = environment
        self.release_id: str | None = None
        self.image: str | None = None
        self._seen_deployment = False
        self._earlier: dict[tuple[str, str], Arrival] = {}

    def take(self, data: DeployEventData | PromotionEventData) -> tuple[bool, Arrival | None]:
        """Whether ``data`` is part of the release's way (to print), and the end it makes, if
        it ends the wait."""
        if isinstance(data, DeployEventData) and data.deployment_id == self.deployment_id:
            return True, self._own(data)
        if data.environment != self.environment:
            return False, None
        if not self._seen_deployment:
            self._remember(data)
            return False, None
        if not self._same_release(data.release_id, data.image):
            return False, None
        return True, self._ended(data)

    def _own(self, data: DeployEventData) -> Arrival | None:
        """An event of the deployment CI started."""
        self._seen_deployment = True
        self.release_id = self.release_id or data.release_id
        self.image = self.image or data.image
        if not data.phase.terminal:
            return None
        where = f" in {data.environment}" if data.environment else ""
        ended = f"deployment {data.deployment_id} of {data.service}{where} ended {data.phase}"
        if data.environment == self.environment:
            return Arrival(EXIT_CODES[data.phase], ended)
        if EXIT_CODES[data.phase] is not ExitCode.SUCCEEDED:
            return Arrival(
                EXIT_CODES[data.phase], f"{ended}: its release does not reach {self.environment}"
            )
        keys = [("release", self.release_id or ""), ("image", self.image or "")]
        return next((self._earlier[key] for key in keys if key in self._earlier), None)

    def _ended(self, data: DeployEventData | PromotionEventData) -> Arrival | None:
        """The end an event of the release in the environment makes, if any."""
        if isinstance(data, DeployEventData):
            if not data.phase.terminal:
                return None
            return Arrival(
                EXIT_CODES[data.phase],
                f"deployment {data.deployment_id} of {data.service} in {data.environment} "
                f"ended {data.phase}",
            )
        if data.state in PROMOTION_EXIT_CODES:
            return Arrival(
                PROMOTION_EXIT_CODES[data.state],
                f"promotion {data.promotion_id} of {data.service} into {data.environment} ended "
                f"{data.state}: {data.reason}",
            )
        return None

    def _remember(self, data: DeployEventData | PromotionEventData) -> None:
        """Before the release is known: the last end each release had in the environment (a
        promotion waiting again forgets it)."""
        if data.release_id:
            key = ("release", data.release_id)
        elif data.image:
            key = ("image", data.image)
        else:
            return  # a rollback by revision: of no release
        ended = self._ended(data)
        if ended is not None:
            self._earlier[key] = Arrival(ended.code, f"{ended.summary} (before this run)")
        elif isinstance(data, PromotionEventData) and not data.state.final:
            self._earlier.pop(key, None)

    def _same_release(self, release_id: str | None, image: str | None) -> bool:
        if self.release_id is not None and release_id is not None:
            return release_id == self.release_id
        return self.image is not None and image == self.image


async def wait_for_release(
    settings: NatsSettings,
    service: str,
    deployment_id: str,
    environment: str,
    timeout: float,
    on_event: Callable[[DeployEventData], None],
    on_promotion: Callable[[PromotionEventData], None],
    on_notice: Callable[[str], None],
) -> Arrival | None:
    """Follow the release of deployment ``deployment_id`` of ``service`` until it ends in
    ``environment`` or cannot get there (:class:`ReleaseWatch`), or None after ``timeout``
    seconds.

    The deployment's own events and the release's events in ``environment`` go to ``on_event``,
    the promotions of the release into ``environment`` to ``on_promotion``, in stream order.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    watch = ReleaseWatch(deployment_id, environment)
    bus = await connect(settings)
    try:
        async with contextlib.aclosing(_messages(bus, service, deadline, on_notice)) as messages:
            async for msg in messages:
                data = parse_event(msg)
                if data is None:
                    continue
                shown, arrival = watch.take(data)
                if shown and isinstance(data, DeployEventData):
                    on_event(data)
                elif shown and isinstance(data, PromotionEventData):
                    on_promotion(data)
                if arrival is not None:
                    return arrival
        return None
    finally:
        await bus.drain()
