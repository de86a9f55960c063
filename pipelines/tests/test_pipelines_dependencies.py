"""CI's logic stands without the deployer: it shares only the event contract with it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pipelines_cli

PIPELINES = Path(pipelines_cli.__file__).resolve().parents[2]


def test_the_pipelines_distribution_does_not_depend_on_the_deployer() -> None:
    project = tomllib.loads((PIPELINES / "pyproject.toml").read_text())["project"]
    assert "flotilla-contract" in project["dependencies"]
    assert not [d for d in project["dependencies"] if d.startswith("flotilla-deployer")]


def test_no_pipelines_command_imports_the_deployer() -> None:
    commands = sorted(
        f"pipelines_cli.{path.stem}"
        for path in (PIPELINES / "src" / "pipelines_cli").glob("*.py")
        if path.stem != "__main__"
    )
    code = (
        "import importlib, json, sys\n"
        f"for name in {commands!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    assert "deploy_contract.events" in loaded
    assert [m for m in loaded if m == "deployer" or m.startswith("deployer.")] == []
