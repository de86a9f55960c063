"""A helm process dies with the deployer that started it (kill -9 included), whether setpriv
starts it or the fallback sets the parent-death signal in the forked child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deployer.adapters.helm.process import _setpriv

# A deployer in miniature: run_helm of a stand-in "helm" that notes its pid and waits.
DEPLOYER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from deployer.adapters.helm import process

    if sys.argv[2] == "fallback":
        process._setpriv = lambda: None
    asyncio.run(process.run_helm(
        Path(sys.argv[1]), [], env={}, what="a long upgrade", deadline=120
    ))
    """
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # dead, waiting for whoever inherited it to reap it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux kernel setting")
@pytest.mark.parametrize("start", ["setpriv", "fallback"])
def test_helm_dies_when_the_deployer_is_killed(tmp_path: Path, start: str) -> None:
    if start == "setpriv":
        assert _setpriv() is not None, "setpriv (util-linux 2.33+) is on this machine's PATH"
    pid_file = tmp_path / "helm.pid"
    helm = tmp_path / "helm"
    helm.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 120\n")
    helm.chmod(0o755)
    deployer = subprocess.Popen([sys.executable, "-c", DEPLOYER, str(helm), start])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the stand-in helm never started"
            time.sleep(0.05)
        helm_pid = int(pid_file.read_text())
        assert not _gone(helm_pid)
    finally:
        deployer.send_signal(signal.SIGKILL)
        deployer.wait()
    deadline = time.monotonic() + 10
    while not _gone(helm_pid):
        if time.monotonic() > deadline:
            os.kill(helm_pid, signal.SIGKILL)
            pytest.fail("helm outlived the deployer that started it")
        time.sleep(0.05)
