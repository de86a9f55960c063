"""An HTTP server answering as the deployer's API with fixed bodies, for the CLI's tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeApi:
    """Answers ``(method, path)`` with a fixed body (status 200 unless ``statuses`` says
    otherwise; 404 for what it does not know); remembers what it was asked, query included."""

    def __init__(
        self,
        bodies: dict[tuple[str, str], bytes],
        statuses: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.bodies = bodies
        self.statuses = statuses or {}
        self.asked: list[tuple[str, str, str | None, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sent = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?", 1)[0]
                api.asked.append((self.command, self.path, self.headers["Authorization"], sent))
                body = api.bodies.get((self.command, path))
                status = api.statuses.get((self.command, path), 200 if body is not None else 404)
                body = body if body is not None else b'{"detail": "Not Found"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def serving(api: FakeApi) -> Iterator[FakeApi]:
    """``api`` answering on its port until the block ends."""
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()
        thread.join()
