"""`make demo` as a user runs it: a subprocess with its own run directory, ports and cluster (so it
can run alongside other tests), which must finish, exit 0, tell the story's key facts, and leave
no process behind; and on Ctrl-C or a failed step, stop everything it started and say why."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.real_node]

DEMO = Path(__file__).resolve().parents[2] / "platform" / "demo" / "demo.py"
# The demo's modules (demo.py runs as a script, so they import each other by their names).
sys.path.insert(0, str(DEMO.parent))

from demo_common import SERVICES  # noqa: E402
from demo_supervisor import Supervisor  # noqa: E402


def demo_command(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(DEMO), "--run-dir", str(run_dir), "--no-color", *args]


def leftovers(run_dir: Path) -> list[str]:
    """Processes whose command line or environment names the run directory: NATS, the services
    and the deployer (their store and databases are in it), the cluster's components."""
    marker = str(run_dir).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


def logs_of(run_dir: Path) -> str:
    """The end of every log the demo kept, for a failure message."""
    parts = []
    for log in sorted((run_dir / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-20:]
        parts.append(f"--- {log.name}\n" + "\n".join(lines))
    return "\n".join(parts)


def failure_report(output: str, run_dir: Path) -> str:
    """The demo's last lines first (where its error is: a long report is cut in the middle by
    CI's summary), then its whole output and the end of its logs."""
    tail = "\n".join(output.splitlines()[-25:])
    return f"the demo's last lines:\n{tail}\n\nits whole output:\n{output}\n{logs_of(run_dir)}"


@pytest.mark.timeout(900)
def test_the_demo_runs_to_the_end_and_cleans_up(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    began = time.monotonic()
    result = subprocess.run(
        demo_command(run_dir), capture_output=True, text=True, timeout=880, check=False
    )
    took = time.monotonic() - began
    output = result.stdout + result.stderr
    assert result.returncode == 0, failure_report(output, run_dir)
    flat = " ".join(output.split())  # long lines wrap at the console's width
    # NATS and PostgreSQL as real pods in the cluster; CI's NATS is only for CI's events.
    assert "NATS (JetStream; the services' bus) and PostgreSQL as real pods" in flat
    # Every image built from the CI checkout and published as the reference pushed.
    assert "4 image(s) built from their Dockerfiles (buildah) and pushed" in flat
    assert re.search(r"--image ghcr\.io/flotilla/order-service:1\.1\.0-[0-9a-f]{7}", flat)
    # Every service released, an order paid through the gateway.
    assert output.count("succeeded") >= 4, output
    assert re.search(r"order [0-9a-f]{8} is paid", output), output
    # Order alone rolled: its own line in the before/after table, the others unchanged.
    assert re.search(r"^\s+order\s+order-\S+ → order-\S+\s+1 → 2\s.*rolled\s*$", output, re.M)
    others = [service for service in SERVICES if service != "order"]
    for service in others:
        assert re.search(rf"^\s+{service}\s+{service}-\S+ \(same\).*unchanged\s*$", output, re.M)
    kept = f"{', '.join(others[:-1])} and {others[-1]} kept their ReplicaSets"
    assert f"Only order rolled: {kept}" in flat
    # The broken image (derived with buildah) failed and was rolled back: one terminal event,
    # rolled_back, saying what failed (the deployer stopped waiting once it kept crashing); CI
    # saw it fail.
    assert "buildah config --cmd" in flat
    assert re.search(
        r"^\s+\+[\d.]+s rolled_back stopped waiting: the new pods cannot run; the rollout "
        r"failed and was rolled", output, re.M,
    ), output  # fmt: skip
    assert re.search(r"container order: Error \(exit 1\), restarted \d+ times", flat), output
    assert not re.search(r"^\s+\+[\d.]+s failed\s", output, re.M), output
    assert "pipelines wait exited 3" in output
    assert re.search(r"Rolled back: order-\S+ \(1\.1\.0-[0-9a-f]{7}\) kept serving", output)
    # The lowered memory limit: warned in the plan, OOM-killed, rolled back, limit restored.
    assert "memory limit lowered" in flat
    assert re.search(r"pod order-\S+ container order: OOMKilled", flat), output
    assert re.search(r"Caught: .* OOM-killed container order .* restored the 256Mi limit", flat)
    # Steady traffic through the gateway during chapters 4 to 6: none of it failed.
    assert re.search(r"Zero downtime: \d+ requests, none failed", flat), output
    # A canary of an image failing a fifth of its requests, measured by the real Prometheus that
    # scrapes the pods: aborted at its first analysis, naming what it measured and the threshold.
    assert "✓ Prometheus" in output
    assert "buildah config --env SERVICE_FAULT_ERROR_RATIO=0.2" in flat
    assert re.search(r"canary analysing weight 50%: stable 1 · canary 1 pods", flat), output
    assert re.search(
        r"Canary aborted: success rate \d+\.\d% is below the threshold 99\.0%.* at the first "
        r"analysis; \d+ of \d+ requests failed meanwhile .* none after",
        flat,
    ), output
    # Environments: order's next release flows dev -> staging by itself (soak, then an analysis
    # of dev's pods by the real Prometheus), is held at prod by a freeze that says until when,
    # and is approved into prod with a reason; the same release in every environment.
    assert "serves dev (flotilla-demo), staging (flotilla-demo-staging) and prod" in flat
    assert re.search(r"→ staging .*analysis ✓ healthy, \d+ requests", flat), output
    assert re.search(
        r"Held at prod: frozen by demo-freeze \(the demo's change freeze\) until "
        r"\d{4}-\d\d-\d\d \d\d:\d\d Europe/Berlin",
        flat,
    ), output
    assert re.search(r"Promoted to prod: through the freeze .* none failed", flat), output
    release = re.search(r"release (order-[0-9a-f]{12}): built once", flat)
    assert release, output
    for environment in ("dev", "staging", "prod"):
        assert re.search(
            rf"^\s+{environment}\s+1\.4\.0-[0-9a-f]{{7}}\s+{release.group(1)}\s+succeeded\s*$",
            output,
            re.M,
        ), output
    assert "DORA per environment, from the deployer's ledger" in flat
    # The closing table shows order's last outcome in dev: the release promoted since.
    assert re.search(
        r"^\s+order\s+deployed\s+\d+\s+1\.4\.0-[0-9a-f]{7}\s+succeeded\s*$", output, re.M
    )
    assert "demo finished in" in output
    assert "Traceback" not in output
    assert not leftovers(run_dir)
    assert not list((run_dir / "cluster" / "kwok" / "clusters").glob("*"))
    print(f"the demo took {took:.0f} s")


def start_until(run_dir: Path, out: Path, marker: str) -> subprocess.Popen[bytes]:
    """Start the demo and return once its output shows ``marker`` (CI's NATS and the cluster
    with its real node are up by "✓ cluster"; NATS and PostgreSQL run in it by "✓ in-cluster")."""
    with out.open("wb") as sink:
        demo = subprocess.Popen(demo_command(run_dir), stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while marker not in out.read_text():
        assert demo.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.2)
    time.sleep(1)
    assert leftovers(run_dir), "nothing was running"
    return demo


@pytest.mark.timeout(420)
def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    out = tmp_path / "demo.out"
    demo = start_until(run_dir, out, "✓ in-cluster")
    try:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=120) == 130, out.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
    output = out.read_text()
    assert "interrupted" in output
    # Every command it was running was reaped before its event loop closed: no asyncio noise.
    assert "Traceback" not in output
    assert "Exception ignored" not in output
    assert "logs kept in" in output
    assert not leftovers(run_dir), output
    assert not list((run_dir / "cluster" / "kwok" / "clusters").glob("*"))


@pytest.mark.timeout(420)
def test_the_next_run_cleans_up_after_a_demo_killed_with_sigkill(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    demo = start_until(run_dir, tmp_path / "demo.out", "✓ cluster")
    demo.kill()
    demo.wait()
    assert leftovers(run_dir), "kill -9 stops nothing, so something must be left"
    # What the next demo in this run directory does first (before it starts anything).
    Supervisor(run_dir.resolve()).prepare()
    assert not leftovers(run_dir)
    assert not (run_dir / "cluster").exists()


@pytest.mark.timeout(600)
def test_a_failed_step_exits_1_says_what_failed_and_cleans_up(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    # No rollout is ready within a 1 s helm timeout: the first release fails.
    result = subprocess.run(
        demo_command(run_dir, "--helm-timeout", "1"),
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "the demo failed: the first release did not succeed" in output
    assert "logs kept in" in output
    assert not leftovers(run_dir), output
    assert not list((run_dir / "cluster" / "kwok" / "clusters").glob("*"))


@pytest.mark.timeout(60)
def test_a_cluster_run_dir_without_a_cluster_is_refused_with_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        demo_command(tmp_path / "demo", "--cluster-run-dir", str(tmp_path / "nothing")),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    flat = " ".join(output.split())  # the console wraps long lines where the paths put them
    assert "no kubeconfig there" in flat
    assert "cluster.sh up" in flat
    assert "Traceback" not in output
    assert not leftovers(tmp_path / "demo"), output
