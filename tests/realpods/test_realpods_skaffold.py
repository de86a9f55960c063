"""skaffold on the real cluster with no Docker engine: ``skaffold run -m order`` and ``skaffold
dev -m order`` build order with the buildah profile's custom builder, push it to the cluster's
registry and roll only order's Deployment (the other services keep their ReplicaSets); an edit of
order's code during ``skaffold dev`` gives a new immutable tag and one more rollout of order;
skaffold's artifact cache skips the build of a tree it has built."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_cli.incluster import install_release
from pipelines_cli.registry import served_digest
from tests.e2e.clustersupport import REPO_ROOT
from tests.realpods.realcluster import SERVICES, Platform, pod_ready
from tests.realpods.rollouts import active, replica_sets, settled
from tests.realpods.skaffoldsupport import (
    Skaffold,
    SkaffoldDev,
    deployment_image,
    skaffold_binary,
    work_tree_copy,
)

pytestmark = [pytest.mark.e2e, pytest.mark.real_node, pytest.mark.timeout(900)]

# skaffold.yaml's tag: 0.0.0-dev.<UTC time>-<sha7>, valid for the charts' schema.
DEV_TAG = re.compile(r"^0\.0\.0-dev\.\d{14}-[0-9a-f]{7,40}$")
OTHERS = tuple(s for s in SERVICES if s != "order")
# Wide enough for a cold buildah build of order (the layers of its dependencies included).
BUILD_AND_ROLL = 420.0
# skaffold dev: after each deploy (status check passed) it says so and watches again.
WATCHING = "Watching for changes"


def _log(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


@pytest.fixture
def skaffold(platform: Platform) -> Iterator[Skaffold]:
    """skaffold bound to the platform's cluster; afterwards order is the platform's release again
    (its own image, values-local.yaml, no skaffold labels) with ready pods, for the tests after."""
    yield Skaffold(skaffold_binary(), platform)
    install_release(
        REPO_ROOT, platform.cluster, "order", platform.images["order"].image.reference,
        namespace=platform.namespace,
    )  # fmt: skip
    settled(platform, "order")


def _others(platform: Platform) -> dict[str, dict[str, tuple[int, int]]]:
    return {service: replica_sets(platform, service) for service in OTHERS}


def _rolled_once(
    platform: Platform, before: dict[str, tuple[int, int]], what: str
) -> dict[str, tuple[int, int]]:
    """Order's ReplicaSets after a rollout that added exactly one, the only active one."""
    settled(platform, "order")
    after = replica_sets(platform, "order")
    new = set(after) - set(before)
    assert len(new) == 1, f"{what}: expected one new ReplicaSet of order, got {sorted(new)}"
    assert active(after) == new, f"{what}: active ReplicaSets {sorted(active(after))}, not {new}"
    return after


