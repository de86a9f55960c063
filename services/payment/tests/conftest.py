from collections.abc import Iterator

import pytest

from devkit.localstack.process import ServiceProcess
from devkit.testing.fixtures import DATABASE_KINDS, service_per_database


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def payment_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The payment service as a real process, one per database kind."""
    yield from service_per_database("payment", request, tmp_path_factory)
