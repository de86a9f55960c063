"""Schemathesis against a live service: every operation, valid and invalid data, as documented.

(Schemathesis's own pytest integration does not run on pytest 9, hence this small driver.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok


def openapi_failures(
    base_url: str,
    examples: int,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
) -> list[str]:
    """Run every operation of ``base_url``'s OpenAPI document; returns what failed, if anything.

    Checked: no 5xx, and status codes, content types, bodies and headers as documented. Not
    checked: that schema-valid data is accepted (a service may refuse what JSON Schema cannot
    express, such as a weak password or an amount that does not add up).
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"the OpenAPI document is invalid: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                extra = headers() if callable(headers) else headers
                case.call_and_validate(
                    headers=dict(extra or {}), excluded_checks=[positive_data_acceptance]
                )

            try:
                check()
            except Unsatisfiable:
                pass  # no parameters or body: there is no invalid request to make
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    return failures
