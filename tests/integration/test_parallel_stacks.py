"""Local stacks started at the same moment never take each other's ports (devkit.localstack.ports):
every port is reserved for the process that chose it, before its server binds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.stack_runner", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ports_of(runners: list[subprocess.Popen[str]]) -> list[list[int]]:
    """Each runner's ports (its first line), then let them all stop."""
    try:
        found = []
        for runner in runners:
            assert runner.stdout is not None
            line = runner.stdout.readline()
            if not line:
                _, err = runner.communicate(timeout=60)
                pytest.fail(
                    f"a stack exited before it was ready (exit {runner.returncode}):\n{err}"
                )
            found.append(json.loads(line))
        return found
    finally:
        for runner in runners:
            if runner.poll() is None:
                assert runner.stdin is not None
                runner.stdin.close()
        for runner in runners:
            runner.wait(timeout=90)


def test_processes_choosing_ports_at_once_never_choose_the_same() -> None:
    # 4 x 300 ports out of 20,000: unreserved random choices would collide about 36 times.
    runners = [_start("ports", "300") for _ in range(4)]
    chosen = [port for ports in _ports_of(runners) for port in ports]
    assert len(chosen) == 1200
    assert len(set(chosen)) == len(chosen)


def test_platform_stacks_start_in_parallel(tmp_path: Path) -> None:
    directories = [tmp_path / f"stack-{index}" for index in range(3)]
    for directory in directories:
        directory.mkdir()
    runners = [_start("platform", str(directory)) for directory in directories]
    stacks = _ports_of(runners)
    every_port = [port for ports in stacks for port in ports]
    assert all(len(ports) == 5 for ports in stacks)  # NATS and four services, each ready
    assert len(set(every_port)) == len(every_port)
    assert all(runner.returncode == 0 for runner in runners)
