"""Orders through the gateway pod while the platform is being hurt, and the checks that none was
lost or charged twice: a flow of orders at a steady rate (each failed request retried with its
Idempotency-Key, as a client should), and the ledgers of the order and payment databases read
with psql inside the PostgreSQL pod."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from tests.realpods.realcluster import Platform, wait_until

ORDER = {
    "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}],
    "amount_cents": 900,
    "currency": "EUR",
    "payment_token": "tok_visa",
}
# How long one order is retried before the flow gives it up (and the test fails on it).
GIVE_UP_SECONDS = 120
RETRY_PAUSE_SECONDS = 0.5


def sign_up(http: httpx.Client) -> dict[str, str]:
    """A new user's bearer header, through the gateway."""
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
    password = "a long and unguessable passphrase"
    # A test before this one may have restarted NATS: wait (bounded) until auth is ready again.
    deadline = time.monotonic() + 60
    while True:
        response = http.post("/api/auth/register", json={"email": email, "password": password})
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 201, response.text
    response = http.post(
        "/api/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def order_status(http: httpx.Client, auth: dict[str, str], order_id: str) -> str:
    """The status of one of the caller's orders, through the gateway."""
    response = http.get(f"/api/orders/{order_id}", headers=auth)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


@dataclass(frozen=True)
class Attempt:
    """One request of the flow: when it ended (wall clock, the pods' clock too), how, and how
    long it took."""

    at: float
    ok: bool
    outcome: str
    took: float


class OrderFlow:
    """Orders placed at a steady rate by a few threads, each order due at ``start + i / rate``;
    a failed request (a pod going away, a dependency down) is retried with the same
    Idempotency-Key, so each intended order exists once. A stalled platform holds the workers in
    their retries; once it answers again they catch up on the orders that fell due meanwhile.

    Places ``count`` orders, or (``count=None``) orders until ``stop()``. The orders are spread
    over ``users`` users: the gateway limits each user's rate.
    """

    def __init__(
        self,
        platform: Platform,
        *,
        rate: float,
        count: int | None = None,
        workers: int = 2,
        users: int = 1,
    ) -> None:
        self.platform = platform
        self.rate = rate
        self.count = count
        self.placed: list[str] = []
        self.errors: list[str] = []
        self.attempts: list[Attempt] = []
        self.user_ids: set[str] = set()
        self.started = 0.0
        self.ended = 0.0
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = threading.Event()
        with httpx.Client(base_url=platform.gateway, timeout=10) as http:
            self._auths = [sign_up(http) for _ in range(users)]
        self.auth = self._auths[0]
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name=f"order-flow-{n}")
            for n in range(workers)
        ]

    @property
    def retried(self) -> int:
        """How many requests failed and were sent again."""
        return sum(not a.ok for a in self.attempts)

    def retry_causes(self) -> Counter[str]:
        """The failed requests by what went wrong (status code or transport error)."""
        return Counter(a.outcome for a in self.attempts if not a.ok)

    def achieved_rate(self) -> float:
        """Orders accepted per second over the flow's life."""
        return len(self.placed) / max(self.ended - self.started, 1e-9)

    def _take(self) -> int | None:
        with self._lock:
            if self._stopping.is_set() or (self.count is not None and self._next >= self.count):
                return None
            index = self._next
            self._next += 1
            return index

    def _work(self) -> None:
        with httpx.Client(base_url=self.platform.gateway, timeout=10) as http:
            while (index := self._take()) is not None:
                time.sleep(max(0.0, self.started + index / self.rate - time.time()))
                self._place(http, self._auths[index % len(self._auths)])

    def _record(self, began: float, ok: bool, outcome: str) -> None:
        ended = time.time()
        with self._lock:
            self.attempts.append(Attempt(ended, ok, outcome, ended - began))

    def _place(self, http: httpx.Client, auth: dict[str, str]) -> None:
        key = uuid.uuid4().hex
        deadline = time.monotonic() + GIVE_UP_SECONDS
        last = ""
        while time.monotonic() < deadline:
            began = time.time()
            try:
                response = http.post(
                    "/api/orders", json=ORDER, headers={**auth, "Idempotency-Key": key}
                )
            except httpx.TransportError as exc:
                self._record(began, False, type(exc).__name__)
                last = repr(exc)
            else:
                if response.status_code in (200, 201):
                    order = response.json()
                    self._record(began, True, str(response.status_code))
                    with self._lock:
                        self.placed.append(order["id"])
                        self.user_ids.add(order["user_id"])
                    return
                self._record(began, False, str(response.status_code))
                last = f"{response.status_code} {response.text[:200]}"
            time.sleep(RETRY_PAUSE_SECONDS)
        with self._lock:
            self.errors.append(f"order (key {key}) never accepted in {GIVE_UP_SECONDS} s: {last}")

    def stop(self) -> None:
        """Place no further order (those under way are still retried until accepted)."""
        self._stopping.set()

    def __enter__(self) -> OrderFlow:
        self.started = time.time()
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # A flow of ``count`` orders places them all, unless the test itself failed.
        if self.count is None or exc[0] is not None:
            self.stop()
        for worker in self._workers:
            worker.join(timeout=GIVE_UP_SECONDS + 30)
        self.ended = time.time()

    def outage_after(self, moment: float) -> tuple[float, float] | None:
        """The flow's view of an outage that began after ``moment``: from its first failed
        request to the first request accepted after the last failure; None when nothing
        failed."""
        attempts = sorted((a for a in self.attempts if a.at >= moment), key=lambda a: a.at)
        failed = [a.at for a in attempts if not a.ok]
        if not failed:
            return None
        recovered = next((a.at for a in attempts if a.ok and a.at > failed[-1]), float("inf"))
        return failed[0], recovered

    def latency(self, quantile: float) -> float:
        """That quantile of the accepted requests' durations, in seconds."""
        took = sorted(a.took for a in self.attempts if a.ok)
        return took[min(len(took) - 1, int(quantile * len(took)))] if took else 0.0

    def summary(self) -> str:
        """A line for the test's output: orders, rate, latency, retries by cause."""
        causes = ", ".join(f"{n} x {cause}" for cause, n in self.retry_causes().most_common())
        return (
            f"{len(self.placed)} orders accepted at {self.achieved_rate():.1f}/s "
            f"(offered {self.rate:g}/s; p50 {self.latency(0.5) * 1000:.0f} ms, "
            f"p99 {self.latency(0.99) * 1000:.0f} ms), {self.retried} requests retried"
            + (f" ({causes})" if causes else "")
        )


