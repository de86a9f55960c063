"""Real images without a Docker engine: buildah builds, a real docker-registry, no mocks.

The first run on a machine builds the base images (~1.5 min) and the order image (~1 min); later
runs reuse buildah's storage and layer cache, so most builds here are cache hits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_cli import buildah
from pipelines_cli.imagebuild import PushedImage, ensure_image
from pipelines_cli.registry import served_digest, split_reference
from pipelines_cli.testing import CliRun, GitRepo

pytestmark = pytest.mark.timeout(1800)
PAUSE_SOURCE = "platform/images/pause/pause.c"


def progress(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real docker-registry on a free loopback port, storage in a temporary folder."""
    buildah.require("buildah", "docker-registry")
    folder = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"docker-registry did not listen on {address}: {folder / 'registry.log'}")
    yield address
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def order_image(repo_root: Path, registry: str) -> PushedImage:
    """The order service's real image, built (or found by its content key) and pushed once."""
    return ensure_image(repo_root, "order", registry, progress=progress)


@pytest.fixture(scope="session")
def pause_image(repo_root: Path, registry: str) -> PushedImage:
    """The pause image, built by the same machinery and pushed once."""
    return ensure_image(repo_root, "pause", registry, progress=progress)


def _run_in(image: str, *command: str) -> str:
    container = buildah.run(["from", "--pull=never", image]).strip()
    try:
        # No network: the checks need none, and buildah's default one would leave a bridge
        # (cni-podman0) and iptables chains behind on the machine.
        isolation = f"--isolation={buildah.ISOLATION}"
        return buildah.run(["run", isolation, "--network", "none", container, "--", *command])
    finally:
        buildah.run(["rm", container])


def _served(pushed: PushedImage) -> str:
    host, path, tag = split_reference(pushed.destination)
    return served_digest(host, path, tag)


def test_the_order_image_is_pushed_by_path_and_its_digest_is_what_the_registry_serves(
    order_image: PushedImage, registry: str
) -> None:
    assert order_image.destination.startswith(f"{registry}/flotilla/order-service:0.1.0-")
    assert order_image.digest.startswith("sha256:")
    assert _served(order_image) == order_image.digest


def test_the_order_image_works(order_image: PushedImage) -> None:
    out = _run_in(
        order_image.image.reference,
        "python",
        "-c",
        "import os, order_service; print(os.getuid(), order_service.__name__)",
    )
    assert out.split() == ["10001", "order_service"]
    no_pip = _run_in(order_image.image.reference, "sh", "-c", "python -m pip 2>&1 || true")
    assert "No module named pip" in no_pip


def _site_packages_files(image: str) -> set[str]:
    """Every file installed in ``image``'s venv (/app/.venv), relative to its site-packages,
    read from the image's own filesystem (mounted, nothing run in it)."""
    container = buildah.run(["from", "--pull=never", image]).strip()
    try:
        root = Path(buildah.run(["mount", container]).strip())
        found = sorted((root / "app" / ".venv" / "lib").glob("python3*/site-packages"))
        assert len(found) == 1, f"no single site-packages under /app/.venv/lib: {found}"
        return {p.relative_to(found[0]).as_posix() for p in found[0].rglob("*") if p.is_file()}
    finally:
        buildah.run(["rm", container])


def test_a_built_service_image_contains_no_kit_development_tooling(
    order_image: PushedImage,
) -> None:
    """The chassis is installed; the development kit (platform/devkit: the local stack, the
    test fixtures, make run) is not, nor the modules it took out of kit."""
    files = _site_packages_files(order_image.image.reference)
    assert {"kit/app.py", "kit/events/bus.py", "order_service/main.py"} <= files
    assert any(f.startswith("flotilla_kit-") and f.endswith(".dist-info/RECORD") for f in files)
    development = sorted(
        f
        for f in files
        if f.startswith(("kit/localstack/", "kit/testing/", "devkit/", "flotilla_devkit-"))
        or f == "kit/devrun.py"
        or f.startswith("kit/__pycache__/devrun.")
    )
    assert development == [], "development tooling in the order image"


def test_an_unchanged_image_is_not_rebuilt_and_keeps_its_digest(
    order_image: PushedImage, repo_root: Path, registry: str
) -> None:
    started = time.monotonic()
    again = ensure_image(repo_root, "order", registry, progress=progress)
    assert again.image.cached
    assert again.image.key == order_image.image.key
    assert again.digest == order_image.digest
    assert time.monotonic() - started < 60


def test_the_pause_image_has_containerds_name_and_only_the_static_program(
    pause_image: PushedImage, registry: str
) -> None:
    assert pause_image.image.reference == "registry.k8s.io/pause:3.10.1"
    assert pause_image.destination == f"{registry}/pause:3.10.1"
    assert _served(pause_image) == pause_image.digest
    labels = buildah.image_labels(pause_image.image.reference)
    assert labels["dev.flotilla.content-key"] == pause_image.image.key
    container = buildah.run(["from", "--pull=never", pause_image.image.reference]).strip()
    try:
        root = Path(buildah.run(["mount", container]).strip())
        assert sorted(p.name for p in root.iterdir() if p.name not in {"dev", "proc", "sys"}) == [
            "pause"
        ]
        assert (
            b"GLIBC"
            not in subprocess.run(
                ["ldd", str(root / "pause")], capture_output=True, check=False
            ).stdout
        )
    finally:
        buildah.run(["rm", container])


