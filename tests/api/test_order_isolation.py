"""One user never sees another's order, whatever the order: a property of the whole platform.

For orders drawn by hypothesis, created by one user through the gateway, another user's read of
the order, of its payment and of their own list never shows it: a 404 (or a 403), never the
order. Valid orders are accepted (201), so this also covers what the fuzz suite cannot check
for POST /orders: JSON Schema cannot make a generator add the items up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.testing.http import as_user
from tests.api.client import Account, call
from tests.integration.platform_stack import Platform

REFUSED = (403, 404)


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    """A valid POST /orders body: its amount is the sum of its items, at least one cent."""
    items: list[dict[str, Any]] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "sku": st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z"),
                    "quantity": st.integers(1, 1000),
                    "unit_price_cents": st.integers(1, 10_000),
                }
            ),
            min_size=1,
            max_size=5,
        )
    )
    return {
        "items": items,
        "amount_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
        "currency": draw(st.from_regex(r"\A[A-Z]{3}\Z")),
        "payment_token": draw(st.sampled_from(["tok_visa", "tok_declined", "tok_fuzz_1"])),
    }


def assert_reveals_nothing(problem: dict[str, Any], owner: Account) -> None:
    """A refusal is a problem: it may name the id asked for, never the order or its owner."""
    assert set(problem) <= {"type", "title", "status", "detail"}, problem
    assert owner.user_id not in str(problem)


@pytest.fixture(scope="module")
def two_users(sign_up: Callable[[], Account]) -> tuple[Account, Account]:
    """Two accounts made through the gateway."""
    return sign_up(), sign_up()


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=orders(), swap=st.booleans())
def test_one_user_cannot_read_another_users_order(
    order: dict[str, Any], swap: bool, api_stack: Platform, two_users: tuple[Account, Account]
) -> None:
    owner, stranger = reversed(two_users) if swap else two_users
    gateway = api_stack.gateway
    status, created = call("POST", f"{gateway}/api/orders", owner.bearer(), **order)
    assert status == 201, created
    order_id = created["id"]

    status, body = call("GET", f"{gateway}/api/orders/{order_id}", stranger.bearer())
    assert status in REFUSED, body
    assert_reveals_nothing(body, owner)
    status, body = call("GET", f"{gateway}/api/payments/{order_id}", stranger.bearer())
    assert status in REFUSED, body
    assert_reveals_nothing(body, owner)
    status, listed = call("GET", f"{gateway}/api/orders?limit=100", stranger.bearer())
    assert status == 200
    assert order_id not in {listed_order["id"] for listed_order in listed["orders"]}
    # Nor directly, with identity headers the gateway would sign for the stranger.
    order_service = api_stack.services["order"].base_url
    status, body = call("GET", f"{order_service}/orders/{order_id}", as_user(stranger.user_id))
    assert status in REFUSED, body
    assert_reveals_nothing(body, owner)

    status, mine = call("GET", f"{gateway}/api/orders/{order_id}", owner.bearer())
    assert status == 200
    assert mine["user_id"] == owner.user_id
