"""The helm client against the real helm and the local control plane: installs, reads, failures
classified as retryable or final, rollbacks and the recovery of releases left pending (the
classification of helm's messages alone: test_helm_errors.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.adapters.helm import Helm, HelmFinalError, HelmRetryableError
from devkit.localstack.ports import free_port

pytestmark = pytest.mark.e2e

TAG = "1.0.0-a1b2c3d"
NEW_TAG = "1.0.1-b2c3d4e"
# The never-ready marker of platform/cluster/stages.yaml: the word "neverready" in the image.
BROKEN_TAG = "1.0.1-neverready-b2c3d4e"
TIMEOUT = 60.0
BROKEN_TIMEOUT = 4.0


def values(tag: str = TAG, **more: Any) -> dict[str, Any]:
    """What a pipeline deploys for order: an immutable tag and PostgreSQL by reference (the chart
    refuses two replicas on SQLite; kwok starts no pod, so the Secret need not exist)."""
    return {
        "image": {"repository": "registry.local/order-service", "tag": tag},
        "database": {"existingSecret": "order-database"},
        **more,
    }


@pytest.fixture
def helm(helm_binary: Path, kubeconfig: Path, namespace: str, helm_env: dict[str, str]) -> Helm:
    """The client for the test's namespace."""
    return Helm(helm_binary, kubeconfig, namespace, env=helm_env)


@pytest.fixture
def chart(repo_root: Path) -> Path:
    return repo_root / "charts" / "order"


async def install(helm: Helm, chart: Path, tag: str = TAG) -> None:
    await helm.upgrade_install(
        "order", chart, values(tag), timeout_seconds=TIMEOUT, description=f"deploy {tag}"
    )


async def test_install_then_read_the_release(helm: Helm, chart: Path) -> None:
    starts: list[float] = []
    before = time.monotonic()
    result = await helm.upgrade_install(
        "order",
        chart,
        values(),
        timeout_seconds=TIMEOUT,
        description="pipeline=ci:1 commit=a1b2c3d",
        on_start=starts.append,
    )
    assert starts == [result.started_at]
    assert before <= result.started_at < before + 1
    assert result.duration_seconds > 0
    assert (result.returncode, result.revision) == (0, 1)
    assert result.command.startswith(f"{helm.binary} upgrade --install order {chart} --values -")
    assert "--wait=watcher" in result.command
    assert "--rollback-on-failure" in result.command
    assert TAG not in result.command, "values go through stdin, never the command line"

    manifest = await helm.get_manifest("order")
    assert manifest is not None
    kinds = [doc["kind"] for doc in yaml.safe_load_all(manifest) if doc]
    assert "Deployment" in kinds
    assert f"registry.local/order-service:{TAG}" in manifest

    status = await helm.status("order")
    assert status is not None
    assert (status.name, status.revision, status.status) == ("order", 1, "deployed")
    assert status.description == "pipeline=ci:1 commit=a1b2c3d"
    assert (status.chart, status.app_version) == ("order-0.1.0", "0.1.0")
    assert (status.image_repository, status.image_tag) == ("registry.local/order-service", TAG)
    assert not status.pending

    assert await helm.get_values("order") == values()
    history = await helm.history("order")
    assert [(r.revision, r.status, r.chart) for r in history] == [(1, "deployed", "order-0.1.0")]


async def test_the_render_after_an_upgrade_was_started_ahead_and_reads_the_chart_then(
    helm_binary: Path,
    kubeconfig: Path,
    namespace: str,
    helm_env: dict[str, str],
    chart: Path,
    tmp_path: Path,
) -> None:
    starts = tmp_path / "helm-starts.log"
    noted = tmp_path / "helm"  # the real helm, noting the command of each start
    noted.write_text(f'#!/bin/sh\necho "$1" >> {starts}\nexec {helm_binary} "$@"\n')
    noted.chmod(0o755)
    copy = tmp_path / "order"
    shutil.copytree(chart, copy)
    warm = Helm(noted, kubeconfig, namespace, env=helm_env, warm_renders=1)
    try:
        await warm.template("order", copy, values())
        await warm.upgrade_install(
            "order", copy, values(), timeout_seconds=TIMEOUT, description="first"
        )
        deadline = time.monotonic() + 10  # the next render's helm is starting now
        while starts.read_text().split() != ["template", "upgrade", "template"]:
            assert time.monotonic() < deadline, starts.read_text()
            await asyncio.sleep(0.02)
        # The chart changes while that render waits: helm loads it only once given its values.
        (copy / "templates" / "late.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added-while-waiting\n"
        )
        rendered = await warm.template("order", copy, values(NEW_TAG))
        assert starts.read_text().split() == ["template", "upgrade", "template"], "no new helm"
        assert "added-while-waiting" in rendered
        cold = Helm(helm_binary, kubeconfig, namespace, env=helm_env)
        assert rendered == await cold.template("order", copy, values(NEW_TAG))
    finally:
        warm.close()


