"""The one writer of a gitops repository, against real git and real bare repositories: one
commit per change with its trailers, no change written twice, a push that loses a race rebased,
a conflict refused naming the paths, a revert of the last change in effect."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from deployer.gitops.errors import GitConflictError, GitError
from deployer.gitops.git import Change, GitRepository


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30,
        env={"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a",
             "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return done.stdout


@pytest.fixture
def remote(tmp_path: Path) -> str:
    bare = tmp_path / "remote.git"
    bare.mkdir()
    git(bare, "init", "--quiet", "--bare", "--initial-branch=main")
    return f"file://{bare}"


def writes(path: str, text: str, deployment: str) -> Change:
    async def edit(workdir: Path) -> None:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text(text)

    return Change(edit, f"Deploy {deployment}", {"Flotilla-Deployment": deployment})


def history(remote: str, tmp_path: Path) -> list[str]:
    clone = tmp_path / f"look-{len(list(tmp_path.iterdir()))}"
    git(tmp_path, "clone", "--quiet", remote, str(clone))
    return git(clone, "log", "--format=%s", "main").split("\n")[:-1]


def external_push(remote: str, tmp_path: Path, path: str, text: str) -> None:
    """Someone else's commit, pushed straight to the remote."""
    clone = tmp_path / f"other-{len(list(tmp_path.iterdir()))}"
    git(tmp_path, "clone", "--quiet", remote, str(clone))
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_text(text)
    git(clone, "add", "--all")
    git(clone, "commit", "--quiet", "-m", f"by hand: {path}")
    git(clone, "push", "--quiet", "origin", "HEAD:main")


async def test_each_change_is_one_commit_with_its_trailers_and_never_written_twice(
    remote: str, tmp_path: Path
) -> None:
    repository = GitRepository(remote, "main", tmp_path / "work")
    first = await repository.commit(writes("environments/dev/order/values.yaml", "a: 1\n", "d-1"))
    again = await repository.commit(writes("environments/dev/order/values.yaml", "a: 9\n", "d-1"))
    assert again == first
    clone = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", remote, str(clone))
    assert git(clone, "rev-parse", "HEAD").strip() == first
    assert git(clone, "log", "-1", "--format=%(trailers:key=Flotilla-Deployment,valueonly)")
    assert (clone / "environments/dev/order/values.yaml").read_text() == "a: 1\n"
    assert history(remote, tmp_path) == ["Deploy d-1"]


async def test_concurrent_changes_both_land_in_order(remote: str, tmp_path: Path) -> None:
    one = GitRepository(remote, "main", tmp_path / "work")
    two = GitRepository(remote, "main", tmp_path / "work")  # another lane, the same copy
    await asyncio.gather(
        one.commit(writes("environments/dev/order/values.yaml", "a: 1\n", "d-order")),
        two.commit(writes("environments/dev/payment/values.yaml", "b: 1\n", "d-payment")),
    )
    assert history(remote, tmp_path) == ["Deploy d-payment", "Deploy d-order"]


async def test_a_push_that_loses_the_race_is_rebased_onto_the_winner(
    remote: str, tmp_path: Path
) -> None:
    repository = GitRepository(remote, "main", tmp_path / "work")
    await repository.commit(writes("README.md", "start\n", "d-0"))
    racing = writes("environments/dev/order/values.yaml", "a: 2\n", "d-1")

    async def edit_while_someone_pushes(workdir: Path) -> None:
        external_push(remote, tmp_path, "environments/dev/payment/values.yaml", "b: 1\n")
        await racing.edit(workdir)

    await repository.commit(Change(edit_while_someone_pushes, racing.subject, racing.trailers))
    assert history(remote, tmp_path) == [
        "Deploy d-1",
        "by hand: environments/dev/payment/values.yaml",
        "Deploy d-0",
    ]


async def test_a_conflicting_commit_is_refused_naming_the_paths_and_left_alone(
    remote: str, tmp_path: Path
) -> None:
    repository = GitRepository(remote, "main", tmp_path / "work")
    path = "environments/dev/order/values.yaml"
    await repository.commit(writes(path, "a: 1\n", "d-0"))
    racing = writes(path, "a: 2\n", "d-1")

    async def edit_while_someone_changes_it(workdir: Path) -> None:
        external_push(remote, tmp_path, path, "a: 3\n")
        await racing.edit(workdir)

    with pytest.raises(GitConflictError, match="never overwrites") as refused:
        await repository.commit(
            Change(edit_while_someone_changes_it, racing.subject, racing.trailers)
        )
    assert refused.value.paths == [path]
    assert history(remote, tmp_path)[0] == f"by hand: {path}"
    await repository.commit(writes(path, "a: 4\n", "d-2"))  # the copy recovered
    assert history(remote, tmp_path)[0] == "Deploy d-2"


async def test_a_revert_restores_the_folder_before_the_last_change_in_effect(
    remote: str, tmp_path: Path
) -> None:
    repository = GitRepository(remote, "main", tmp_path / "work")
    path = "environments/prod/order/values.yaml"
    await repository.commit(writes(path, "tag: 1\n", "d-1"))
    second = await repository.commit(writes(path, "tag: 2\n", "d-2"))
    await repository.commit(writes("environments/prod/payment/values.yaml", "x: 1\n", "d-3"))
    revert, reverted = await repository.revert_last(
        "environments/prod/order", {"Flotilla-Deployment": "r-1"}
    )
    assert reverted == second
    clone = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", remote, str(clone))
    assert (clone / path).read_text() == "tag: 1\n"
    assert (clone / "environments/prod/payment/values.yaml").is_file()
    message = git(clone, "log", "-1", "--format=%B", revert)
    assert message.startswith('Revert "Deploy d-2"')
    assert f"Flotilla-Reverts: {second}" in message
    # Asked again for the same rollback (a retry): no second revert.
    assert (
        await repository.revert_last("environments/prod/order", {"Flotilla-Deployment": "r-1"})
    )[0] == revert


async def test_a_repository_that_cannot_be_reached_is_a_retryable_error(tmp_path: Path) -> None:
    repository = GitRepository("http://127.0.0.1:9/nothing.git", "main", tmp_path / "work")
    with pytest.raises(GitError, match="cannot reach the repository") as failed:
        await repository.commit(writes("a", "b", "d-1"))
    assert failed.value.retryable
