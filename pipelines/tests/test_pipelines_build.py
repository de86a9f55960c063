"""The docker buildx command: file, context, tag and OCI labels."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from kit import layout
from pipelines_cli.build import (
    BuildSpec,
    buildx_command,
    digest_from_metadata,
    image_reference,
    source_url,
)
from pipelines_cli.deployables import Deployable, discover
from pipelines_cli.errors import PipelineError
from pipelines_cli.testing import CliRun, GitRepo

ORDER = Deployable("order", "services/order")
DEPLOYER = Deployable("deployer", "platform/deployer")
DIGEST = "sha256:" + "ab" * 32


def labels(command: list[str]) -> dict[str, str]:
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "--label"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_images_are_named_service_or_deployer() -> None:
    assert image_reference("ghcr.io/acme/", ORDER, "1.4.2-a8f3d21") == (
        "ghcr.io/acme/order-service:1.4.2-a8f3d21"
    )
    assert image_reference("localhost:5000", DEPLOYER, "0.9.1-a8f3d21") == (
        "localhost:5000/deployer:0.9.1-a8f3d21"
    )
    with pytest.raises(PipelineError, match="--registry"):
        image_reference("https://ghcr.io/Acme", ORDER, "1.4.2-a8f3d21")


def test_the_command_builds_from_the_root_with_the_services_dockerfile_and_labels() -> None:
    spec = BuildSpec(
        deployable=ORDER,
        image="ghcr.io/acme/order-service:1.4.2-a8f3d21",
        revision="a8f3d21" + "0" * 33,
        source="https://github.com/acme/flotilla",
        version="1.4.2-a8f3d21",
        created="2026-01-02T03:04:05+00:00",
        push=True,
        platforms=("linux/amd64", "linux/arm64"),
        metadata_file=Path("build.json"),
    )
    command = buildx_command(spec)
    assert command[:3] == ["docker", "buildx", "build"]
    assert command[-1] == "."
    assert command[command.index("--file") + 1] == "services/Dockerfile"
    build_args = [command[i + 1] for i, word in enumerate(command) if word == "--build-arg"]
    assert build_args == ["SERVICE=order", "PACKAGE=order_service"]
    assert command[command.index("--tag") + 1] == spec.image
    assert command[command.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert command[command.index("--metadata-file") + 1] == "build.json"
    assert "--push" in command
    assert "--load" not in command
    assert labels(command) == {
        "org.opencontainers.image.revision": spec.revision,
        "org.opencontainers.image.source": "https://github.com/acme/flotilla",
        "org.opencontainers.image.version": "1.4.2-a8f3d21",
        "org.opencontainers.image.created": "2026-01-02T03:04:05+00:00",
        "org.opencontainers.image.title": "order-service",
    }


def test_the_source_comes_from_github_gitlab_or_origin(git_repo: GitRepo) -> None:
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/flotilla"}
    assert source_url(git_repo.path, github) == "https://github.com/acme/flotilla"
    gitlab = {"CI_PROJECT_URL": "https://gitlab.example/acme/flotilla"}
    assert source_url(git_repo.path, gitlab) == "https://gitlab.example/acme/flotilla"
    with pytest.raises(PipelineError, match="pass --source"):
        source_url(git_repo.path, {})
    git_repo.git("remote", "add", "origin", "https://git.example/acme/flotilla.git")
    assert source_url(git_repo.path, {}) == "https://git.example/acme/flotilla.git"


def test_the_digest_comes_from_the_buildx_metadata_file(tmp_path: Path) -> None:
    metadata = tmp_path / "build.json"
    metadata.write_text(json.dumps({"containerimage.digest": DIGEST, "image.name": "x"}))
    assert digest_from_metadata(metadata) == DIGEST
    metadata.write_text(json.dumps({"image.name": "x"}))
    with pytest.raises(PipelineError, match="was the image pushed"):
        digest_from_metadata(metadata)
    with pytest.raises(PipelineError, match="cannot read the build metadata"):
        digest_from_metadata(tmp_path / "missing.json")


def test_cli_prints_the_command_for_head(git_repo: GitRepo, run_cli: CliRun) -> None:
    head = git_repo.sha()
    result = run_cli(
        "build", "order", "--registry", "ghcr.io/acme", "--source", "https://x.example/r",
        cwd=git_repo.path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout)
    assert f"ghcr.io/acme/order-service:1.4.2-{head[:7]}" in command
    assert labels(command)["org.opencontainers.image.revision"] == head
    assert (
        labels(command)["org.opencontainers.image.created"]
        == git_repo.git("show", "-s", "--format=%cI").strip()
    )
    assert "--load" in command


def test_cli_build_refuses_a_dirty_tree_unless_given_a_tag(
    git_repo: GitRepo, run_cli: CliRun
) -> None:
    git_repo.write("services/order/wip.py")
    refused = run_cli("build", "order", "--registry", "r.example", cwd=git_repo.path)
    assert refused.returncode == 1
    assert "uncommitted change(s)" in refused.stderr
    no_registry = run_cli("build", "order", "--tag", "1.0.0-abcdef1", cwd=git_repo.path)
    assert no_registry.returncode == 1
    assert "pass --registry or set PIPELINE_REGISTRY" in no_registry.stderr


def test_every_deployable_of_the_repository_has_its_dockerfile(repo_root: Path) -> None:
    deployables = discover(repo_root)
    assert {*layout.service_names(repo_root), "deployer"} == set(deployables)
    for name, deployable in deployables.items():
        assert (repo_root / deployable.dockerfile).is_file(), name
