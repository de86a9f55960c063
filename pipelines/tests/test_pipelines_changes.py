"""Changed-service detection on a temporary git repository with real commits."""

from __future__ import annotations

import json

import pytest

from pipelines_cli.changes import changed
from pipelines_cli.gitrepo import NULL_SHA
from pipelines_cli.testing import CliRun, GitRepo, pyproject

EVERYTHING = ("auth", "deployer", "gateway", "order", "payment")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("services/order/src/order_service/main.py", ("order",)),
        ("services/order/README.md", ("order",)),
        ("services/Dockerfile", ("auth", "gateway", "order", "payment")),
        ("charts/payment/Chart.yaml", ("deployer", "payment")),
        ("platform/deployer/pyproject.toml", ("deployer",)),
        ("charts/deployer/Chart.yaml", ("deployer",)),
        ("platform/contract/src/deploy_contract/events.py", ("deployer",)),
        ("platform/kit/src/kit/bus.py", EVERYTHING),
        ("charts/flotilla-lib/templates/_deployment.tpl", EVERYTHING),
        ("uv.lock", EVERYTHING),
        ("pyproject.toml", EVERYTHING),
        ("README.md", ()),
        ("pipelines/src/pipelines_cli/cli.py", ()),
        ("platform/devkit/src/devkit/devrun.py", ()),  # development only, in no image
    ],
)
def test_a_commit_touching_one_path_changes_its_owners(
    git_repo: GitRepo, path: str, expected: tuple[str, ...]
) -> None:
    base = git_repo.sha()
    head = git_repo.commit(f"touch {path}", path)
    assert changed(git_repo.path, base, head).names == expected


def test_several_commits_add_up_and_the_reasons_name_the_paths(git_repo: GitRepo) -> None:
    base = git_repo.sha()
    git_repo.commit("auth fix", "services/auth/src/auth_service/main.py")
    head = git_repo.commit("gateway chart", "charts/gateway/Chart.yaml")
    result = changed(git_repo.path, base, head)
    assert result.names == ("auth", "deployer", "gateway")
    assert result.services == ("auth", "gateway")
    assert result.deployer
    assert result.reasons["auth"] == "services/auth/src/auth_service/main.py"


def test_a_pull_request_diff_excludes_what_main_did_after_the_branch_point(
    git_repo: GitRepo,
) -> None:
    git_repo.git("checkout", "-q", "-b", "feature")
    head = git_repo.commit("order change", "services/order/src/order_service/main.py")
    git_repo.git("checkout", "-q", "main")
    base = git_repo.commit("payment change on main", "services/payment/src/payment_service/main.py")
    assert changed(git_repo.path, base, head).names == ("order",)


def test_an_unknown_or_null_base_means_everything_changed(git_repo: GitRepo) -> None:
    head = git_repo.commit("anything", "README.md")
    assert changed(git_repo.path, NULL_SHA, head).names == EVERYTHING
    assert changed(git_repo.path, "1" * 40, head).names == EVERYTHING


def test_a_new_service_counts_and_a_deleted_one_does_not(git_repo: GitRepo) -> None:
    base = git_repo.sha()
    git_repo.write("services/billing/pyproject.toml", pyproject("billing-service", "0.1.0"))
    git_repo.git("rm", "-q", "-r", "services/payment")
    git_repo.git("add", "-A")
    git_repo.git("commit", "-q", "-m", "billing replaces payment")
    result = changed(git_repo.path, base, git_repo.sha())
    assert result.names == ("billing",)


def test_a_folder_without_pyproject_is_not_a_service(git_repo: GitRepo) -> None:
    base = git_repo.sha()
    head = git_repo.commit("notes", "services/NOTES/readme.txt")
    assert changed(git_repo.path, base, head).names == ()


def test_cli_prints_lines_json_and_github_outputs(git_repo: GitRepo, run_cli: CliRun) -> None:
    base = git_repo.sha()
    head = git_repo.commit("two", "services/order/src/order_service/main.py", "charts/auth/x")

    lines = run_cli("changed", "--base", base, "--head", head, cwd=git_repo.path)
    assert lines.returncode == 0, lines.stderr
    assert lines.stdout.splitlines() == ["auth", "deployer", "order"]
    assert "order: services/order/src/order_service/main.py" in lines.stderr

    as_json = run_cli(
        "changed", "--base", base, "--head", head, "--format", "json", cwd=git_repo.path
    )
    assert json.loads(as_json.stdout) == ["auth", "deployer", "order"]

    github = run_cli(
        "changed", "--base", base, "--head", head, "--format", "github-output", cwd=git_repo.path
    )
    assert github.stdout.splitlines() == [
        'services=["auth", "order"]',
        "deployer=true",
        "any=true",
        'matrix={"include":['
        '{"service":"auth","folder":"services/auth","chart":"charts/auth"},'
        '{"service":"deployer","folder":"platform/deployer","chart":"charts/deployer"},'
        '{"service":"order","folder":"services/order","chart":"charts/order"}]}',
    ]


def test_cli_reports_a_missing_head_commit_with_what_to_do(
    git_repo: GitRepo, run_cli: CliRun
) -> None:
    result = run_cli("changed", "--base", "HEAD", "--head", "f" * 40, cwd=git_repo.path)
    assert result.returncode == 1
    assert "not found" in result.stderr
    assert "fetch-depth: 0" in result.stderr
