"""Image tag rules: <version>-<sha7>, a clean tree only, never latest, valid for the charts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines_cli.deployables import discover, find
from pipelines_cli.errors import DirtyTreeError, TagError
from pipelines_cli.tagging import TAG_PATTERN, image_tag, make_tag
from pipelines_cli.testing import CliRun, GitRepo

SHA = "a8f3d21c0ffee0123456789abcdef0123456789a"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.4.2", "1.4.2-a8f3d21"),
        ("0.1.0", "0.1.0-a8f3d21"),
        ("2.0.0-rc.1", "2.0.0-rc.1-a8f3d21"),
    ],
)
def test_a_tag_is_the_version_and_the_short_sha(version: str, expected: str) -> None:
    assert make_tag(version, SHA) == expected


@pytest.mark.parametrize("version", ["latest", "1.4", "1.4.2.dev1", "1.4.2rc1", "01.2.3", "", "v"])
def test_a_version_that_is_not_semver_is_refused_with_the_fix(version: str) -> None:
    with pytest.raises(TagError, match=r"set \[project\]\.version"):
        make_tag(version, SHA)


@pytest.mark.parametrize("sha", ["", "abc", "A8F3D21", "latest", "g8f3d21"])
def test_a_malformed_sha_is_refused(sha: str) -> None:
    with pytest.raises(TagError, match="not a git commit sha"):
        make_tag("1.4.2", sha)


def _deployable_schemas(repo_root: Path) -> list[Path]:
    # The deployer's charts; infrastructure charts (nats, postgres) take the images `pipelines
    # images` tags by content, which match TAG_PATTERN too, but may accept any OCI tag.
    return [repo_root / d.chart / "values.schema.json" for d in discover(repo_root).values()]


def test_the_tag_pattern_is_the_charts_schema_pattern(repo_root: Path) -> None:
    for schema_file in _deployable_schemas(repo_root):
        schema = json.loads(schema_file.read_text())
        assert schema["properties"]["image"]["properties"]["tag"]["pattern"] == (
            TAG_PATTERN.pattern
        ), schema_file
    tag = make_tag("1.4.2", SHA)
    for schema_file in _deployable_schemas(repo_root):
        pattern = json.loads(schema_file.read_text())["properties"]["image"]["properties"]["tag"]
        assert re.match(pattern["pattern"], tag)
        assert tag != pattern["not"]["const"]


def test_image_tag_uses_the_services_version_and_head(git_repo: GitRepo) -> None:
    head = git_repo.commit("order change", "services/order/src/order_service/main.py")
    assert image_tag(git_repo.path, find(git_repo.path, "order")) == f"1.4.2-{head[:7]}"
    assert image_tag(git_repo.path, find(git_repo.path, "deployer")) == f"0.9.1-{head[:7]}"
    assert image_tag(git_repo.path, find(git_repo.path, "gateway")) == f"2.0.0-rc.1-{head[:7]}"


def test_a_modified_tracked_file_is_refused(git_repo: GitRepo) -> None:
    git_repo.write("services/order/src/order_service/main.py", "changed\n")
    with pytest.raises(DirtyTreeError, match=r"services/order/src/order_service/main\.py"):
        image_tag(git_repo.path, find(git_repo.path, "order"))


def test_a_staged_or_untracked_file_is_refused_too(git_repo: GitRepo) -> None:
    git_repo.write("services/auth/new.py")
    with pytest.raises(DirtyTreeError, match="Commit or stash"):
        image_tag(git_repo.path, find(git_repo.path, "auth"))
    git_repo.git("add", "services/auth/new.py")
    with pytest.raises(DirtyTreeError):
        image_tag(git_repo.path, find(git_repo.path, "auth"))


def test_ignored_files_do_not_make_the_tree_dirty(git_repo: GitRepo) -> None:
    git_repo.write(".gitignore", "data/\n")
    git_repo.commit("ignore data")
    git_repo.write("data/order.db")
    assert image_tag(git_repo.path, find(git_repo.path, "order")).startswith("1.4.2-")


def test_cli_prints_the_tag_or_explains_the_refusal(git_repo: GitRepo, run_cli: CliRun) -> None:
    head = git_repo.sha()
    ok = run_cli("tag", "payment", cwd=git_repo.path)
    assert (ok.returncode, ok.stdout) == (0, f"0.3.0-{head[:7]}\n")

    unknown = run_cli("tag", "shipping", cwd=git_repo.path)
    assert unknown.returncode == 1
    assert (
        "unknown service 'shipping': expected one of auth, deployer, gateway, order, payment"
        in (unknown.stderr)
    )

    git_repo.write("services/payment/pyproject.toml", '[project]\nname = "p"\nversion = "1.0"\n')
    git_repo.commit("bad version")
    bad = run_cli("tag", "payment", cwd=git_repo.path)
    assert bad.returncode == 1
    assert "'1.0' is not MAJOR.MINOR.PATCH" in bad.stderr

    git_repo.write("services/payment/dirty.py")
    dirty = run_cli("tag", "payment", cwd=git_repo.path)
    assert dirty.returncode == 1
    assert dirty.stdout == ""
    assert "uncommitted change(s) (services/payment/dirty.py)" in dirty.stderr
