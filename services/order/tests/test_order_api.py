"""The order API over HTTP, on SQLite and PostgreSQL."""

import asyncio
import uuid
from typing import Any
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from devkit.localstack.process import ServiceProcess
from devkit.testing.http import as_user

BODY = {
    "items": [{"sku": "tea-1", "quantity": 2, "unit_price_cents": 450}],
    "amount_cents": 900,
    "currency": "EUR",
    "payment_token": "tok_visa",
}


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def post_order(
    http: aiohttp.ClientSession,
    service: ServiceProcess,
    user: str,
    body: dict[str, Any] = BODY,
    key: str | None = None,
) -> tuple[int, dict[str, Any], Any]:
    headers = as_user(user) | ({"Idempotency-Key": key} if key else {})
    async with http.post(f"{service.base_url}/orders", json=body, headers=headers) as response:
        return response.status, await response.json(), response.headers


async def test_create_get_and_list_own_orders(order_service: ServiceProcess) -> None:
    alice, bob = user(), user()
    async with aiohttp.ClientSession() as http:
        status, order, headers = await post_order(http, order_service, alice)
        assert status == 201
        assert order["status"] == "pending"
        # Relative to the request's URL, so it is right here and through the gateway alike.
        assert headers["Location"] == f"orders/{order['id']}"
        location = urljoin(f"{order_service.base_url}/orders", headers["Location"])
        assert location == f"{order_service.base_url}/orders/{order['id']}"

        url = f"{order_service.base_url}/orders/{order['id']}"
        async with http.get(url, headers=as_user(alice)) as response:
            assert response.status == 200
            assert (await response.json())["id"] == order["id"]
        async with http.get(url, headers=as_user(bob)) as response:
            assert response.status == 404  # someone else's order does not exist for bob
            assert response.headers["Content-Type"] == "application/problem+json"
        async with http.get(f"{order_service.base_url}/orders", headers=as_user(bob)) as response:
            assert (await response.json())["orders"] == []


async def test_requests_not_vouched_for_by_the_gateway_are_refused(
    order_service: ServiceProcess,
) -> None:
    alice = user()
    async with aiohttp.ClientSession() as http:
        forged = {"X-Flotilla-User": alice, "X-Flotilla-Identity": "1.abc"}
        for headers in ({}, forged):
            async with http.post(
                f"{order_service.base_url}/orders", json=BODY, headers=headers
            ) as response:
                assert response.status == 401
                assert "through the gateway" in (await response.json())["detail"]


async def test_amount_must_be_the_sum_of_the_items(order_service: ServiceProcess) -> None:
    alice = user()
    async with aiohttp.ClientSession() as http:
        status, problem, _ = await post_order(
            http, order_service, alice, {**BODY, "amount_cents": 1}
        )
    assert status == 422
    assert "items add up to 900" in str(problem["errors"])


async def test_idempotency_key_replays_and_conflicts(order_service: ServiceProcess) -> None:
    alice, bob = user(), user()
    async with aiohttp.ClientSession() as http:
        first = await post_order(http, order_service, alice, key="k-1")
        replay = await post_order(http, order_service, alice, key="k-1")
        other_user = await post_order(http, order_service, bob, key="k-1")
        conflict = await post_order(
            http, order_service, alice, {**BODY, "currency": "USD"}, key="k-1"
        )
    assert first[0] == 201
    assert replay[0] == 200
    assert replay[2]["Idempotent-Replayed"] == "true"
    assert replay[1] == first[1]
    assert other_user[0] == 201  # keys are per user
    assert conflict[0] == 409
    assert "different request body" in conflict[1]["detail"]


async def test_one_key_replayed_concurrently_creates_one_order(
    order_service: ServiceProcess,
) -> None:
    carol = user()
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(post_order(http, order_service, carol, key="same") for _ in range(10))
        )
        async with http.get(f"{order_service.base_url}/orders", headers=as_user(carol)) as response:
            orders = (await response.json())["orders"]
    assert sorted(status for status, _, _ in results) == [200] * 9 + [201]
    assert len({body["id"] for _, body, _ in results}) == 1
    assert len(orders) == 1


async def test_an_id_that_is_not_a_uuid_is_refused_before_the_database(
    order_service: ServiceProcess,
) -> None:
    # A NUL reaching PostgreSQL would be an error there (a 500), not a missing order.
    async with aiohttp.ClientSession() as http:
        for raw in ("not-an-order-id", "a%00b"):
            url = URL(f"{order_service.base_url}/orders/{raw}", encoded=True)
            async with http.get(url, headers=as_user(user())) as response:
                assert response.status == 422
                assert response.content_type == "application/problem+json"


async def test_numbers_are_read_as_json_schema_reads_them(order_service: ServiceProcess) -> None:
    # 2.0 is the integer 2, as the schema says; "2" and true are not integers.
    alice = user()
    async with aiohttp.ClientSession() as http:
        for quantity, expected in ((2.0, 201), ("2", 422), (True, 422)):
            item = {"sku": "tea-1", "quantity": quantity, "unit_price_cents": 450}
            body = {**BODY, "items": [item]}
            status, answer, _ = await post_order(http, order_service, alice, body)
            assert status == expected, (quantity, answer)
