"""The gateway against its own OpenAPI document (schemathesis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from kit.testing.process import ServiceProcess

# Per operation and mode; the gateway documents 35 operations.
EXAMPLES = 5


def test_every_operation_matches_the_openapi_document(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    """No 5xx, and the gateway's own answers (errors, challenges) as documented.

    What an upstream accepts (bodies, methods) is in the upstream's document, not the
    gateway's, so a request that is valid here may still be refused there.
    """
    schema = schemathesis.openapi.from_url(f"{gateway.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {mint()}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

            try:
                check()
            except Unsatisfiable:
                pass  # no parameters or body: there is no invalid request to make
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)