async def test_missing_release_reads_as_nothing(helm: Helm, chart: Path) -> None:
    assert await helm.get_manifest("order") is None
    assert await helm.status("order") is None
    assert await helm.get_values("order") is None
    assert await helm.history("order") == []
    assert await helm.recover_pending("order") is None
    with pytest.raises(HelmFinalError) as error:
        await helm.rollback("order", None, timeout_seconds=TIMEOUT, description="back")
    assert error.value.reason == "release-not-found"
    assert "release: not found" in error.value.stderr


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (values("latest"), "/image/tag"),
        (values(replicaCount=0), "/replicaCount"),
        (values(replicas=2), "additional properties 'replicas' not allowed"),
    ],
)
async def test_values_refused_by_the_schema_are_final_and_name_the_field(
    helm: Helm, chart: Path, bad: dict[str, Any], field: str
) -> None:
    with pytest.raises(HelmFinalError) as error:
        await helm.upgrade_install(
            "order", chart, bad, timeout_seconds=TIMEOUT, description="bad values"
        )
    assert error.value.reason == "values-schema"
    assert field in str(error.value)
    assert field in error.value.stderr
    assert "upgrade --install order" in error.value.command
    assert await helm.status("order") is None, "nothing was installed"


async def test_missing_chart_is_final(helm: Helm, tmp_path: Path) -> None:
    with pytest.raises(HelmFinalError) as error:
        await helm.template("order", tmp_path, values())
    assert error.value.reason == "chart-not-found"
    assert str(tmp_path) in str(error.value)


async def test_never_ready_upgrade_fails_and_is_rolled_back(helm: Helm, chart: Path) -> None:
    await install(helm, chart)
    with pytest.raises(HelmFinalError) as error:
        await helm.upgrade_install(
            "order",
            chart,
            values(BROKEN_TAG),
            timeout_seconds=BROKEN_TIMEOUT,
            description="broken",
        )
    assert error.value.reason == "rolled-back"
    assert "Deployment/" in str(error.value)
    assert "not ready" in str(error.value)

    status = await helm.status("order")
    assert status is not None
    assert (status.revision, status.status, status.image_tag) == (3, "deployed", TAG)
    history = await helm.history("order")
    assert [r.status for r in history] == ["superseded", "failed", "deployed"]
    assert history[-1].rollback_revision == 1


