from collections.abc import Iterator

import pytest

from devkit.localstack.process import ServiceProcess
from devkit.testing.fixtures import DATABASE_KINDS, service_per_database


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def order_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The order service as a real process, one per database kind (no payment service running).

    Tests share it, so each uses user ids of its own.
    """
    yield from service_per_database("order", request, tmp_path_factory)
