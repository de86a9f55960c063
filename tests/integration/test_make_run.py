"""`make run` brings up NATS and every service; each is live and ready (its NATS user works)."""

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devkit.devrun import SERVICES
from devkit.localstack.ports import free_port, free_ports


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_make_run_starts_every_service_ready(repo_root: Path, tmp_path: Path) -> None:
    base_port = free_ports(max(s.port_offset for s in SERVICES) + 1)
    command = [
        sys.executable, "-m", "devkit.devrun",
        "--nats-port", str(free_port()),
        "--base-port", str(base_port),
        "--run-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    log = (tmp_path / "run.log").open("wb")
    runner = subprocess.Popen(command, cwd=repo_root, stdout=log, stderr=subprocess.STDOUT)
    try:
        urls = [f"http://127.0.0.1:{base_port + s.port_offset}" for s in SERVICES]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(status(url + "/readyz") == 200 for url in urls):
                break
            time.sleep(0.2)
        output = (tmp_path / "run.log").read_text()
        for url in urls:
            assert status(url + "/healthz") == 200, output
            assert status(url + "/readyz") == 200, output
        assert "gateway |" in output
    finally:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 0
        log.close()


def test_make_run_installs_only_uv_and_the_venv(repo_root: Path) -> None:
    planned = subprocess.run(
        ["make", "--dry-run", "--always-make", "run"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "devkit.devrun" in planned
    assert "uv sync" in planned
    for heavy in ("build-tools.sh", "node-deps.sh", "install-tools.sh", "pipelines/tools.sh"):
        assert heavy not in planned, f"`make run` would run {heavy}:\n{planned}"
