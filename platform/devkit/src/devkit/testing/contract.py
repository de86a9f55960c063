"""Schemathesis against a live API: every operation, every check, as its OpenAPI document says.

The driver runs schemathesis's own engine, the phases of ``st run``: the documented examples,
coverage (boundary values, every way to break each constraint, missing required headers,
methods the document does not list), fuzzing with valid and invalid data, then stateful
sequences that follow the links between operations (an order created, then read). Every check
is on: no 5xx; status codes, content types, bodies and headers as documented; invalid data
refused and valid data accepted; undocumented methods answered 405 with Allow; and no
operation that declares security answering without credentials or with made-up ones.

(Schemathesis's own pytest integration does not run on pytest 9, hence this small driver.)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from random import SystemRandom
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import from_schema
from schemathesis.engine.events import FatalError, NonFatalError, ScenarioFinished

Credentials = Callable[[], Mapping[str, str]]
SEED_VARIABLE = "FLOTILLA_FUZZ_SEED"
# Identity headers last a minute (kit.identity): fetch credentials again well before that.
CREDENTIALS_REFRESH_SECONDS = 20


@dataclass(frozen=True)
class ApiRun:
    """What to test and how much.

    ``credentials`` are headers for each request (a bearer token, the gateway's identity
    headers), asked for again every few seconds. ``exempt`` turns checks off for one operation
    (``"POST /orders"``), each entry with the reason why in the caller's code.
    """

    base_url: str
    examples: int = 10
    credentials: Credentials | None = None
    exempt: Mapping[str, Collection[str]] = field(default_factory=dict)


@dataclass
class ApiReport:
    """What a run found: its failures (each with how to reproduce it), and the requests it sent
    per operation (``"GET /orders"``), to tell a run that tested nothing from a clean one."""

    failures: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)


def api_report(run: ApiRun) -> ApiReport:
    """Run every phase and check against ``run.base_url`` (``FLOTILLA_FUZZ_SEED`` replays the
    data of an earlier run)."""
    seed = int(os.environ.get(SEED_VARIABLE) or SystemRandom().getrandbits(32))
    schema = schemathesis.openapi.from_url(
        f"{run.base_url}/openapi.json", config=_config(run, seed)
    )
    if run.credentials is not None:
        schema.auth(refresh_interval=CREDENTIALS_REFRESH_SECONDS)(_provider(run.credentials))
    found: Counter[str] = Counter()
    report = ApiReport()
    for event in from_schema(schema).execute():
        if isinstance(event, ScenarioFinished):
            for node in event.recorder.cases.values():
                report.requests[node.value.operation.label] += 1
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        found[
                            f"{event.phase.value}: {failure.operation} [{check.name}] "
                            f"{failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        ] += 1
        elif isinstance(event, NonFatalError):
            found[f"error in {event.label}: {event.value!r}\n{event.info.code_sample or ''}"] += 1
        elif isinstance(event, FatalError):
            found[f"schemathesis stopped: {event.exception!r}"] += 1
    report.failures = [
        f"{failure}\n({count} time(s); replay with {SEED_VARIABLE}={seed})"
        for failure, count in found.items()
    ]
    return report


def _config(run: ApiRun, seed: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "suppress-health-check": ["all"],
            "workers": 1,
            "continue-on-failure": True,
            "request-timeout": 10,
            "cache": {"enabled": False},
            # Test data only: show the bodies and headers of a failure as they were sent.
            "output": {"sanitization": {"enabled": False}},
            "generation": {"max-examples": run.examples},
            "checks": {"enabled": True},
            "operations": [
                {
                    "include-name": operation,
                    "checks": {name: {"enabled": False} for name in sorted(checks)},
                }
                for operation, checks in run.exempt.items()
            ],
        }
    )


def _provider(credentials: Credentials) -> type[Any]:
    """A schemathesis auth provider that adds ``credentials()`` to each request's headers."""

    class Provider:
        def get(self, case: schemathesis.Case[Any], context: Any) -> Mapping[str, str]:
            return credentials()

        def set(self, case: schemathesis.Case[Any], data: Mapping[str, str], context: Any) -> None:
            # Into the case's own (case-insensitive) headers, from which checks remove them.
            case.headers.update(data)

    return Provider
