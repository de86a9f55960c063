"""The command line: ``python -m charts.schemagen [--check]`` from the repository's root."""

from __future__ import annotations

import argparse
import json
import sys

from .application import build_schema
from .dependencies import dependency_schema
from .discovery import ALL_CHARTS, CHARTS_DIR, DEPENDENCY_CHARTS

DESCRIPTION = "Generate every chart's values.schema.json (--check: only compare)."


def render(chart: str) -> str:
    """The schema of ``chart`` as the committed file text."""
    schema = dependency_schema(chart) if chart in DEPENDENCY_CHARTS else build_schema(chart)
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(prog="python -m charts.schemagen", description=DESCRIPTION)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for chart in (*ALL_CHARTS, *DEPENDENCY_CHARTS):
        path = CHARTS_DIR / chart / "values.schema.json"
        if not (CHARTS_DIR / chart / "Chart.yaml").is_file():
            print(
                f"charts/{chart}/Chart.yaml not found: every service (services/{chart}/) needs "
                f"its chart charts/{chart}/ (make new-service creates both)",
                file=sys.stderr,
            )
            return 1
        text = render(chart)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(CHARTS_DIR.parent)) for p in stale)
        print(f"stale: {names}; run: .venv/bin/python -m charts.schemagen", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
