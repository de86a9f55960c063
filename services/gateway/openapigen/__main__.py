"""The command line: ``python -m services.gateway.openapigen [--check]`` from the repository's
root."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway_service.api.forwarded_document import forwarded_document
from gateway_service.api.route_table import FORWARDED_PREFIXES

from .service_documents import service_document

TARGET = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "gateway_service"
    / "api"
    / "forwarded_openapi.json"
)
DESCRIPTION = (
    "Write the gateway's document of forwarded operations from the services' own documents "
    "(--check: only compare)."
)


def render() -> str:
    """The forwarded document as the committed file's text."""
    services = {service: service_document(service) for service in FORWARDED_PREFIXES}
    return json.dumps(forwarded_document(services), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document, or with --check report that it is stale."""
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.openapigen", description=DESCRIPTION
    )
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if TARGET.exists() and TARGET.read_text() == text:
        return 0
    if args.check:
        print(
            f"stale: {TARGET.relative_to(TARGET.parents[4])}; run: "
            ".venv/bin/python -m services.gateway.openapigen",
            file=sys.stderr,
        )
        return 1
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
