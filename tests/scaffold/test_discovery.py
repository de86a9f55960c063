"""Services are discovered from their folders: a service folder added to a copy of the tree shows
up in kit.layout, CI's deployables, the chart schemas and the chart tests' lists without another
edit, and `remove-service` takes it out of all of them again. The few files the scaffold still
edits (they cannot discover services) are checked to hold every service of this checkout.

Fast: the scaffold runs in-process on a copy of the files it reads, with ruff and uv left out
(tests/scaffold/test_new_service.py runs the whole `make new-service` end to end).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from kit import layout
from pipelines_cli.deployables import discover

REPO = Path(__file__).resolve().parents[2]
NAME = "inventory"
# What the scaffold and the discovering consumers read.
COPIED = (
    ".gitlab-ci.yml",
    "pyproject.toml",
    "skaffold.yaml",
    "charts",
    "services",
    "platform/deployer/pyproject.toml",
    "platform/kit/src/kit/events/streams.py",
    "platform/nats",
    "platform/scaffold",
    "tests/charts/chartsupport.py",
)


def load(path: Path, name: str) -> ModuleType:
    """A Python file of the copy, imported from its path under its own module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def load_scaffold(root: Path) -> ModuleType:
    """The scaffold of the copy (new_service.py and its scaffold_* modules, from the copy's
    platform/scaffold, so its templates are the copy's)."""
    folder = str(root / "platform" / "scaffold")

    def forget() -> None:
        for name in [name for name in sys.modules if name.startswith("scaffold_")]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, folder)
    try:
        return load(root / "platform" / "scaffold" / "new_service.py", "copied_new_service")
    finally:
        sys.path.remove(folder)
        forget()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the copy and its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files the scaffold and the consumers read, tracked or new, copied into ``tmp_path``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *COPIED],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = tmp_path / "flotilla"
    for relative in filter(None, listed.split("\0")):
        if (REPO / relative).is_file():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, root / relative)
    return root


def appearances(root: Path) -> dict[str, bool]:
    """Where NAME appears, by consumer."""
    schemagen = load(root / "charts" / "schemagen" / "discovery.py", "copied_schemagen")
    chartsupport = load(root / "tests" / "charts" / "chartsupport.py", "copied_chartsupport")
    users = (root / "platform" / "nats" / "local.conf").read_text()
    chart_users = (root / "charts" / "nats" / "files" / "users.conf").read_text()
    postgres = yaml.safe_load((root / "charts" / "postgres" / "values-local.yaml").read_text())
    modules = [
        doc["metadata"]["name"] for doc in yaml.safe_load_all((root / "skaffold.yaml").read_text())
    ]
    return {
        "kit.layout services": NAME in layout.service_names(root),
        "kit.layout databases": NAME in layout.services_with_database(root),
        "pipelines deployables": NAME in discover(root),
        "schemagen charts": NAME in schemagen.ALL_CHARTS,
        "schemagen databases": NAME in schemagen.CHARTS_WITH_DATABASE,
        "schema file": (root / "charts" / NAME / "values.schema.json").is_file(),
        "chart tests": NAME in chartsupport.CHARTS,
        "chart tests databases": NAME in chartsupport.CHARTS_WITH_DATABASE,
        "skaffold": NAME in modules,
        "nats local": f"user: {NAME}," in users,
        "nats chart": f"user: {NAME}," in chart_users,
        "postgres": NAME in postgres["databases"],
        "gitlab": NAME in gitlab_matrix(root),
    }


def gitlab_matrix(root: Path) -> list[str]:
    """The SERVICE matrix of .gitlab-ci.yml."""
    match = re.search(r"(?m)^\s*- SERVICE: \[([^\]]*)\]$", (root / ".gitlab-ci.yml").read_text())
    assert match is not None
    return [item.strip() for item in match.group(1).split(",")]


def test_a_new_service_folder_is_seen_everywhere_and_removed_from_everywhere(copy: Path) -> None:
    scaffold = load_scaffold(copy)

    class Tools(scaffold.Tools):  # type: ignore[misc,name-defined]
        """The copy's schemagen really runs; ruff and uv are left to test_new_service.py."""

        def ruff(self, *args: str) -> None:
            pass

        def lock_and_sync(self) -> None:
            pass

    before = snapshot(copy)
    assert not any(appearances(copy).values()), appearances(copy)

    scaffold.new_service(copy, NAME, Tools(copy, "uv"))
    seen = appearances(copy)
    assert all(seen.values()), {where: found for where, found in seen.items() if not found}
    check = subprocess.run(
        [sys.executable, "-m", "charts.schemagen", "--check"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    pyproject = (copy / "services" / NAME / "pyproject.toml").read_text()
    assert '[tool.flotilla]\nscaffold = "new-service"' in pyproject

    changes = scaffold.remove_service(copy, NAME, Tools(copy, "uv"))
    assert not any(appearances(copy).values()), appearances(copy)
    assert snapshot(copy) == before, sorted(changes.edits)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("payment", "is one of the platform's own services (auth, gateway, order, payment)"),
        ("gateway", "remove-service only removes services made by make new-service"),
        ("inventory", "there is no service 'inventory'"),
    ],
)
def test_remove_service_refuses_the_platforms_own_and_unknown_services(
    copy: Path, name: str, reason: str
) -> None:
    scaffold = load_scaffold(copy)
    before = snapshot(copy)
    with pytest.raises(scaffold.ScaffoldError, match=re.escape(reason)):
        scaffold.remove_service(copy, name, scaffold.Tools(copy, "uv"))
    assert snapshot(copy) == before


def test_the_files_the_scaffold_edits_hold_every_service_of_the_checkout() -> None:
    services = layout.service_names(REPO)
    assert services, "no services/<name>/pyproject.toml found"
    for conf in ("platform/nats/local.conf", "charts/nats/files/users.conf"):
        users = re.findall(r"(?m)^\s*user: ([a-z0-9-]+),", (REPO / conf).read_text())
        assert set(services) <= set(users), conf
    postgres = yaml.safe_load((REPO / "charts/postgres/values-local.yaml").read_text())
    databases = {name.replace("-", "_") for name in layout.services_with_database(REPO)}
    assert databases == set(postgres["databases"])
    modules = {
        doc["metadata"]["name"] for doc in yaml.safe_load_all((REPO / "skaffold.yaml").read_text())
    }
    assert set(services) <= modules
    assert sorted(gitlab_matrix(REPO)) == sorted(services)
    for name in services:
        assert (REPO / "charts" / name / "Chart.yaml").is_file(), f"services/{name} has no chart"
        assert f'"{name}-service"' in (REPO / "pyproject.toml").read_text(), name


def test_a_service_has_a_database_when_its_chart_has_a_database_block(tmp_path: Path) -> None:
    for name, values in {
        "with": "database:\n  urlKey: url\n",
        "without": "replicaCount: 1\n",
    }.items():
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "pyproject.toml").write_text("[project]\n")
        (tmp_path / "charts" / name).mkdir(parents=True)
        (tmp_path / "charts" / name / "values.yaml").write_text(values)
    (tmp_path / "services" / "no-project").mkdir()
    assert layout.service_names(tmp_path) == ("with", "without")
    assert layout.services_with_database(tmp_path) == ("with",)
