"""How a helm process runs, with a stand-in helm (a script): on the deployer's own event loop
(uvloop) as on asyncio's, values in and output back, stopped on request; and it dies with the
deployer that started it (kill -9 included), whether setpriv starts it or the fallback sets the
parent-death signal in the forked child. Real helm: test_helm_client.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import uvloop

from deployer.adapters.helm import HelmFinalError
from deployer.adapters.helm.process import _setpriv, run_helm

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


@pytest.fixture
def echo_helm(tmp_path: Path) -> Path:
    """A "helm" that prints its stdin, and fails with its first argument as stderr when it has
    one ("wait": waits until it is stopped, saying so on stderr)."""
    helm = tmp_path / "helm"
    helm.write_text(
        "#!/bin/sh\n"
        "if [ \"$1\" = wait ]; then trap 'echo stopped >&2; exit 1' TERM; "
        "while :; do sleep 0.05; done; fi\n"
        'if [ -n "$1" ]; then echo "$1" >&2; exit 1; fi\n'
        "cat\n"
    )
    helm.chmod(0o755)
    return helm


async def _round_trip(helm: Path) -> None:
    started: list[float] = []
    result = await run_helm(
        helm, [], env=dict(os.environ), what="a render", deadline=30, values={"image": "x"},
        on_start=started.append,
    )  # fmt: skip
    assert json.loads(result.stdout) == {"image": "x"}
    assert result.returncode == 0
    assert started == [result.started_at]
    with pytest.raises(HelmFinalError, match=r"a read failed .*nope"):
        await run_helm(helm, ["Error: nope"], env=dict(os.environ), what="a read", deadline=30)
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(
        run_helm(helm, ["wait"], env=dict(os.environ), what="an upgrade", deadline=30, stop=stop)
    )
    await asyncio.sleep(0.3)
    stop.set()
    with pytest.raises(HelmFinalError) as stopped:
        await waiting
    assert "stopped" in stopped.value.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_values_in_output_back_and_stop_on_either_event_loop(echo_helm: Path, loop: str) -> None:
    if loop == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_round_trip(echo_helm))
    else:
        asyncio.run(_round_trip(echo_helm))
