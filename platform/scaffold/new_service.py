"""Scaffold a service (`make new-service name=<name>`) or remove one (`make remove-service`).

A new service is rendered from the frozen templates next to this file (templates/):

- services/<name>/: pyproject.toml, README.md, src/<name>_service/ with an example resource
  (items in its database, an Alembic migration, an event through the outbox) and tests; its
  image is built by the services' shared Dockerfile (services/Dockerfile), told the service by
  build arguments;
- charts/<name>/: the chart on flotilla-lib, its vendored library and generated values schema;
- its registrations in the files that cannot discover it from its folder: the root
  pyproject.toml (workspace dependency and uv source, ruff first-party, mypy path) and uv.lock;
  skaffold.yaml (one module per service); its NATS user in platform/nats/local.conf and
  charts/nats/files/users.conf (each user's permissions are the security policy, written per
  service); its database in charts/postgres/values-local.yaml (helm values;
  platform/secrets/cluster_secrets.py reads both lists); the static job matrix of .gitlab-ci.yml.

Everything else finds the service from its folder (kit.layout): the chart schemas
(charts/schemagen), the vendored library (charts/vendor-lib.sh), CI's deployables, `make run`
(devkit.devrun) and the tests. Its pyproject.toml carries ``[tool.flotilla] scaffold =
"new-service"``, which is what lets `make remove-service` remove it; removal undoes exactly what
creation did and refuses the platform's own services. Usage (make passes --uv):

    .venv/bin/python platform/scaffold/new_service.py new inventory --uv ~/.cache/.../uv
    .venv/bin/python platform/scaffold/new_service.py remove inventory --uv ~/.cache/.../uv

The parts: scaffold_names.py (which names it accepts), scaffold_render.py (the templates),
scaffold_registry.py (the shared files), scaffold_common.py (what they share).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scaffold_common import HERE, Changes, ScaffoldError
from scaffold_names import check_new, check_remove
from scaffold_registry import shared_edits
from scaffold_render import chart_files, service_files

# Re-exported for the callers that drive the scaffold in-process (tests/scaffold).
__all__ = ["Changes", "ScaffoldError", "Tools", "main", "new_service", "remove_service"]


# --- running it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The programs a run calls: the venv's Python and ruff, and uv."""

    root: Path
    uv: str

    def run(self, *command: str) -> None:
        """Run ``command`` in the repository; ScaffoldError with its output when it fails."""
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ScaffoldError(
                f"`{' '.join(command)}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}".rstrip()
            )

    def ruff(self, *args: str) -> None:
        """Run the venv's ruff."""
        ruff = Path(sys.executable).with_name("ruff")
        if not ruff.is_file():
            raise ScaffoldError(f"{ruff} not found: run `make deps` first")
        self.run(str(ruff), *args, "--quiet")

    def lock_and_sync(self) -> None:
        """Update uv.lock for the changed workspace and install it into the venv."""
        self.run(self.uv, "lock", "--quiet")
        self.run(self.uv, "sync", "--all-packages", "--locked", "--quiet")


def apply(root: Path, changes: Changes) -> None:
    """Write the new files and the edited shared files."""
    for path, content in changes.new_files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    for path, text in changes.edits.items():
        (root / path).write_text(text)


def new_service(root: Path, name: str, tools: Tools) -> Changes:
    """Create the service ``name`` and register it everywhere; returns what was done."""
    service = check_new(root, name)
    changes = Changes()
    shared_edits(root, service, True, changes)
    changes.new_files.update(service_files(service))
    changes.new_files.update(chart_files(root, service))
    apply(root, changes)
    python_edits = [path for path in changes.edits if path.endswith(".py")]
    try:
        # Import order depends on the name (first-party imports sort alphabetically): format.
        tools.ruff("check", "--fix", "--select", "I", service.folder)
        tools.ruff("format", service.folder, *python_edits)
        tools.run(sys.executable, "-m", "charts.schemagen")
        schema = f"{service.chart}/values.schema.json"
        if not (root / schema).is_file():
            raise ScaffoldError(
                f"python -m charts.schemagen did not write {schema}: list {name} there"
            )
        tools.lock_and_sync()
    except ScaffoldError as exc:
        raise ScaffoldError(
            f"{exc}\nThe files are written; fix the cause and run `make remove-service "
            f"name={name}` then `make new-service name={name}` again"
        ) from None
    return changes


def remove_service(root: Path, name: str, tools: Tools) -> Changes:
    """Delete the service ``name`` and every registration of it; returns what was done."""
    service = check_remove(root, name)
    changes = Changes()
    shared_edits(root, service, False, changes)
    for folder in (service.folder, service.chart):
        shutil.rmtree(root / folder, ignore_errors=True)
    apply(root, changes)
    python_edits = [path for path in changes.edits if path.endswith(".py")]
    if python_edits:
        tools.ruff("format", *python_edits)
    tools.lock_and_sync()
    return changes


def main(argv: list[str] | None = None) -> int:
    """The command line: ``new NAME`` or ``remove NAME``."""
    parser = argparse.ArgumentParser(
        prog="new_service.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("command", choices=["new", "remove"])
    parser.add_argument("name", help="lowercase letters, digits and dashes, e.g. inventory")
    parser.add_argument("--root", type=Path, default=HERE.parents[1], help="the checkout")
    parser.add_argument("--uv", default=os.environ.get("UV") or shutil.which("uv"))
    args = parser.parse_args(argv)
    target = "new-service" if args.command == "new" else "remove-service"
    root = args.root.resolve()
    try:
        if not args.uv:
            raise ScaffoldError(f"uv not found: run `make {target} name={args.name}`, or pass --uv")
        tools = Tools(root, args.uv)
        if args.command == "new":
            changes = new_service(root, args.name, tools)
            print(f"created services/{args.name} and charts/{args.name}")
        else:
            changes = remove_service(root, args.name, tools)
            print(f"removed services/{args.name} and charts/{args.name}")
    except ScaffoldError as exc:
        print(f"make {target}: {exc}", file=sys.stderr)
        return 2
    for path in [*sorted(changes.edits), "uv.lock"]:
        print(f"  edited {path}")
    for note in changes.notes:
        print(f"  note: {note}")
    if args.command == "new":
        print(f"next: .venv/bin/pytest services/{args.name}, then make test, then commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
