"""A small synchronous JSON client for the API suites (hypothesis drives plain functions)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Account:
    """A user who signed up through the gateway, and their bearer token."""

    user_id: str
    token: str

    def bearer(self) -> dict[str, str]:
        """The Authorization header of this user's requests."""
        return {"Authorization": f"Bearer {self.token}"}


def call(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    **body: Any,
) -> tuple[int, Any]:
    """Send one request (a JSON body from ``body``, or a form); its status and decoded body."""
    sent = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    elif body:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _decoded(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decoded(error.read())


def _decoded(content: bytes) -> Any:
    return json.loads(content) if content else None
