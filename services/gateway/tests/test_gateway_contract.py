"""The gateway against its own OpenAPI document (schemathesis)."""

from __future__ import annotations

from collections.abc import Callable

from devkit.localstack.process import ServiceProcess
from devkit.testing.contract import openapi_failures

# Per operation and mode; the gateway documents 35 operations.
EXAMPLES = 5


def test_every_operation_matches_the_openapi_document(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    """No 5xx, and the gateway's own answers (errors, challenges) as documented.

    What an upstream accepts (bodies, methods) is in the upstream's document, not the
    gateway's, so a request that is valid here may still be refused there.
    """
    failures = openapi_failures(
        gateway.base_url, EXAMPLES, headers={"Authorization": f"Bearer {mint()}"}
    )
    assert not failures, "\n\n".join(failures)
