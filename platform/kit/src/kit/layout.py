"""The repository's layout, read from its folders: which services exist and which of them keep a
database. Nothing lists the services by hand; a folder services/<name>/ with a pyproject.toml is
a service, and its chart's values.yaml says whether it has a database."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT_ENV = "FLOTILLA_ROOT"
_DATABASE_BLOCK = re.compile(r"^database:", re.MULTILINE)


def repo_root() -> Path:
    """The checkout's root: $FLOTILLA_ROOT, or the checkout this file is in."""
    configured = os.environ.get(ROOT_ENV)
    root = Path(configured) if configured else Path(__file__).resolve().parents[4]
    if not (root / "services").is_dir() or not (root / "charts").is_dir():
        raise FileNotFoundError(
            f"{root} is not a Flotilla checkout (no services/ and charts/ there): run from a "
            f"clone of the repository, or set {ROOT_ENV} to one"
        )
    return root


def service_names(root: Path | None = None) -> tuple[str, ...]:
    """The services: the folders services/<name>/ that hold a pyproject.toml, sorted."""
    base = (root or repo_root()) / "services"
    return tuple(sorted(p.parent.name for p in base.glob("*/pyproject.toml") if p.is_file()))


def services_with_database(root: Path | None = None) -> tuple[str, ...]:
    """The services whose chart has a top-level `database` block (they keep data)."""
    base = root or repo_root()
    found = []
    for name in service_names(base):
        values = base / "charts" / name / "values.yaml"
        if values.is_file() and _DATABASE_BLOCK.search(values.read_text()):
            found.append(name)
    return tuple(found)
