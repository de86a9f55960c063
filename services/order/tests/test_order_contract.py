"""The order API against its own OpenAPI document: every schemathesis phase and check."""

import uuid

from devkit.localstack.process import ServiceProcess
from devkit.testing.contract import ApiRun, api_report
from devkit.testing.http import as_user

# JSON Schema cannot say that amount_cents is the sum of the items (the schema says it in
# words), so schema-valid bodies are mostly refused with a 422 that names the rule.
AMOUNT_RULE_EXEMPTION = {"POST /orders": {"positive_data_acceptance"}}


def test_every_operation_matches_the_openapi_document(order_service: ServiceProcess) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    run = ApiRun(
        order_service.base_url,
        examples=25,
        credentials=lambda: as_user(user),
        exempt=AMOUNT_RULE_EXEMPTION,
    )
    report = api_report(run)
    assert not report.failures, "\n\n".join(report.failures)
