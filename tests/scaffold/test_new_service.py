"""`make new-service` end to end, in a copy of the checkout: scaffold, lint, test, remove.

The copy holds this working tree's files (tracked and untracked, not ignored), committed into a
fresh git repository in a temporary directory: nothing here touches this checkout, and the copy's
`git status` tells whether removal undid everything. `make deps` in the copy builds its own .venv
from uv's cache (seconds, offline when the cache is warm), so every import resolves to the copy.
The tests share one copy and run in file order, the service's own tests in the background
meanwhile; the last one removes the service.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartsupport import TAG, built_tool

pytestmark = pytest.mark.timeout(900)

NAME = "inventory"
# The longest name allowed, with dashes: its strings and imports must still be lint-clean.
LONG_NAME = "stock-level-of-the-warehouse-9"
# Not inherited: an outer make's flags and jobs, and the outer venv.
DROPPED_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")


def child_env() -> dict[str, str]:
    """The environment of the commands run in the copy."""
    return {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}


def run(
    workspace: Path, *command: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in the copy; with ``check``, fail with its output unless it exits 0."""
    result = subprocess.run(
        command,
        cwd=workspace,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, (
            f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def make(workspace: Path, target: str, name: str) -> subprocess.CompletedProcess[str]:
    """`make <target> name=<name>` in the copy (the root Makefile includes scaffold.mk)."""
    return run(workspace, "make", "-s", target, f"name={name}")


def tree_state(workspace: Path) -> tuple[str, str]:
    """What differs from the copy's commit: `git status --porcelain` and the full diff."""
    status = run(workspace, "git", "status", "--porcelain", "--untracked-files=all").stdout
    return status, run(workspace, "git", "diff").stdout


def python_files_touched(workspace: Path, folder: str) -> list[str]:
    """The service's folder and every shared Python file the scaffold edited."""
    status = run(workspace, "git", "status", "--porcelain").stdout.splitlines()
    edited = [line[3:] for line in status if line.startswith(" M") and line.endswith(".py")]
    return [folder, *edited]


@pytest.fixture(scope="module")
def workspace(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A git repository holding a copy of this working tree, with its own .venv."""
    copy = tmp_path_factory.mktemp("scaffold") / "flotilla"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = repo_root / relative
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / relative)
    run(copy, "git", "init", "-q", "-b", "main")
    run(copy, "git", "add", "-A")
    config = ["-c", "user.name=scaffold test", "-c", "user.email=scaffold@test.invalid"]
    config += ["-c", "commit.gpgsign=false"]
    run(copy, "git", *config, "commit", "-q", "--no-verify", "-m", "the working tree")
    run(copy, "make", "-s", "deps")
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


@dataclass(frozen=True)
class Scaffold:
    """The copy after `make new-service name=inventory`, with the service's tests running."""

    path: Path
    own_tests: subprocess.Popen[bytes]
    own_tests_log: Path


@pytest.fixture(scope="module")
def scaffold(workspace: Path) -> Iterator[Scaffold]:
    """Scaffold, then start the service's own tests in the background: they take the longest,
    and mostly wait on processes, so the other checks run meanwhile."""
    result = make(workspace, "new-service", NAME)
    assert f"created services/{NAME} and charts/{NAME}" in result.stdout
    log = workspace.parent / "own-tests.log"
    with log.open("wb") as output:
        own_tests = subprocess.Popen(
            [".venv/bin/pytest", "-q", "-p", "no:cacheprovider", f"services/{NAME}"],
            cwd=workspace,
            env=child_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield Scaffold(workspace, own_tests, log)
    if own_tests.poll() is None:  # the session stopped early: stop pytest and its services
        os.killpg(own_tests.pid, signal.SIGTERM)
        try:
            own_tests.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(own_tests.pid, signal.SIGKILL)
            own_tests.wait()


@pytest.fixture(scope="module")
def scaffolded(scaffold: Scaffold) -> Path:
    """The copy after `make new-service name=inventory`."""
    return scaffold.path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "give the service a name"),
        ("Inventory", "is not a valid service name"),
        ("stock_level", "is not a valid service name"),
        ("a" * 31, "at most 30 characters"),
        ("inventory-service", "leave out the -service suffix (name=inventory)"),
        ("payment", "exists already"),
        ("kit", "reserved for the service chassis"),
        ("flotilla-lib", "reserved for the library chart"),
        ("deployer", "reserved for the deploy orchestrator"),
        ("orders", "would share the ORDERS stream"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason_and_changes_nothing(
    workspace: Path, name: str, reason: str
) -> None:
    before = tree_state(workspace)
    script = "platform/scaffold/new_service.py"
    result = run(workspace, ".venv/bin/python", script, "new", name, "--uv", "uv", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("make new-service: ")
    assert reason in result.stderr
    assert tree_state(workspace) == before


def test_the_scaffold_writes_the_service_its_chart_and_every_registration(
    scaffolded: Path,
) -> None:
    status, diff = tree_state(scaffolded)
    changed = {line[3:] for line in status.splitlines()}
    # Only the files that cannot discover the service from its folder (platform/scaffold/README.md).
    edited = {line[3:] for line in status.splitlines() if line.startswith(" M")}
    assert edited == {
        "pyproject.toml",
        "uv.lock",
        "skaffold.yaml",
        "platform/nats/local.conf",
        "charts/nats/files/users.conf",
        "charts/postgres/values-local.yaml",
        ".gitlab-ci.yml",
    }
    # The services' shared Dockerfile builds it (services/Dockerfile): no Dockerfile of its own.
    assert not any(path.endswith("Dockerfile") for path in changed), changed
    for new in (
        "services/inventory/src/inventory_service/main.py",
        "services/inventory/src/inventory_service/migrations/versions/0001_create_items.py",
        "services/inventory/tests/test_inventory_api.py",
        "charts/inventory/values.schema.json",
        "charts/inventory/charts/flotilla-lib-0.1.0.tgz",
    ):
        assert new in changed, f"{new} was not written"
    for folder in ("services/inventory", "charts/inventory"):
        for path in (scaffolded / folder).rglob("*"):
            if path.is_file() and path.suffix != ".tgz":
                assert "payment" not in path.read_text().lower(), f"{path} still says payment"
    assert '"inventory-service",' in diff
    assert 'user: inventory, password: "inventory-local-only"' in diff
    assert "user: inventory, password: $NATS_PASSWORD_INVENTORY" in diff
    assert "+  - inventory\n" in diff  # its PostgreSQL role and database in the local cluster


def test_the_service_passes_ruff_and_mypy(scaffolded: Path) -> None:
    paths = python_files_touched(scaffolded, "services/inventory")
    run(scaffolded, ".venv/bin/ruff", "check", *paths)
    run(scaffolded, ".venv/bin/ruff", "format", "--check", *paths)
    run(scaffolded, ".venv/bin/mypy", *paths)


def test_the_chart_and_the_ci_definitions_pass_their_suites(
    repo_root: Path, scaffolded: Path
) -> None:
    helm = str(built_tool(repo_root, "helm"))
    chart = "charts/inventory"
    # The chart refuses SQLite on an emptyDir, as payment's does: lint it with the local
    # cluster's values (PostgreSQL by reference), which the scaffold copies too.
    local = f"{chart}/values-local.yaml"
    tag = f"image.tag={TAG}"
    lint = run(scaffolded, helm, "lint", "--strict", chart, "--values", local, "--set", tag)
    assert "0 chart(s) failed" in lint.stdout
    refused_sqlite = run(scaffolded, helm, "template", NAME, chart, "--set", tag, check=False)
    assert "database.existingSecret is required" in refused_sqlite.stderr, refused_sqlite.stderr
    rendered = run(scaffolded, helm, "template", NAME, chart, "--values", local, "--set", tag)
    assert "name: inventory-database" in rendered.stdout
    # The nats release gives the new user its password from the nats-users Secret.
    nats = run(
        scaffolded, helm, "template", "nats", "charts/nats", "--namespace", "nats",
        "--values", "charts/nats/values-local.yaml", "--set", "image.tag=2.15.1-a8f3d21",
    )  # fmt: skip
    assert "- name: NATS_PASSWORD_INVENTORY\n" in nats.stdout
    refused = run(
        scaffolded, helm, "template", NAME, chart, "--set", "image.tag=latest", check=False
    )
    assert refused.returncode != 0
    assert "at '/image/tag'" in refused.stderr, refused.stderr
    # The chart contract tests of the new chart (lint, render matrix, policies, schema), and the
    # CI definitions: the Dockerfile rules, skaffold diagnose and render of every module.
    result = run(
        scaffolded,
        ".venv/bin/pytest", "-q", "-p", "no:cacheprovider", "-m", "not e2e",
        "tests/charts", "pipelines/tests/test_ci_definitions_lint.py",
        "-k", f"{NAME} or skaffold or every_deployable or copied_path",
    )  # fmt: skip
    assert " passed" in result.stdout, result.stdout
    assert "skipped" not in result.stdout, result.stdout


def test_ci_skaffold_and_make_run_know_the_service(scaffolded: Path) -> None:
    [module] = [
        config
        for config in yaml.safe_load_all((scaffolded / "skaffold.yaml").read_text())
        if config["metadata"]["name"] == NAME
    ]
    assert module["build"]["artifacts"] == [
        {
            "image": "inventory-service",
            "context": ".",
            "docker": {
                "dockerfile": "services/Dockerfile",
                "buildArgs": {"SERVICE": "inventory", "PACKAGE": "inventory_service"},
            },
        }
    ]
    [release] = module["manifests"]["helm"]["releases"]
    assert (release["name"], release["chartPath"]) == (NAME, "charts/inventory")
    assert release["setValueTemplates"]["image.tag"] == "{{.IMAGE_TAG_inventory_service}}"
    modules = yaml.safe_load_all((scaffolded / "skaffold.yaml").read_text())
    names = [config["metadata"]["name"] for config in modules]
    assert names[-1] == "deployer", "the deployer's module stays last"

    # The CI matrix comes from the folders: the new ones make it a changed deployable.
    status = run(scaffolded, "git", "status", "--porcelain", "--untracked-files=all").stdout
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pipelines_cli.changes import affected\n"
        "from pipelines_cli.deployables import discover\n"
        "paths = [line[3:] for line in sys.stdin.read().splitlines()]\n"
        "changes = affected([p for p in paths if p.startswith('services/')], discover(Path()))\n"
        "print(json.dumps(changes.matrix()))\n"
    )
    matrix: dict[str, Any] = json.loads(
        subprocess.run(
            [str(scaffolded / ".venv/bin/python"), "-c", probe],
            cwd=scaffolded,
            input=status,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(scaffolded / "pipelines/src")},
        ).stdout
    )
    assert matrix == {
        "include": [{"service": NAME, "folder": "services/inventory", "chart": "charts/inventory"}]
    }

    devrun = run(
        scaffolded,
        ".venv/bin/python", "-c",
        "from devkit.devrun import SERVICES; print(*(s.name for s in SERVICES))",
    )  # fmt: skip
    assert NAME in devrun.stdout.split()


def test_the_service_passes_its_own_tests(scaffold: Scaffold) -> None:
    # The API on SQLite and PostgreSQL, the outbox event, schemathesis and the NATS user.
    returncode = scaffold.own_tests.wait(timeout=600)
    output = scaffold.own_tests_log.read_text()
    assert returncode == 0, output
    assert " passed" in output, output
    assert "skipped" not in output, output


def test_a_second_service_with_the_longest_dashed_name_is_lint_clean_and_removed_alone(
    scaffold: Scaffold,
) -> None:
    scaffold.own_tests.wait(timeout=600)  # uv sync changes the venv they run in
    scaffolded = scaffold.path
    before = tree_state(scaffolded)
    make(scaffolded, "new-service", LONG_NAME)
    paths = python_files_touched(scaffolded, f"services/{LONG_NAME}")
    run(scaffolded, ".venv/bin/ruff", "check", *paths)
    run(scaffolded, ".venv/bin/ruff", "format", "--check", *paths)
    run(scaffolded, ".venv/bin/mypy", f"services/{LONG_NAME}")
    diff = tree_state(scaffolded)[1]
    assert "password: $NATS_PASSWORD_STOCK_LEVEL_OF_THE_WAREHOUSE_9" in diff
    assert "+  - stock_level_of_the_warehouse_9\n" in diff
    make(scaffolded, "remove-service", LONG_NAME)
    assert tree_state(scaffolded) == before


def test_remove_service_restores_the_tree_exactly(scaffold: Scaffold) -> None:
    scaffold.own_tests.wait(timeout=600)
    scaffolded = scaffold.path
    result = make(scaffolded, "remove-service", NAME)
    assert f"removed services/{NAME} and charts/{NAME}" in result.stdout
    assert tree_state(scaffolded) == ("", "")
    refused = run(scaffolded, "make", "-s", "remove-service", "name=payment", check=False)
    assert refused.returncode != 0
    assert "one of the platform's own services" in refused.stderr
