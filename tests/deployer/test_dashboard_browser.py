"""The dashboard in a real headless Chromium (Debian's package), against the real deployer stack:
a deployment appears live (no reload), shows its rollout's progress, ends in the history with its
outcome, and links to its plan. Saves a screenshot of the page mid-rollout (docs/dashboard.md).

Chromium is driven over the DevTools protocol (a websocket, aiohttp's client), bound to 127.0.0.1,
with a fresh profile, stopped by its pid. FLOTILLA_UPDATE_SCREENSHOT=1 copies the screenshot to
docs/dashboard.png; otherwise it stays in the test's tmp directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.deployer.deployer_stack import DeployerStack, image, kwok_values

V1 = "1.0.0-a1b2c3d"
V2 = "1.1.0-b2c3d4e"
VIEWER = "dashboard-viewer-token-0123"  # read scope only: all the dashboard needs
INSTALL_HINT = "install Debian's chromium: run platform/deployer/browser-deps.sh (make setup does)"
Handler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class Chromium:
    """One headless Chromium and a DevTools session with its first page."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.process: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.loads = 0

    async def start(self) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            pytest.fail(f"chromium is not on PATH: {INSTALL_HINT}", pytrace=False)
        self.profile.mkdir(parents=True)
        args = [
            binary,
            "--headless=new",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--window-size=1280,900",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(2, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        self.process = _launch(args, self.profile.parent / "chromium.log")
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.profile.parent / "chromium.log").read_text()[-2000:]
                pytest.fail(f"chromium did not start: {tail}", pytrace=False)
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        self.on("Page.loadEventFired", self._loaded)
        await self.send("Page.enable")
        await self.send("Runtime.enable")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: chromium's helpers too
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait, 10)

    def on(self, method: str, handler: Handler) -> None:
        self._handlers[method] = handler

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._ws is not None
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = future
        await self._ws.send_json({"id": self._next_id, "method": method, "params": params or {}})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") in self._handlers:
                # A task: a handler may send commands, whose replies this loop must read.
                task = asyncio.create_task(self._handlers[data["method"]](data.get("params", {})))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _loaded(self, _: dict[str, Any]) -> None:
        self.loads += 1

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 60) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        body = await self.evaluate("location.href + '\\n' + (document.body?.innerText ?? '')")
        raise AssertionError(f"the page never showed {what} in {timeout}s; it shows:\n{body}")

    async def navigate(self, url: str) -> None:
        loads = self.loads
        await self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + 30
        while self.loads == loads:
            assert time.monotonic() < deadline, f"{url} did not load"
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))

    async def answer_basic_auth(self, user: str, password: str) -> list[str]:
        """Answer every HTTP authentication challenge as a person would, typing ``user`` and
        ``password`` into the browser's prompt; returns the URLs that were challenged."""
        challenged: list[str] = []

        async def paused(params: dict[str, Any]) -> None:
            await self.send("Fetch.continueRequest", {"requestId": params["requestId"]})

        async def auth(params: dict[str, Any]) -> None:
            challenged.append(params["request"]["url"])
            await self.send(
                "Fetch.continueWithAuth",
                {
                    "requestId": params["requestId"],
                    "authChallengeResponse": {
                        "response": "ProvideCredentials",
                        "username": user,
                        "password": password,
                    },
                },
            )

        self.on("Fetch.requestPaused", paused)
        self.on("Fetch.authRequired", auth)
        await self.send(
            "Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]}
        )
        return challenged


