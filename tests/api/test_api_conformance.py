"""Every API against its OpenAPI document, with every schemathesis phase and check: each service
directly (as the gateway would call it), and the whole API through the gateway with a real
token (devkit.testing.contract says what is checked)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import pytest

from devkit.testing.contract import ApiRun, api_report
from devkit.testing.http import as_user
from tests.api.client import Account
from tests.integration.platform_stack import Platform

# Per operation and phase: the suite runs in about a minute on two busy cores.
EXAMPLES = 15
TARGETS = ("auth", "order", "payment", "gateway")
# JSON Schema cannot say that amount_cents is the sum of the items (the schema says it in
# words): schema-valid bodies are nearly all refused, with a 422 that names the rule.
AMOUNT_RULE = {"positive_data_acceptance"}
EXEMPT = {"order": {"POST /orders": AMOUNT_RULE}, "gateway": {"POST /api/orders": AMOUNT_RULE}}


def documented_operations(base_url: str) -> set[str]:
    """Each operation of the API's document, as "METHOD /path"."""
    with urllib.request.urlopen(f"{base_url}/openapi.json") as response:
        document = json.load(response)
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }


@pytest.mark.parametrize("target", TARGETS)
def test_every_operation_holds_to_its_document(
    target: str, api_stack: Platform, sign_up: Callable[[], Account]
) -> None:
    account = sign_up()
    if target == "gateway":
        base_url = api_stack.gateway
        run = ApiRun(base_url, EXAMPLES, account.bearer, EXEMPT.get(target, {}))
    else:
        # make run's development identity secret, which as_user signs with.
        base_url = api_stack.services[target].base_url
        run = ApiRun(base_url, EXAMPLES, lambda: as_user(account.user_id), EXEMPT.get(target, {}))
    report = api_report(run)
    assert not report.failures, "\n\n".join(report.failures)
    assert documented_operations(base_url) <= set(report.requests), report.requests