async def test_stop_ends_the_wait_at_once_and_helm_rolls_back(helm: Helm, chart: Path) -> None:
    await install(helm, chart)
    stop = asyncio.Event()
    upgrade = asyncio.create_task(
        helm.upgrade_install(
            "order", chart, values(BROKEN_TAG), timeout_seconds=TIMEOUT, description="stopped",
            stop=stop,
        )
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while (status := await helm.status("order")) is None or status.status != "pending-upgrade":
        assert time.monotonic() < deadline, f"the upgrade never started: {status}"
        await asyncio.sleep(0.1)
    stopped = time.monotonic()
    stop.set()
    with pytest.raises(HelmFinalError) as error:
        await upgrade
    # Far sooner than the 60 s helm would have waited: it rolled back right away.
    assert time.monotonic() - stopped < TIMEOUT / 2
    assert error.value.reason == "rolled-back", error.value
    assert "context canceled" in str(error.value)
    status = await helm.status("order")
    assert status is not None
    assert (status.status, status.image_tag) == ("deployed", TAG)
    history = await helm.history("order")
    assert [r.status for r in history] == ["superseded", "failed", "deployed"]


async def test_never_ready_first_install_is_uninstalled(helm: Helm, chart: Path) -> None:
    with pytest.raises(HelmFinalError) as error:
        await helm.upgrade_install(
            "order", chart, values(BROKEN_TAG), timeout_seconds=BROKEN_TIMEOUT, description="x"
        )
    assert error.value.reason == "uninstalled"
    assert await helm.status("order") is None


async def test_rollback_to_the_previous_revision(helm: Helm, chart: Path) -> None:
    await install(helm, chart)
    await install(helm, chart, NEW_TAG)

    result = await helm.rollback("order", None, timeout_seconds=TIMEOUT, description="manual")

    assert result.returncode == 0
    status = await helm.status("order")
    assert status is not None
    assert (status.revision, status.status, status.image_tag) == (3, "deployed", TAG)
    assert status.description == "manual"


async def start_stuck_helm(
    helm: Helm, helm_env: dict[str, str], chart: Path, release_values: dict[str, Any], pending: str
) -> None:
    """Start ``helm upgrade --install --wait`` of a never-ready image, and kill -9 it once the
    release is ``pending``: the release is left as a killed deployer leaves it."""
    assert helm.kubeconfig is not None
    process = await asyncio.create_subprocess_exec(
        str(helm.binary), "upgrade", "--install", "order", str(chart), "--values", "-",
        "--wait", "--timeout", "60s", "--namespace", helm.namespace,
        "--kubeconfig", str(helm.kubeconfig),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, **helm_env},
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(yaml.safe_dump(release_values).encode())
    process.stdin.close()
    try:
        deadline = time.monotonic() + 30
        while (status := await helm.status("order")) is None or status.status != pending:
            assert time.monotonic() < deadline, f"the release never became {pending}: {status}"
            await asyncio.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def test_recover_a_release_left_pending_upgrade(
    helm: Helm, helm_env: dict[str, str], chart: Path
) -> None:
    await install(helm, chart)
    await start_stuck_helm(helm, helm_env, chart, values(BROKEN_TAG), "pending-upgrade")
    with pytest.raises(HelmRetryableError) as error:
        await install(helm, chart, NEW_TAG)
    assert error.value.reason == "operation-in-progress"

    done = await helm.recover_pending("order")

    assert done == "rolled order back to revision 1: revision 2 was left pending-upgrade"
    status = await helm.status("order")
    assert status is not None
    assert (status.revision, status.status, status.image_tag) == (3, "deployed", TAG)
    assert await helm.recover_pending("order") is None, "nothing left to recover"
    await install(helm, chart, NEW_TAG)
    status = await helm.status("order")
    assert status is not None
    assert (status.revision, status.status, status.image_tag) == (4, "deployed", NEW_TAG)


async def test_recover_a_first_install_left_pending(
    helm: Helm, helm_env: dict[str, str], chart: Path
) -> None:
    await start_stuck_helm(helm, helm_env, chart, values(BROKEN_TAG), "pending-install")

    done = await helm.recover_pending("order")

    assert done == "uninstalled order: revision 1 was left pending-install"
    assert await helm.status("order") is None
    await install(helm, chart)
    status = await helm.status("order")
    assert status is not None
    assert (status.revision, status.status) == (1, "deployed")


async def test_cancelling_an_upgrade_stops_helm_without_leaving_it_pending(
    helm: Helm, chart: Path
) -> None:
    await install(helm, chart)
    upgrade = asyncio.create_task(
        helm.upgrade_install(
            "order", chart, values(BROKEN_TAG), timeout_seconds=TIMEOUT, description="cancelled"
        )
    )
    deadline = time.monotonic() + 30
    while (status := await helm.status("order")) is None or status.status != "pending-upgrade":
        assert time.monotonic() < deadline, f"the upgrade never started: {status}"
        await asyncio.sleep(0.1)
    upgrade.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upgrade

    status = await helm.status("order")
    assert status is not None
    assert (status.status, status.image_tag) == ("deployed", TAG), "helm rolled back on SIGTERM"


@pytest.fixture
def closed_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Path:
    """The session cluster's kubeconfig pointed at a loopback port nothing listens on."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    closed = tmp_path / "kubeconfig.yaml"
    closed.write_text(yaml.safe_dump(config))
    return closed


async def test_unreachable_api_server_is_retryable(
    helm_binary: Path, closed_kubeconfig: Path, helm_env: dict[str, str]
) -> None:
    helm = Helm(helm_binary, closed_kubeconfig, "default", env=helm_env)

    with pytest.raises(HelmRetryableError) as error:
        await helm.status("order")
    assert error.value.reason == "api-unavailable"
    assert "connection refused" in error.value.stderr


async def test_missing_kubeconfig_is_final(
    helm_binary: Path, helm_env: dict[str, str], tmp_path: Path
) -> None:
    helm = Helm(helm_binary, tmp_path / "nope.yaml", "default", env=helm_env)
    with pytest.raises(HelmFinalError) as error:
        await helm.status("order")
    assert error.value.reason == "kubeconfig"
