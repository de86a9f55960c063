import sys
from collections.abc import Iterator

import pytest

from kit.testing.fixtures import DATABASE_KINDS, database_maker
from kit.testing.nats_server import NatsServer
from kit.testing.process import ServiceProcess


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def payment_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The payment service as a real process, one per database kind."""
    directory = tmp_path_factory.mktemp("payment")
    nats = NatsServer(directory / "nats")
    nats.start()
    process = ServiceProcess(
        "payment",
        [sys.executable, "-m", "payment_service.main"],
        directory,
        env={"NATS_URL": nats.url, "DATABASE_URL": database_maker(request, directory)("payment")},
    )
    process.start()
    process.wait_until("/readyz", 200)
    yield process
    process.stop()
    nats.stop()
