"""The order API against its own OpenAPI document (schemathesis)."""

import uuid

from devkit.localstack.process import ServiceProcess
from devkit.testing.contract import openapi_failures
from devkit.testing.http import as_user


def test_every_operation_matches_the_openapi_document(order_service: ServiceProcess) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    failures = openapi_failures(order_service.base_url, 25, headers=lambda: as_user(user))
    assert not failures, "\n\n".join(failures)
