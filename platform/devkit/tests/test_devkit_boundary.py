"""The development kit stays out of every image: no service and not the deployer depend on it
(as uv.lock resolves them, which is what their Dockerfiles install), and the build context the
images are built from does not even carry its folder. The root project, for development, does
install it. (pipelines/tests/test_pipelines_image_builds.py reads a built image's files.)"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from kit import layout
from pipelines_cli.contentkey import DockerIgnore

DEV_DISTRIBUTION = "flotilla-devkit"
CHASSIS = "flotilla-kit"
DEPLOYER = "flotilla-deployer"


def locked_packages(root: Path) -> dict[str, dict[str, Any]]:
    """uv.lock's packages by name."""
    lock = tomllib.loads((root / "uv.lock").read_text())
    return {package["name"]: package for package in lock["package"]}


def closure(packages: dict[str, dict[str, Any]], name: str) -> set[str]:
    """``name`` and every package it needs at run time, as locked (no dev groups, all extras)."""
    found: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        package = packages[current]
        needed = list(package.get("dependencies", []))
        for extra in package.get("optional-dependencies", {}).values():
            needed += extra
        todo += [dependency["name"] for dependency in needed]
    return found


def image_projects(root: Path) -> list[str]:
    """The distribution of every service (services/<name>/pyproject.toml) and the deployer."""
    names = [
        tomllib.loads((root / "services" / service / "pyproject.toml").read_text())["project"][
            "name"
        ]
        for service in layout.service_names(root)
    ]
    return [*names, DEPLOYER]


def test_the_lock_installs_the_development_kit_for_development_only(repo_root: Path) -> None:
    packages = locked_packages(repo_root)
    assert DEV_DISTRIBUTION in closure(packages, "flotilla")  # the root project: make deps
    projects = image_projects(repo_root)
    assert len(projects) >= 5  # four services and the deployer at least
    for project in projects:
        needed = closure(packages, project)
        assert CHASSIS in needed, project
        assert DEV_DISTRIBUTION not in needed, f"{project} would install the development kit"


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("platform/kit/src/kit/app.py", False),
        ("platform/devkit/pyproject.toml", True),
        ("platform/devkit/src/devkit/localstack/ports.py", True),
        ("platform/devkit/src/devkit/devrun.py", True),
    ],
)
def test_the_build_context_leaves_the_development_kit_out(
    repo_root: Path, path: str, ignored: bool
) -> None:
    assert (repo_root / path).is_file()
    assert DockerIgnore.of(repo_root).ignored(path) is ignored
