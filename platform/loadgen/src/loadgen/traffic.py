"""Open-loop traffic: request i starts at start + i/rate however long the earlier ones take.

A stall therefore shows as latency and failures, never as fewer requests; a request due while
``max_in_flight`` others still wait for answers is recorded as dropped instead of queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadgen.outcomes import Outcome, classify_error, classify_status
from loadgen.plan import LoadPlan
from loadgen.report import LoadReport, RequestResult, SecondStats, percentile
from loadgen.users import User, create_users, keep_tokens_fresh

ORDERS_PATH = "/api/orders"
ORDER_PATH = "/api/orders/{id}"
ORDER_BODY = json.dumps(
    {
        "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}],
        "amount_cents": 900,
        "currency": "EUR",
        "payment_token": "tok_visa",
    }
).encode()
# Below uvicorn's 5 s keep-alive: the client lets go of an idle connection before the server
# closes it, so a request never races the server's close (that would be counted as a reset).
KEEPALIVE_SECONDS = 4.0
ERROR_BODY_LIMIT = 120


@dataclass
class _Tally:
    """What happened in the current second, for the live callback."""

    sent: int = 0
    ok: int = 0
    client_error: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, result: RequestResult) -> None:
        if result.outcome is Outcome.OK:
            self.ok += 1
        elif result.outcome is Outcome.CLIENT_ERROR:
            self.client_error += 1
        else:
            self.failed += 1
        if result.latency is not None:
            self.latencies.append(result.latency * 1000)

    def stats(self, second: int) -> SecondStats:
        return SecondStats(
            second, self.sent, self.ok, self.client_error, self.failed,
            percentile(self.latencies, 0.99),
        )  # fmt: skip


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    user: User


class _Run:
    """One run's state while it sends: results, requests in flight, the live tally."""

    def __init__(
        self,
        plan: LoadPlan,
        session: aiohttp.ClientSession,
        users: list[User],
        on_second: Callable[[SecondStats], None] | None,
    ) -> None:
        self.plan = plan
        self.session = session
        self.users = users
        self.on_second = on_second
        self.results: list[RequestResult] = []
        self.order_ids: list[str] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.tally = _Tally()
        self.next_second = 0
        self.start = 0.0

    def _request(self, index: int) -> _Request:
        user = self.users[index % len(self.users)]
        target = self.plan.target
        if self.plan.is_post(index):
            # A fresh key per order: the API's replay protection, never a replay here.
            headers = {
                **user.headers,
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            }
            return _Request("POST", ORDERS_PATH, target + ORDERS_PATH, headers, ORDER_BODY, user)
        if not user.order_ids:
            return _Request("GET", ORDERS_PATH, target + ORDERS_PATH, user.headers, None, user)
        order_id = user.order_ids[(index // len(self.users)) % len(user.order_ids)]
        url = f"{target}{ORDERS_PATH}/{order_id}"
        return _Request("GET", ORDER_PATH, url, user.headers, None, user)

    def _record(self, result: RequestResult) -> None:
        self.results.append(result)
        self.tally.add(result)

    async def _send(self, request: _Request, offset: float) -> None:
        started = time.monotonic()
        try:
            async with self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
            ) as response:
                status, body = response.status, await response.read()
        except Exception as error:  # every exception is an outcome of its own
            outcome, text = classify_error(error)
            latency = time.monotonic() - started
            self._record(
                RequestResult(offset, request.method, request.path, outcome, None, text, latency)
            )
            return
        latency = time.monotonic() - started
        outcome = classify_status(status)
        text = "" if outcome is Outcome.OK else _error_text(body)
        if outcome is Outcome.OK and request.method == "POST":
            order_id = _order_id(body)
            if order_id is None:
                outcome, text = Outcome.OTHER, f"no order id in the answer: {body[:80]!r}"
            else:
                request.user.order_ids.append(order_id)
                self.order_ids.append(order_id)
        self._record(
            RequestResult(offset, request.method, request.path, outcome, status, text, latency)
        )

    def _launch(self, index: int, due: float) -> None:
        # The event loop may wake a timer a hair early: never before the request's due time.
        offset = max(time.monotonic(), due) - self.start
        request = self._request(index)
        self.tally.sent += 1
        if len(self.in_flight) >= self.plan.max_in_flight:
            error = f"too many in flight: {self.plan.max_in_flight} requests were waiting"
            self._record(
                RequestResult(offset, request.method, request.path, Outcome.DROPPED, None, error)
            )
            return
        task = asyncio.create_task(self._send(request, offset))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _tick(self, on_second: Callable[[SecondStats], None]) -> None:
        while True:
            await asyncio.sleep(max(self.start + self.next_second + 1 - time.monotonic(), 0))
            self._emit(on_second)

    def _emit(self, on_second: Callable[[SecondStats], None]) -> None:
        tally, self.tally = self.tally, _Tally()
        on_second(tally.stats(self.next_second))
        self.next_second += 1

    async def run(
        self, stop: asyncio.Event | None, on_start: Callable[[float], None] | None
    ) -> LoadReport:
        """Send the plan's requests on schedule, then wait for the answers still due."""
        plan = self.plan
        self.start = time.monotonic()
        if on_start is not None:
            on_start(self.start)
        ticker = asyncio.create_task(self._tick(self.on_second)) if self.on_second else None
        stopping = asyncio.create_task(stop.wait()) if stop is not None else None

        async def until(moment: float) -> bool:
            """Sleep until ``moment``; whether the run was told to stop."""
            delay = moment - time.monotonic()
            if delay <= 0:
                await asyncio.sleep(0)  # behind schedule: still let the answers in
            elif stopping is None:
                await asyncio.sleep(delay)
            elif not stopping.done():
                await asyncio.wait({stopping}, timeout=delay)
            return stopping is not None and stopping.done()

        end = self.start + plan.duration
        stopped = False
        index = 0
        while index < plan.max_requests:
            due = self.start + index / plan.rate
            if due >= end:
                break
            if await until(due):
                stopped = True
                break
            self._launch(index, due)
            index += 1
        if not stopped:
            # The sending window lasts until the next request would have been due.
            await until(min(self.start + index / plan.rate, end))
        sending_seconds = time.monotonic() - self.start
        try:
            while self.in_flight:
                await asyncio.gather(*self.in_flight)
        finally:
            for task in (ticker, stopping):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        on_second = self.on_second
        if ticker is not None and on_second is not None:
            # A callback that raised ended the ticker: its caller gets to see the error.
            if not ticker.cancelled() and (error := ticker.exception()) is not None:
                raise error
            if self.tally != _Tally():
                self._emit(on_second)
        return LoadReport(
            plan=plan,
            results=sorted(self.results, key=lambda r: r.offset),
            sending_seconds=sending_seconds,
            elapsed=time.monotonic() - self.start,
            stopped_early=stopped,
            order_ids=list(self.order_ids),
        )


def _error_text(body: bytes) -> str:
    """The ``detail`` of a problem+json answer (what the gateway sends), else the body's start."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        answer = None
    detail = answer.get("detail") if isinstance(answer, dict) else None
    text = detail if isinstance(detail, str) else body.decode(errors="replace")
    return " ".join(text.split())[:ERROR_BODY_LIMIT]


def _order_id(body: bytes) -> str | None:
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return None
    order_id = answer.get("id") if isinstance(answer, dict) else None
    return order_id if isinstance(order_id, str) and order_id else None


async def run_load(
    plan: LoadPlan,
    *,
    stop: asyncio.Event | None = None,
    on_second: Callable[[SecondStats], None] | None = None,
    on_start: Callable[[float], None] | None = None,
) -> LoadReport:
    """Create the plan's users, send its traffic and return what every request did.

    ``stop`` ends the sending early (answers still due are awaited, each within the timeout).
    ``on_second`` is called once a second with the last second's live counts (see SecondStats)
    and once more at the end for the rest. ``on_start`` is called when the users exist and the
    first request is due, with the ``time.monotonic()`` that result offsets count from.
    Raises SetupError when the users cannot be created (e.g. auth answers 503 for too long).
    """
    connector = aiohttp.TCPConnector(limit=plan.max_in_flight, keepalive_timeout=KEEPALIVE_SECONDS)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        setup_started = time.monotonic()
        users = await create_users(session, plan.target, plan.users, timeout=plan.setup_timeout)
        setup_seconds = time.monotonic() - setup_started
        refresher = asyncio.create_task(
            keep_tokens_fresh(session, plan.target, users, timeout=plan.timeout)
        )
        try:
            report = await _Run(plan, session, users, on_second).run(stop, on_start)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
    report.setup_seconds = setup_seconds
    return report
