"""What every ``deployer`` command shares: the options (``--url``, ``--token``, ``--output``) and
the calls to the deployer's API (errors printed, exit 2 when it cannot be reached, 1 when it
refuses)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import typer


class Output(StrEnum):
    """How the commands that show something print: readable tables, or the API's JSON body as
    is."""

    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table: readable columns; json: the API's response body, unchanged (for scripts)",
    ),
]

UrlOption = Annotated[str, typer.Option(envvar="DEPLOYER_URL", help="The deployer's base URL")]
TokenOption = Annotated[
    str,
    typer.Option(
        envvar="DEPLOYER_API_TOKEN",
        help="API token with the scope the command needs (read, deploy, rollback, approve)",
    ),
]


def send(method: str, url: str, token: str | None = None, body: Any = None) -> httpx.Response:
    """``method`` ``url`` with ``body`` as JSON and ``token`` as the bearer; the response when it
    succeeded, otherwise the reason printed to stderr and exit 2 (unreachable) or 1 (refused)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        typer.secho(f"cannot reach the deployer at {url}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.secho(f"{response.status_code}: {detail}", fg="red", err=True)
        raise typer.Exit(1)
    return response


def query_string(**params: str | int | None) -> str:
    """``?name=value&...`` of the ``params`` that are set, URL-encoded; ``""`` when none is."""
    given = {name: value for name, value in params.items() if value is not None}
    return f"?{urlencode(given)}" if given else ""


def segment(value: str) -> str:
    """``value`` as one path segment of a URL."""
    return quote(value, safe="")


def call(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    """The JSON body of what :func:`send` answers."""
    return send(method, url, token, body).json()


def show(response: httpx.Response, output: Output, render: Callable[[Any], str]) -> None:
    """Print ``response``'s body as is (json) or as ``render`` makes it readable (table)."""
    typer.echo(response.text if output is Output.JSON else render(response.json()))
