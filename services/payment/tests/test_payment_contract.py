"""The payment API against its own OpenAPI document (every schemathesis phase and check), and
its answers for unknown payments."""

import uuid

import aiohttp
from yarl import URL

from devkit.localstack.process import ServiceProcess
from devkit.testing.contract import ApiRun, api_report
from devkit.testing.http import as_user


def test_every_operation_matches_the_openapi_document(payment_service: ServiceProcess) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    run = ApiRun(payment_service.base_url, examples=25, credentials=lambda: as_user(user))
    report = api_report(run)
    assert not report.failures, "\n\n".join(report.failures)


async def test_an_unknown_payment_is_a_404_problem(payment_service: ServiceProcess) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{payment_service.base_url}/payments/{uuid.uuid4()}"
        async with http.get(url, headers=as_user("someone")) as response:
            assert response.status == 404
            assert response.content_type == "application/problem+json"
            assert "not settled yet" in (await response.json())["detail"]
        async with http.get(url) as response:
            assert response.status == 401
        # Not a UUID (a NUL would be an error in PostgreSQL, a 500): refused before the database.
        not_an_id = URL(f"{payment_service.base_url}/payments/a%00b", encoded=True)
        async with http.get(not_an_id, headers=as_user("someone")) as response:
            assert response.status == 422
