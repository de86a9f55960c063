"""The local git server with the system's git CLI: clone, push, the pushes git refuses (a behind
branch, a forced push, one that raced another), and basic auth."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.localstack.gitserver import GitServer

CREDENTIALS = ("flux", "pa:ss/word")


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the git CLI in ``cwd`` with a fixed identity and no user configuration. (A clone of
    the empty repository names its branch after init.defaultBranch: the server advertises no
    HEAD while there is no commit.)"""
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    command = ["git", *identity, "-c", "init.defaultBranch=main", *args]
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert not check or result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result


def commit(clone: Path, name: str, text: str) -> str:
    """Write ``name`` in ``clone`` and commit it; the new commit's id."""
    (clone / name).write_text(text)
    git(clone, "add", name)
    git(clone, "commit", "-q", "-m", f"write {name}")
    return git(clone, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    git_server = GitServer(tmp_path / "server", credentials=CREDENTIALS)
    git_server.create_repository("flotilla")
    with git_server:
        yield git_server


def clone(server: GitServer, directory: Path) -> Path:
    url = server.url("flotilla", with_credentials=True)
    git(directory.parent, "clone", "-q", url, str(directory))
    return directory


def test_an_empty_repository_takes_a_first_push_on_main_and_serves_it(
    server: GitServer, tmp_path: Path
) -> None:
    first = clone(server, tmp_path / "first")
    pushed = commit(first, "a.txt", "one\n")
    git(first, "push", "-q", "origin", "main")
    second = clone(server, tmp_path / "second")
    assert git(second, "rev-parse", "HEAD").stdout.strip() == pushed
    assert git(second, "symbolic-ref", "refs/remotes/origin/HEAD").stdout.strip().endswith("main")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth=1", server.url("flotilla", True), str(shallow))
    assert (shallow / "a.txt").read_text() == "one\n"


def test_a_push_from_behind_is_refused_and_a_forced_one_too(
    server: GitServer, tmp_path: Path
) -> None:
    ahead = clone(server, tmp_path / "ahead")
    commit(ahead, "a.txt", "one\n")
    git(ahead, "push", "-q", "origin", "main")
    behind = clone(server, tmp_path / "behind")
    commit(ahead, "a.txt", "two\n")
    git(ahead, "push", "-q", "origin", "main")
    commit(behind, "b.txt", "other\n")
    refused = git(behind, "push", "origin", "main", check=False)
    assert refused.returncode != 0
    assert "[rejected]" in refused.stderr
    git(behind, "fetch", "-q")
    forced = git(behind, "push", "--force", "origin", "main", check=False)
    assert forced.returncode != 0
    assert "[remote rejected] main -> main (non-fast-forward)" in forced.stderr
    # What the server has is still the branch that was pushed ahead.
    remote = git(behind, "ls-remote", "origin", "refs/heads/main").stdout.split()[0]
    assert remote == git(ahead, "rev-parse", "HEAD").stdout.strip()


def test_a_push_that_raced_another_is_refused(server: GitServer, tmp_path: Path) -> None:
    base = clone(server, tmp_path / "base")
    commit(base, "a.txt", "one\n")
    git(base, "push", "-q", "origin", "main")
    winner = clone(server, tmp_path / "winner")
    loser = clone(server, tmp_path / "loser")
    commit(winner, "w.txt", "w\n")
    commit(loser, "l.txt", "l\n")
    # The loser's pre-push hook runs after it has read the server's refs and before it sends its
    # pack: the winner's push lands in between.
    hook = loser / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ncd '{winner}' && git push -q origin main\n")
    hook.chmod(0o755)
    raced = git(loser, "push", "origin", "main", check=False)
    assert raced.returncode != 0
    assert "[remote rejected] main -> main (failed to update ref)" in raced.stderr
    assert "cannot lock ref 'refs/heads/main'" in raced.stderr
    remote = git(loser, "ls-remote", "origin", "refs/heads/main").stdout.split()[0]
    assert remote == git(winner, "rev-parse", "HEAD").stdout.strip()


def test_a_wrong_password_or_none_gets_401(server: GitServer, tmp_path: Path) -> None:
    info_refs = server.url("flotilla") + "/info/refs?service=git-upload-pack"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(info_refs, timeout=5)
    assert anonymous.value.code == 401
    assert anonymous.value.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = server.url("flotilla", True).replace("pa%3Ass%2Fword", "nope")
    listed = git(tmp_path, "ls-remote", wrong, check=False)
    assert listed.returncode != 0
    assert "Authentication failed" in listed.stderr


def test_an_unknown_repository_is_not_found(server: GitServer, tmp_path: Path) -> None:
    missing = server.url("flotilla", True).replace("flotilla.git", "missing.git")
    listed = git(tmp_path, "ls-remote", missing, check=False)
    assert listed.returncode != 0
    assert "not found" in listed.stderr
