"""What an image build reads and where it is pushed: content keys, ignore rules, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_cli.baseimages import debian_mirror
from pipelines_cli.contentkey import DockerIgnore, content_key, context_files, copy_sources
from pipelines_cli.errors import PipelineError
from pipelines_cli.imagetargets import all_targets, find_target
from pipelines_cli.registry import cluster_registry, destination, is_loopback
from pipelines_cli.tagging import TAG_PATTERN
from pipelines_cli.testing import GitRepo

DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS builder
COPY uv.lock pyproject.toml ./
COPY platform/kit/ platform/kit/
COPY --chown=1:1 \\
     services/order/ services/order/
FROM ${PYTHON_IMAGE}
COPY --from=builder /app/.venv /app/.venv
"""
IGNORE = "*\n!uv.lock\n!pyproject.toml\n!platform/kit/\n!services/\n**/tests/\n**/*.pyc\n"


def _context(tmp_path: Path) -> Path:
    for relative in (
        "uv.lock",
        "pyproject.toml",
        "README.md",
        "platform/kit/src/kit/bus.py",
        "platform/deployer/x.py",
        "services/order/src/order_service/main.py",
        "services/order/tests/test_x.py",
        "services/order/src/order_service/main.pyc",
        "services/payment/src/payment_service/main.py",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(relative)
    (tmp_path / ".dockerignore").write_text(IGNORE)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


def _key(context: Path, **args: str) -> str:
    return content_key(context, context / "Dockerfile", args, {"PYTHON_IMAGE": "id1"})


def test_copy_sources_skip_stage_copies_and_join_continuations() -> None:
    assert copy_sources(DOCKERFILE) == [
        "uv.lock",
        "pyproject.toml",
        "platform/kit",
        "services/order",
    ]
    assert copy_sources("FROM x\nCOPY ${DIR}/ /app/\n") is None


def test_copy_sources_expand_the_build_arguments_they_name(tmp_path: Path) -> None:
    shared = "FROM x\nARG SERVICE\nCOPY services/${SERVICE}/pyproject.toml $SERVICE/ ./\n"
    assert copy_sources(shared, {"SERVICE": "order"}) == ["services/order/pyproject.toml", "order"]
    assert copy_sources(shared, {"OTHER": "order"}) is None
    # The services' shared Dockerfile: each service's key covers its own folder only.
    context = _context(tmp_path)
    (context / "Dockerfile").write_text(
        DOCKERFILE.replace("services/order/", "services/${SERVICE}/")
    )
    assert context_files(context, context / "Dockerfile", {"SERVICE": "payment"}) == [
        "platform/kit/src/kit/bus.py",
        "pyproject.toml",
        "services/payment/src/payment_service/main.py",
        "uv.lock",
    ]
    order = _key(context, SERVICE="order")
    (context / "services/payment/src/payment_service/main.py").write_text("changed")
    assert _key(context, SERVICE="order") == order


def test_dockerignore_follows_dockers_rules() -> None:
    rules = DockerIgnore(IGNORE)
    assert rules.ignored("README.md")
    assert not rules.ignored("uv.lock")
    assert not rules.ignored("services/order/src/order_service/main.py")
    assert rules.ignored("services/order/tests/test_x.py")
    assert rules.ignored("services/order/src/order_service/main.pyc")
    assert rules.ignored("platform/deployer/x.py")
    assert not rules.ignored("platform/kit/src/kit/bus.py")
    assert rules.may_include_below("platform")
    assert not rules.may_include_below("docs")


def test_the_key_covers_exactly_the_files_the_image_copies(tmp_path: Path) -> None:
    context = _context(tmp_path)
    assert context_files(context, context / "Dockerfile") == [
        "platform/kit/src/kit/bus.py",
        "pyproject.toml",
        "services/order/src/order_service/main.py",
        "uv.lock",
    ]
    before = _key(context)
    # Files the image does not take leave the key alone...
    for unused in ("README.md", "services/order/tests/test_x.py", "services/payment/new.py"):
        (context / unused).write_text("changed")
    assert _key(context) == before
    # ...a copied file, the Dockerfile, a build argument or a base image changes it.
    (context / "services/order/src/order_service/main.py").write_text("changed")
    after_source = _key(context)
    assert after_source != before
    assert _key(context, EXTRA="1") != after_source
    other_base = content_key(context, context / "Dockerfile", {}, {"PYTHON_IMAGE": "id2"})
    assert other_base != after_source
    (context / "Dockerfile").write_text(DOCKERFILE + "USER 10001\n")
    assert _key(context) != after_source


def test_a_per_dockerfile_ignore_file_wins(tmp_path: Path) -> None:
    context = _context(tmp_path)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY README.md /\n")
    assert context_files(context, context / "Dockerfile") == []
    (context / "Dockerfile.dockerignore").write_text("*\n!README.md\n")
    assert context_files(context, context / "Dockerfile") == ["README.md"]


def test_push_keeps_the_path_and_tag_and_replaces_the_host() -> None:
    registry = "127.0.0.1:5000"
    assert destination("ghcr.io/flotilla/order-service:1.1.0-abc1234", registry) == (
        "127.0.0.1:5000/flotilla/order-service:1.1.0-abc1234"
    )
    assert destination("registry.k8s.io/pause:3.10.1", registry) == "127.0.0.1:5000/pause:3.10.1"
    assert destination("nginx:1.27", registry) == "127.0.0.1:5000/library/nginx:1.27"
    assert destination("localhost/flotilla/debian:bookworm", registry) == (
        "127.0.0.1:5000/flotilla/debian:bookworm"
    )
    with pytest.raises(PipelineError, match="has no tag"):
        destination("ghcr.io/flotilla/order-service", registry)
    with pytest.raises(PipelineError, match="not host"):
        destination("ghcr.io/x/y:1", "http://127.0.0.1:5000")
    assert is_loopback("127.0.0.1:5000")
    assert is_loopback("localhost:5000")
    assert not is_loopback("ghcr.io")
    assert not is_loopback("10.0.0.1:5000")


def test_the_cluster_registry_comes_from_the_run_dir_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOTILLA_REGISTRY", raising=False)
    with pytest.raises(PipelineError, match="no cluster registry: run make cluster-up first"):
        cluster_registry(tmp_path)
    (tmp_path / ".run/cluster").mkdir(parents=True)
    (tmp_path / ".run/cluster/registry").write_text("127.0.0.1:41234\n")
    assert cluster_registry(tmp_path) == "127.0.0.1:41234"
    monkeypatch.setenv("FLOTILLA_REGISTRY", "127.0.0.1:5001")
    assert cluster_registry(tmp_path) == "127.0.0.1:5001"


def test_the_debian_mirror_is_the_one_apt_uses(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d/debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://other.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://other.example/debian"


def test_infra_images_are_named_by_content_and_pause_by_its_fixed_name(
    git_repo: GitRepo,
) -> None:
    git_repo.write("platform/images/nats/Dockerfile", "FROM scratch\n")
    git_repo.write("platform/images/nats/VERSION", "2.15.1\n")
    git_repo.write("platform/images/pause/Dockerfile", "FROM scratch\n")
    git_repo.write("platform/images/pause/IMAGE", "registry.k8s.io/pause:3.10.1\n")
    targets = all_targets(git_repo.path)
    assert {"order", "deployer", "nats", "pause"} <= set(targets)
    nats = targets["nats"]
    tag = nats.content_tag("0123456789abcdef" * 4)
    assert tag == "2.15.1-0123456789ab"
    assert TAG_PATTERN.match(tag)
    assert nats.reference("ghcr.io/flotilla", tag) == "ghcr.io/flotilla/nats:2.15.1-0123456789ab"
    assert targets["pause"].reference("ghcr.io/flotilla", "x") == "registry.k8s.io/pause:3.10.1"
    assert targets["order"].reference("ghcr.io/flotilla", "1.4.2-abcdef1") == (
        "ghcr.io/flotilla/order-service:1.4.2-abcdef1"
    )
    with pytest.raises(PipelineError, match="unknown image 'redis'"):
        find_target(git_repo.path, "redis")
    git_repo.write("platform/images/nats/VERSION", "latest\n")
    with pytest.raises(PipelineError, match=r"not MAJOR\.MINOR\.PATCH"):
        find_target(git_repo.path, "nats")