def _check_image(platform: Platform, skaffold: Skaffold, tag: str) -> str:
    """Order's Deployment runs ``<default repo>/order-service`` at the digest the registry serves
    for ``tag`` (skaffold's IMAGE_DIGEST_), and its pods are ready."""
    image, _ = deployment_image(platform, "order")
    digest = served_digest(platform.cluster.registry, "flotilla/order-service", tag)
    assert image == f"{skaffold.default_repo}/order-service@{digest}", image
    pods = platform.service_pods("order")
    assert pods
    assert all(pod_ready(p) for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {image}
    return digest


def _skaffold_run(platform: Platform, skaffold: Skaffold, what: str) -> tuple[str, str]:
    """``skaffold run -m order``, checked: order rolled once to a new dev tag at the digest the
    registry serves, its pods ready, the other services untouched. Returns (tag, output)."""
    others = _others(platform)
    before = replica_sets(platform, "order")
    _, old_version = deployment_image(platform, "order")
    started = time.monotonic()
    output = skaffold.run("run", "--status-check=true", "--port-forward=off", "--tail=false")
    _log(f"{what}: {time.monotonic() - started:.0f} s")
    _, tag = deployment_image(platform, "order")
    assert DEV_TAG.match(tag), f"order's version label is {tag!r}, not a skaffold dev tag"
    assert tag != old_version
    assert f"order-service:{tag}" in output, output[-3000:]
    _rolled_once(platform, before, what)
    _check_image(platform, skaffold, tag)
    assert _others(platform) == others, f"{what} changed another service"
    return tag, output


def _dev_deployed(platform: Platform, dev: SkaffoldDev, deploys: int, what: str) -> str:
    """Wait until ``skaffold dev`` has deployed ``deploys`` times; order's new dev tag."""
    took = dev.wait_for(
        lambda out: out.count(WATCHING) >= deploys, timeout=BUILD_AND_ROLL,
        what=f"{what} of skaffold dev -m order",
    )  # fmt: skip
    _log(f"skaffold dev -m order, {what}: {took:.0f} s")
    _, tag = deployment_image(platform, "order")
    assert DEV_TAG.match(tag), tag
    return tag


def test_skaffold_run_builds_order_with_buildah_and_rolls_only_order(
    platform: Platform, skaffold: Skaffold
) -> None:
    first, _ = _skaffold_run(platform, skaffold, "skaffold run -m order")
    # The same tree again: skaffold's artifact cache has it (keyed by the custom artifact's
    # dependencies and the cluster's platform), so the buildCommand does not run; the image is
    # only tagged anew in the registry, and order rolls to that tag.
    second, output = _skaffold_run(platform, skaffold, "skaffold run -m order, same tree")
    assert second != first
    assert "order-service: Found" in output, output[-3000:]
    assert "content key" not in output, output[-3000:]


def test_skaffold_dev_rebuilds_order_on_an_edit_and_rolls_only_order(
    platform: Platform, skaffold: Skaffold, tmp_path: Path
) -> None:
    tree = work_tree_copy(tmp_path / "tree")
    others = _others(platform)
    before = replica_sets(platform, "order")
    _, old_version = deployment_image(platform, "order")
    dev = SkaffoldDev(
        skaffold, tree, tmp_path / "skaffold-dev.log",
        # --cleanup=false: order's release stays when skaffold dev stops (the fixture puts the
        # platform's image back); polling: the edit is seen within a second, with no inotify.
        ("--cleanup=false", "--status-check=true", "--port-forward=off", "--tail=false",
         "--trigger=polling", "--watch-poll-interval=500"),
    )  # fmt: skip
    with dev:
        first = _dev_deployed(platform, dev, 1, "the first build and deploy")
        assert first != old_version
        first_sets = _rolled_once(platform, before, "skaffold dev's first deploy")
        first_digest = _check_image(platform, skaffold, first)

        # The same edit every time: buildah builds it once per machine (10 s), later runs find
        # it in skaffold's cache; either way it is another image under a new tag.
        main = tree / "services/order/src/order_service/main.py"
        main.write_text(main.read_text() + "\n# edited during skaffold dev (realpods test)\n")
        second = _dev_deployed(platform, dev, 2, "the rebuild and redeploy after an edit")
        assert second != first, "the edit did not produce a new tag"
        _rolled_once(platform, first_sets, "skaffold dev's redeploy")
        assert _check_image(platform, skaffold, second) != first_digest, "the same image"
        rebuilt = "order: building " in dev.output().split(WATCHING, 1)[1]
        _log(f"skaffold dev: the edit was {'built with buildah' if rebuilt else 'in the cache'}")
        assert _others(platform) == others, "skaffold dev -m order changed another service"

        code = dev.stop()
    assert code in (0, 130), f"skaffold dev exited {code} on SIGINT:\n{dev.output()[-3000:]}"
    # --cleanup=false: the release (and its ready pods) outlive skaffold dev.
    settled(platform, "order")
    assert deployment_image(platform, "order")[1] == second