def _start_pause(binary: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([str(binary)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert process.poll() is None, "pause exited on its own"
    return process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_pause_program_sleeps_until_sigterm_or_sigint(
    repo_root: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    binary = tmp_path / "pause"
    subprocess.run(
        ["gcc", "-Os", "-static", "-Wall", "-Werror", "-o", str(binary), repo_root / PAUSE_SOURCE],
        check=True,
    )
    process = _start_pause(binary)
    process.send_signal(sig)
    assert process.wait(timeout=5) == 0
    assert f"signal {int(sig)}" in (process.stderr.read() if process.stderr else "")


def test_the_pause_program_reaps_orphans_as_pid_1(repo_root: Path, tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    subprocess.run(["gcc", "-static", "-o", str(binary), repo_root / PAUSE_SOURCE], check=True)
    # pause as PID 1 of a new PID namespace; a shell started inside leaves an orphan behind.
    sandbox = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(binary)])
    try:
        time.sleep(0.3)
        pause_pid = int(Path(f"/proc/{sandbox.pid}/task/{sandbox.pid}/children").read_text())
        subprocess.run(
            ["nsenter", "-t", str(pause_pid), "-p", "--", "sh", "-c", "sleep 0.2 & exit 0"],
            check=True,
        )
        time.sleep(1.0)
        children = Path(f"/proc/{pause_pid}/task/{pause_pid}/children").read_text().split()
        zombies = [c for c in children if "State:\tZ" in Path(f"/proc/{c}/status").read_text()]
        assert zombies == []
        os.kill(pause_pid, signal.SIGTERM)
        assert sandbox.wait(timeout=5) == 0
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()


FIXTURE_DOCKERFILE = """\
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
COPY platform/images/greeter/greeting.txt /greeting.txt
CMD ["cat", "/greeting.txt"]
"""


def test_a_platform_image_is_rebuilt_when_a_file_it_copies_changes(
    git_repo: GitRepo, registry: str
) -> None:
    nonce = uuid.uuid4().hex
    git_repo.write("platform/images/greeter/Dockerfile", FIXTURE_DOCKERFILE)
    git_repo.write("platform/images/greeter/VERSION", "1.0.0\n")
    git_repo.write("platform/images/greeter/greeting.txt", f"hello {nonce}\n")
    git_repo.write(".dockerignore", "*\n!platform/images/\n")
    git_repo.commit("greeter")
    built: list[str] = []
    try:
        first = ensure_image(git_repo.path, "greeter", registry, progress=progress)
        built.append(first.image.reference)
        assert not first.image.cached
        assert first.image.reference.startswith("ghcr.io/flotilla/greeter:1.0.0-")
        second = ensure_image(git_repo.path, "greeter", registry, progress=progress)
        assert second.image.cached
        assert second.digest == first.digest
        git_repo.write("README.md", "not copied by the image\n")
        assert ensure_image(git_repo.path, "greeter", registry, progress=progress).image.cached

        git_repo.write("platform/images/greeter/greeting.txt", f"bonjour {nonce}\n")
        changed = ensure_image(git_repo.path, "greeter", registry, progress=progress)
        built.append(changed.image.reference)
        assert not changed.image.cached
        assert changed.image.key != first.image.key
        assert changed.digest != first.digest
        assert _served(changed) == changed.digest
        assert _run_in(changed.image.reference, "cat", "/greeting.txt") == f"bonjour {nonce}\n"
    finally:
        for reference in built:
            subprocess.run(["buildah", "rmi", "--force", reference], capture_output=True)


def test_cli_images_pushes_to_the_cluster_registry_and_says_when_there_is_none(
    run_cli: CliRun, order_image: PushedImage, pause_image: PushedImage, registry: str,
    tmp_path: Path, repo_root: Path,
) -> None:  # fmt: skip
    env = {"FLOTILLA_REGISTRY": ""}
    missing = run_cli("images", "order", "--repo", str(repo_root), cwd=tmp_path, env=env)
    if not (repo_root / ".run/cluster/registry").exists():
        assert missing.returncode == 1
        assert "no cluster registry: run make cluster-up first" in missing.stderr
    result = run_cli("images", "order", "pause", env={"FLOTILLA_REGISTRY": registry}, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        ["order", order_image.image.reference, order_image.digest],
        ["pause", "registry.k8s.io/pause:3.10.1", pause_image.digest],
    ]
    assert "not rebuilt" in result.stderr


def test_cli_build_with_buildah_prints_the_pushed_digest(
    run_cli: CliRun, order_image: PushedImage, registry: str, tmp_path: Path
) -> None:
    metadata = tmp_path / "build.json"
    result = run_cli(
        "build", "order", "--builder", "buildah", "--content-tag", "--push-to", registry,
        "--metadata-file", str(metadata), "--source", "https://x.example/flotilla",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outputs = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert outputs["cached"] == "true"
    assert outputs["digest"] == order_image.digest
    assert outputs["pushed"] == order_image.destination
    assert f'"containerimage.digest": "{order_image.digest}"' in metadata.read_text()
