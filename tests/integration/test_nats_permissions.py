"""The local NATS config gives each service its own user, limited to its own subjects."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devkit.localstack.nats import NatsServer
from kit.events import CloudEvent, EventBus, PublishDeniedError
from kit.events.streams import AUTH, DEAD_LETTER, DEPLOY, ORDERS, PAYMENTS, PIPELINE
from kit.settings import NatsSettings

PASSWORDS = {name: f"{name}-local-only" for name in ("order", "payment", "ci", "deployer")}


@pytest.fixture(scope="module")
def secured_nats(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(
        tmp_path_factory.mktemp("secured-nats"), config_file=repo_root / "platform/nats/local.conf"
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def connect(secured_nats: NatsServer) -> AsyncIterator[object]:
    buses: list[EventBus] = []

    async def as_user(user: str) -> EventBus:
        settings = NatsSettings(url=secured_nats.url, user=user, password=PASSWORDS[user])
        bus = EventBus(settings, client_name=f"test-{user}")
        await bus.connect()
        buses.append(bus)
        return bus

    yield as_user
    for bus in buses:
        await bus.drain()


def event() -> CloudEvent:
    return CloudEvent.new("dev.flotilla.test.v1", source="/tests", data={})


async def test_each_service_provisions_and_publishes_its_own_subjects(connect: object) -> None:
    order = await connect("order")  # type: ignore[operator]
    await order.ensure_streams([ORDERS, PAYMENTS, DEAD_LETTER])
    ack = await order.publish("orders.created", event())
    assert ack.stream == "ORDERS"

    payment = await connect("payment")  # type: ignore[operator]
    await payment.ensure_streams([PAYMENTS, ORDERS, DEAD_LETTER])
    assert (await payment.publish("payments.succeeded", event())).stream == "PAYMENTS"


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("order", "payments.succeeded"),
        ("order", "pipeline.artifact.order"),
        ("order", "deploy.order.succeeded"),
        ("payment", "orders.created"),
        ("payment", "pipeline.artifact.payment"),
        ("payment", "deadletter.order.order-payments"),
        ("ci", "deploy.order.succeeded"),
        ("deployer", "pipeline.artifact.order"),
    ],
)
async def test_a_user_cannot_publish_on_subjects_it_does_not_own(
    connect: object, user: str, subject: str
) -> None:
    admin = await connect("order")  # type: ignore[operator]
    await admin.ensure_streams([ORDERS, PAYMENTS, DEAD_LETTER])
    for owner, stream in (("ci", PIPELINE), ("deployer", DEPLOY)):
        await (await connect(owner)).ensure_streams([stream])  # type: ignore[operator]

    bus = await connect(user)  # type: ignore[operator]
    with pytest.raises(PublishDeniedError, match=f"denied publishing to '{subject}'") as info:
        await bus.publish(subject, event(), timeout=5)
    assert f"user '{user}'" in str(info.value)


async def test_a_service_cannot_create_another_services_stream(connect: object) -> None:
    payment = await connect("payment")  # type: ignore[operator]
    with pytest.raises(PublishDeniedError, match=r"\$JS.API.STREAM.CREATE.AUTH"):
        await payment.ensure_streams([AUTH])
