"""How a run with pytest-xdist workers is spread: a real pytest with two workers over a small
tree of tests that record which worker ran them, when, and at which CPU priority."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

RECORDER = """
import json, os, time
from pathlib import Path
from typing import Any

def record(name):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    line = json.dumps({"name": name, "worker": worker, "at": time.monotonic(),
                       "nice": os.getpriority(os.PRIO_PROCESS, 0)})
    with open(os.environ["RECORD_FILE"], "a") as sink:
        sink.write(line + "\\n")
    time.sleep(0.3)
"""

TREE = {
    "conftest.py": 'pytest_plugins = ["devkit.testing.workers"]\n',
    "recorder.py": RECORDER,
    "tests/__init__.py": "",
    "tests/shared/__init__.py": "",
    "tests/shared/conftest.py": """
import pytest

@pytest.fixture(scope="package")
def stack():
    return object()
""",
    "tests/shared/test_shared_a.py": """
from recorder import record

def test_a1(stack): record("shared_a1")
def test_a2(stack): record("shared_a2")
""",
    "tests/shared/test_shared_b.py": """
from recorder import record

def test_b1(stack): record("shared_b1")
def test_b2(stack): record("shared_b2")
""",
    "tests/test_plain.py": """
from recorder import record

def test_p1(): record("plain_1")
def test_p2(): record("plain_2")
def test_p3(): record("plain_3")
""",
    "units/test_units.py": """
from recorder import record

def test_u1(): record("unit_1")
def test_u2(): record("unit_2")
""",
    "units/test_zz_real.py": """
import pytest
from recorder import record

pytestmark = pytest.mark.real_node

def test_r1(): record("real_1")
def test_r2(): record("real_2")
def test_r3(): record("real_3")
""",
}


def run(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    """The records of a pytest run over TREE in ``tmp_path``, and its output."""
    for name, text in TREE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    record = tmp_path / "record.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path,
        env={"RECORD_FILE": str(record), "PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in record.read_text().splitlines()], result.stdout


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["name"]): r for r in records}


@pytest.mark.timeout(180)
def test_with_workers_real_node_tests_run_together_last_and_shared_fixtures_stay_whole(
    tmp_path: Path,
) -> None:
    listed, output = run(tmp_path, "-n", "2")
    records = by_name(listed)
    assert len(records) == 12
    real = [records[f"real_{i}"] for i in (1, 2, 3)]
    # One worker runs every real-node test, in order, once every other test has run.
    assert len({r["worker"] for r in real}) == 1
    assert [r["at"] for r in real] == sorted(r["at"] for r in real)
    others = [r for n, r in records.items() if not n.startswith("real_")]
    assert min(r["at"] for r in real) > max(r["at"] for r in others)
    # A package whose tests share a package-scoped fixture runs on one worker; so does a module.
    shared = {records[n]["worker"] for n in ("shared_a1", "shared_a2", "shared_b1", "shared_b2")}
    assert len(shared) == 1
    assert len({records[f"plain_{i}"]["worker"] for i in (1, 2, 3)}) == 1
    # Real-node tests keep the default CPU priority; the others run at a lower one.
    assert {r["nice"] for r in real} == {0}
    assert {r["nice"] for r in others} == {5}
    # The end of the run says when the real-node tests began and what ran beside them.
    assert re.search(
        r"real-node tests began \d+ s into the run on gw\d; other tests ran beside "
        r"them for \d+ s",
        output,
    ), output


@pytest.mark.timeout(180)
def test_without_workers_the_system_suites_run_first_and_the_real_node_tests_last(
    tmp_path: Path,
) -> None:
    listed, output = run(tmp_path)
    order = [str(r["name"]) for r in listed]
    assert order[-3:] == ["real_1", "real_2", "real_3"]
    # tests/ (the system suites) before the unit suites.
    assert order.index("unit_1") > max(order.index(f"plain_{i}") for i in (1, 2, 3))
    # Without workers nobody's priority changes.
    assert {r["nice"] for r in run(tmp_path / "again")[0]} == {os.getpriority(os.PRIO_PROCESS, 0)}
    assert "real-node tests began" not in output