def _with_orders(ids: Iterable[str], query: str) -> str:
    """A psql script that loads ``ids`` into the temporary table flow_orders(id), then runs
    ``query`` (quietly: only the query's rows are printed)."""
    rows = "\n".join(ids)
    return (
        "\\set QUIET on\n"
        "CREATE TEMPORARY TABLE flow_orders (id text PRIMARY KEY);\n"
        f"COPY flow_orders FROM STDIN;\n{rows}\n\\.\n"
        f"{query}\n"
    )


@dataclass
class Ledgers:
    """What the databases hold for a flow's orders."""

    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    orders_of_users: int = 0
    payments: int = 0
    paid_orders: int = 0
    charges: int = 0
    charge_attempts: int = 0
    paid_at: list[float] = field(default_factory=list)


def order_ledger(platform: Platform, flow: OrderFlow) -> Ledgers:
    """The order database's view of the flow's orders: their statuses, how many orders its users
    have at all (a retried request must not create a second one), when each was paid."""
    statuses = platform.psql(
        "order",
        _with_orders(
            flow.placed,
            "SELECT status, count(*) FROM orders JOIN flow_orders USING (id) GROUP BY status;",
        ),
    )
    by_status = {
        status: int(n) for status, n in (line.split("|") for line in statuses.splitlines())
    }
    of_users = platform.psql(
        "order",
        "SELECT count(*) FROM orders WHERE user_id = ANY(string_to_array(:'users', ','))",
        users=",".join(sorted(flow.user_ids)),
    )
    paid_at = platform.psql(
        "order",
        _with_orders(
            flow.placed,
            "SELECT extract(epoch FROM updated_at) FROM orders JOIN flow_orders USING (id) "
            "WHERE status = 'paid' ORDER BY 1;",
        ),
    )
    return Ledgers(
        orders=sum(by_status.values()),
        by_status=by_status,
        orders_of_users=int(of_users),
        paid_at=[float(line) for line in paid_at.splitlines()],
    )


def payment_ledger(platform: Platform, flow: OrderFlow, ledgers: Ledgers) -> None:
    """Fill in the payment database's view of the flow's orders: payments (and how many orders
    they are for) and the fake processor's charges with an outcome (and its attempts)."""
    payments = platform.psql(
        "payment",
        _with_orders(
            flow.placed,
            "SELECT count(*), count(DISTINCT order_id) FROM payments "
            "JOIN flow_orders ON order_id = flow_orders.id;",
        ),
    )
    charges = platform.psql(
        "payment",
        _with_orders(
            flow.placed,
            "SELECT count(*), coalesce(sum(attempts), 0) FROM fake_processor_charges "
            "JOIN flow_orders ON idempotency_key = flow_orders.id WHERE outcome IS NOT NULL;",
        ),
    )
    ledgers.payments, ledgers.paid_orders = (int(n) for n in payments.split("|"))
    ledgers.charges, ledgers.charge_attempts = (int(n) for n in charges.split("|"))


def assert_each_order_paid_once(platform: Platform, flow: OrderFlow, timeout: float) -> Ledgers:
    """Every order the flow placed ends ``paid`` (waited for up to ``timeout`` s), exactly once:
    one order per Idempotency-Key, one payment and one processor charge per order."""
    assert not flow.errors, flow.errors[:5]
    count = len(flow.placed)
    assert count, "the flow placed no order"
    assert len(set(flow.placed)) == count, "an order id was handed out twice"
    ledgers = Ledgers()

    def all_paid() -> bool:
        nonlocal ledgers
        ledgers = order_ledger(platform, flow)
        return ledgers.by_status.get("paid", 0) == count

    try:
        wait_until(all_paid, timeout=timeout, what=f"all {count} orders paid", every=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the orders by status: {ledgers.by_status}") from None
    assert ledgers.orders_of_users == count, (
        f"the flow's users have {ledgers.orders_of_users} orders for {count} accepted: a retried "
        "request created a second order"
    )
    payment_ledger(platform, flow, ledgers)
    assert (ledgers.payments, ledgers.paid_orders) == (count, count), ledgers
    assert ledgers.charges == count, ledgers
    return ledgers


def longest_pause_in_payments(paid_at: list[float], after: float) -> tuple[float, float]:
    """The longest stretch with no order paid that ends after ``after`` (two consecutive paid
    moments, the second one later than ``after``): (last paid before it, first paid after it)."""
    pairs = [(a, b) for a, b in itertools.pairwise(paid_at) if b > after]
    if not pairs:
        return (after, after)
    return max(pairs, key=lambda pair: pair[1] - pair[0])