def _launch(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` in a session of its own (stopped as a group), output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(args, stdout=output, stderr=output, start_new_session=True)


@pytest.fixture
async def viewer_stack(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    """The deployer stack with one more token, read scope only (the admin token stays)."""
    tokens = [{"name": "dashboard", "token": VIEWER, "scopes": ["read"]}]
    deployer = DeployerStack(repo_root, tmp_path, kubeconfig, namespace, tokens=tokens)
    await deployer.start()
    yield deployer
    await deployer.stop()


# order's canary on kwok: 1 replica, so the canary pod runs beside it; no Prometheus, so the first
# measurement is inconclusive and the canary pauses, saying why.
KWOK_CANARY = {
    "type": "canary",
    "canary": {
        "steps": [{"setWeight": 50}, {"analysis": {}}],
        "analysis": {"intervalSeconds": 5, "count": 1, "inconclusiveLimit": 1},
    },
}


@pytest.fixture
async def canary_stack(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    """The deployer stack whose environment gives order the canary strategy (read token too)."""
    tokens = [{"name": "dashboard", "token": VIEWER, "scopes": ["read"]}]
    values = {"order": {**kwok_values("order"), "strategy": KWOK_CANARY}}
    deployer = DeployerStack(
        repo_root, tmp_path, kubeconfig, namespace, tokens=tokens, values=values
    )
    await deployer.start()
    yield deployer
    await deployer.stop()


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Chromium]:
    browser = Chromium(tmp_path / "chromium" / "profile")
    try:
        await browser.start()
        yield browser
    finally:
        await browser.stop()


def row(deployment_id: str, table: str) -> str:
    """A JavaScript expression: the row of ``deployment_id`` in ``table`` (live or history)."""
    return f"document.querySelector('#{table}-rows tr[data-id={json.dumps(deployment_id)}]')"


async def test_the_dashboard_shows_a_rollout_live_and_links_its_plan(
    chromium: Chromium, viewer_stack: DeployerStack, repo_root: Path, tmp_path: Path
) -> None:
    stack = viewer_stack
    challenged = await chromium.answer_basic_auth("someone", VIEWER)
    await chromium.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 820, "deviceScaleFactor": 1, "mobile": False},
    )
    await chromium.navigate(stack.deployer.base_url + "/")
    await chromium.wait_for(
        "document.getElementById('connection')?.dataset.state === 'live'"
        " && document.body.dataset.synced",
        "the live indicator",
    )
    await chromium.evaluate("window.flotillaNoReload = true")

    # Two quick first installs, then order again: three pods, each ready 1.5 s after it starts.
    quick = [await stack.publish(service, V1) for service in ("payment", "order")]
    for deployment_id in quick:
        await chromium.wait_for(f"{row(deployment_id, 'history')}?.dataset.phase", "an outcome")
    slow = await stack.publish(
        "order",
        V2,
        values={"replicaCount": 3, "podAnnotations": {"flotilla.dev/ready-after": "1500ms"}},
    )
    live = row(slow, "live")
    await chromium.wait_for(f"!!{live}", "the new deployment under Live rollouts")
    # Progress events update the row in place: helm scales to three, the pods become ready.
    await chromium.wait_for(
        f"{live}?.querySelector('td.progress')?.dataset.desired", "the rollout's progress"
    )
    ready = await chromium.wait_for(
        f"(() => {{ const c = {live}?.querySelector('td.progress');"
        " return c && c.dataset.desired === '3' && c.dataset.updated !== '0'"
        " && Math.min(c.dataset.updated, c.dataset.ready) < 3 && c.textContent; })()",
        "a rollout of three pods part way",
    )
    assert "/3 updated" in ready, ready
    shot = tmp_path / "dashboard.png"
    await chromium.screenshot(shot)

    outcome = await stack.outcome(slow)
    assert outcome.phase.value == "succeeded"
    done = row(slow, "history")
    phase = await chromium.wait_for(f"{done}?.dataset.phase", "the outcome in Recent history")
    assert phase == "succeeded"
    assert await chromium.evaluate(f"{live} === null")
    assert await chromium.evaluate(f"{done}.querySelector('.phase').textContent") == "succeeded"
    assert await chromium.evaluate("window.flotillaNoReload === true"), "the page was reloaded"
    services = await chromium.wait_for(
        "document.querySelector('#service-rows tr[data-service=order]')?.innerText"
        ".includes('1.1.0-b2c3d4e') && document.querySelector('#service-rows').innerText",
        "order's new image in Services",
    )
    assert "succeeded" in services
    # The browser was asked for the token once, for the page: the event stream and the fetches
    # went with the credentials it remembered.
    assert challenged == [stack.deployer.base_url + "/"], challenged

    summary = await chromium.evaluate(f"{done}.querySelector('a.plan').textContent")
    assert summary.startswith("order: rollout"), summary
    await chromium.evaluate(f"{done}.querySelector('a.plan').click()")
    await chromium.wait_for(
        f"location.pathname === '/deployments/{slow}/plan' && document.readyState === 'complete'",
        "the plan page",
    )
    plan_text = await chromium.evaluate("document.body.innerText")
    assert "Deployment/order" in plan_text, plan_text
    assert f"containers[order].image: {image('order', V1)} → {image('order', V2)}" in plan_text, (
        plan_text
    )

    if os.environ.get("FLOTILLA_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, repo_root / "docs" / "dashboard.png")
    assert shot.stat().st_size > 10_000


async def test_the_dashboard_shows_a_canary_live_and_a_person_aborts_it(
    chromium: Chromium, canary_stack: DeployerStack
) -> None:
    stack = canary_stack
    await chromium.answer_basic_auth("someone", VIEWER)
    first = await stack.publish("order", V1)  # a first install rolls: nothing to compare with
    assert (await stack.outcome(first)).phase.value == "succeeded"
    await chromium.navigate(stack.deployer.base_url + "/")
    await chromium.wait_for(
        "document.getElementById('connection')?.dataset.state === 'live'", "the live indicator"
    )
    canary = await stack.publish("order", V2)
    live = row(canary, "live")
    cell = await chromium.wait_for(
        f"(() => {{ const c = {live}?.querySelector('td.canary');"
        " return c && c.dataset.state === 'paused' && c.innerText; })()",
        "the canary paused under Live rollouts",
    )
    # The steps (the analysis current), the split, the measurement and why it paused.
    assert "weight 50%" in cell, cell
    assert "stable 1 · canary 1 pods (50% of requests)" in cell, cell
    assert "inconclusive: canary - ok" in cell, cell
    assert "no Prometheus to measure the canary with: set DEPLOYER_PROMETHEUS_URL" in cell, cell
    current = await chromium.evaluate(f"{live}.querySelector('.steps .current').textContent")
    assert current == "analysis"
    async with aiohttp.ClientSession(headers=stack.admin_headers) as http:
        url = f"{stack.deployer.base_url}/api/deployments/{canary}/canary"
        async with http.post(f"{url}/promote-now", json={}) as refused:
            assert refused.status == 422  # no such command
        async with http.post(f"{url}/abort", json={"note": "no metrics here"}) as aborted:
            assert aborted.status == 202, await aborted.text()
    outcome = await stack.outcome(canary)
    assert outcome.phase.value == "rolled_back"
    assert outcome.reason == "canary aborted: aborted by admin (no metrics here)"
    done = row(canary, "history")
    assert await chromium.wait_for(f"{done}?.dataset.phase", "the outcome") == "rolled_back"
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.post(f"{stack.deployer.base_url}/api/deployments/{canary}/canary/resume") as late,
    ):
        assert late.status == 409
        assert "runs no canary now" in await late.text()
