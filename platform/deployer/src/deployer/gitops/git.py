"""The one writer of a gitops repository: a working copy per repository, changed under one lock.

Every change starts from the remote branch as it is (fetch, hard reset), writes its files,
commits, and pushes. A push refused because someone else pushed first is rebased onto theirs and
pushed again; a rebase that conflicts ends the change with the conflicting paths named. A commit
carries trailers (``Flotilla-Deployment: <id>``, ...); a change whose deployment already has a
commit on the branch is not written twice, so a retried or resumed deployment never commits
again.

Credentials never appear in a URL or on a command line: they go to git as an HTTP header through
``GIT_CONFIG_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from deployer.gitops.errors import GitConflictError, GitError

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 5
COMMAND_DEADLINE_SECONDS = 60.0
DEPLOYMENT_TRAILER = "Flotilla-Deployment"
REVERTS_TRAILER = "Flotilla-Reverts"
_UNREACHABLE = re.compile(
    r"could not resolve host|failed to connect|connection refused|connection timed out|"
    r"couldn't connect|timed out|network is unreachable|empty reply from server|"
    r"the requested url returned error: 5\d\d|remote end hung up",
    re.IGNORECASE,
)
_REFUSED = re.compile(
    r"authentication failed|the requested url returned error: 40[13]|could not read username|"
    r"could not read password|permission denied|invalid credentials",
    re.IGNORECASE,
)
_REJECTED = re.compile(r"\[rejected\]|non-fast-forward|fetch first|failed to push", re.IGNORECASE)
_NO_BRANCH = re.compile(r"couldn't find remote ref|remote branch .* not found", re.IGNORECASE)

Edit = Callable[[Path], Awaitable[None]]


@dataclass(frozen=True)
class Credentials:
    """HTTP basic credentials for the repository."""

    username: str
    password: str


@dataclass(frozen=True)
class Change:
    """One commit: what it edits in the working tree, its subject and its trailers."""

    edit: Edit
    subject: str
    trailers: Mapping[str, str]
    body: str = ""

    @property
    def message(self) -> str:
        """The commit message: subject, body, trailers."""
        trailers = "\n".join(
            f"{key}: {' '.join(value.split())}" for key, value in self.trailers.items() if value
        )
        parts = [self.subject, self.body.strip(), trailers]
        return "\n\n".join(part for part in parts if part) + "\n"


class GitRepository:
    """The deployer's working copy of one repository branch (shared by every environment that
    uses the branch: one lock serialises their writes)."""

    _locks: ClassVar[dict[tuple[str, str], asyncio.Lock]] = {}

    def __init__(
        self,
        url: str,
        branch: str,
        workdir: Path,
        *,
        credentials: Credentials | None = None,
        author: tuple[str, str] = ("Flotilla deployer", "deployer@flotilla.invalid"),
        binary: str = "git",
    ) -> None:
        self.url = url
        self.branch = branch
        self.workdir = workdir
        self._binary = binary
        self._env = _git_env(credentials, author)

    @property
    def lock(self) -> asyncio.Lock:
        """The lock of this repository and branch, shared by every writer in the process."""
        return self._locks.setdefault((self.url, self.branch), asyncio.Lock())

    async def commit(self, change: Change) -> str:
        """Write ``change`` as one commit on the branch and push it; its SHA. A change whose
        ``Flotilla-Deployment`` already has a commit returns that commit."""
        async with self.lock:
            await self._sync()
            deployment = change.trailers.get(DEPLOYMENT_TRAILER)
            if deployment:
                found = await self.find(DEPLOYMENT_TRAILER, deployment)
                if found is not None:
                    log.info("already committed", extra={"deployment_id": deployment})
                    return found
            return await self._commit_and_push(change)

    async def find(self, trailer: str, value: str) -> str | None:
        """The newest commit on the branch whose ``trailer`` is ``value``."""
        if not (self.workdir / ".git").is_dir():
            return None
        code, _ = await self._run("rev-parse", "--verify", "--quiet", "HEAD")
        if code != 0:  # nothing committed yet
            return None
        grep = f"--grep={trailer}: {value}"
        out = await self._git("log", "--format=%H", "-1", "--fixed-strings", grep, "HEAD")
        return out.strip() or None

    async def revert_last(
        self,
        folder: str,
        trailers: Mapping[str, str],
        then: Callable[[Path, str], Awaitable[None]] | None = None,
    ) -> tuple[str, str]:
        """Revert the newest deployment commit that touched ``folder`` and is still in effect:
        the folder as it was before it, in a commit of its own (``then`` edits after the
        restore, given the reverted commit). Returns the revert's SHA and the reverted one's;
        GitError when there is nothing to revert."""
        async with self.lock:
            await self._sync()
            found = await self._last_in_effect(folder)
            if found is None:
                raise GitError(
                    f"nothing to roll back in {folder}: no deployment commit of it is in effect "
                    f"on {self.url} {self.branch}"
                )
            sha, subject = found
            deployment = trailers.get(DEPLOYMENT_TRAILER)
            if deployment:
                done = await self.find(DEPLOYMENT_TRAILER, deployment)
                if done is not None:
                    return done, sha

            async def edit(workdir: Path) -> None:
                await self._restore(folder, sha)
                if then is not None:
                    await then(workdir, sha)

            change = Change(
                edit=edit,
                subject=f'Revert "{subject}"',
                body=f"This reverts commit {sha}.",
                trailers={**trailers, REVERTS_TRAILER: sha},
            )
            return await self._commit_and_push(change), sha

    async def _last_in_effect(self, folder: str) -> tuple[str, str] | None:
        code, _ = await self._run("rev-parse", "--verify", "--quiet", "HEAD")
        if code != 0:
            return None
        log_text = await self._git(
            "log", "--format=%H%x1f%s%x1f%(trailers:only,unfold)%x1e", "HEAD", "--", folder
        )
        reverted: set[str] = set()
        for entry in filter(None, (e.strip() for e in log_text.split("\x1e"))):
            sha, subject, trailers = [*entry.split("\x1f"), "", ""][:3]
            values = _trailers(trailers)
            if REVERTS_TRAILER in values:
                reverted.add(values[REVERTS_TRAILER])
                continue
            if DEPLOYMENT_TRAILER in values and sha not in reverted:
                return sha, subject
        return None

    async def contains(self, ancestor: str, descendant: str) -> bool:
        """Whether ``descendant`` is ``ancestor`` or comes after it on the branch."""
        if ancestor == descendant:
            return True
        async with self.lock:
            for attempt in range(2):
                code, _ = await self._run("merge-base", "--is-ancestor", ancestor, descendant)
                if code in (0, 1) or attempt:
                    return code == 0
                await self._git("fetch", "--quiet", "origin", self.branch)  # someone else's
        return False

    async def _restore(self, folder: str, before: str) -> None:
        """In the working tree: ``folder`` as it was before commit ``before`` (gone when it did
        not exist then)."""
        code, _ = await self._run("cat-file", "-e", f"{before}^:{folder}")
        shutil.rmtree(self.workdir / folder, ignore_errors=True)
        if code == 0:
            await self._git("checkout", f"{before}^", "--", folder)

    async def restore_path(self, path: str, at: str) -> bool:
        """In the working tree: ``path`` as it was at commit ``at``; False when it was not. Only
        inside a change's edit."""
        code, _ = await self._run("cat-file", "-e", f"{at}:{path}")
        if code != 0:
            return False
        await self._git("checkout", at, "--", path)
        return True

    async def _sync(self) -> None:
        """The working copy at the remote branch's head, clean (nothing local survives)."""
        if not (self.workdir / ".git").is_dir():
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir.mkdir(parents=True)
            await self._git("init", "--quiet", f"--initial-branch={self.branch}")
            await self._git("remote", "add", "origin", self.url)
        code, err = await self._run("fetch", "--quiet", "origin", self.branch)
        if code != 0:
            if _NO_BRANCH.search(err):  # an empty repository: the first commit starts it
                await self._git("checkout", "--quiet", "--orphan", self.branch)
                await self._run("rm", "-r", "--quiet", "--cached", ".")
                await self._git("clean", "-fdxq")
                return
            raise self._failure("fetch", err)
        await self._git("checkout", "--quiet", "-B", self.branch, "FETCH_HEAD")
        await self._git("reset", "--quiet", "--hard", "FETCH_HEAD")
        await self._git("clean", "-fdxq")

    async def _commit_and_push(self, change: Change) -> str:
        await change.edit(self.workdir)
        await self._git("add", "--all")
        await self._git("commit", "--quiet", "--allow-empty", "--file=-", stdin=change.message)
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            code, err = await self._run("push", "--quiet", "origin", f"HEAD:{self.branch}")
            if code == 0:
                return (await self._git("rev-parse", "HEAD")).strip()
            if not _REJECTED.search(err) or attempt == PUSH_ATTEMPTS:
                raise self._failure("push", err)
            log.info("push refused (someone pushed first); rebasing", extra={"url": self.url})
            await self._git("fetch", "--quiet", "origin", self.branch)
            code, rebase_err = await self._run("rebase", "--quiet", "FETCH_HEAD")
            if code != 0:
                conflicted = await self._git("diff", "--name-only", "--diff-filter=U")
                await self._run("rebase", "--abort")
                raise GitConflictError(self.url, conflicted.split(), rebase_err)
        raise AssertionError("unreachable")

    def _failure(self, what: str, stderr: str) -> GitError:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        if _REFUSED.search(stderr):
            return GitError(
                f"the git server refused the deployer's credentials for {self.url} ({what}: "
                f"{detail}). What to do: check DEPLOYER_GIT_USERNAME and DEPLOYER_GIT_PASSWORD "
                "(a token that may write to the repository)",
                stderr=stderr,
            )
        if _UNREACHABLE.search(stderr):
            return GitError(
                f"cannot reach the repository {self.url} ({what}: {detail}). What to do: check "
                "the environment's gitops.repository and that the git server is up",
                stderr=stderr,
                retryable=True,
            )
        return GitError(f"git {what} on {self.url} failed: {detail}", stderr=stderr)

    async def _git(self, *args: str, stdin: str | None = None) -> str:
        code, out, err = await self._exec(args, stdin)
        if code != 0:
            raise self._failure(args[0], err or out)
        return out

    async def _run(self, *args: str) -> tuple[int, str]:
        code, _, err = await self._exec(args, None)
        return code, err

    async def _exec(self, args: tuple[str, ...], stdin: str | None) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            self._binary,
            *args,
            cwd=self.workdir,
            env=self._env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(stdin.encode() if stdin is not None else None),
                COMMAND_DEADLINE_SECONDS,
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            return 124, "", f"git {args[0]} timed out after {COMMAND_DEADLINE_SECONDS:.0f} s"
        return process.returncode or 0, out.decode(), err.decode()


def _trailers(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _git_env(credentials: Credentials | None, author: tuple[str, str]) -> dict[str, str]:
    name, email = author
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    settings = {"advice.detachedHead": "false", "core.hooksPath": "/dev/null"}
    if credentials is not None:
        token = f"{credentials.username}:{credentials.password}".encode()
        settings["http.extraHeader"] = f"Authorization: Basic {base64.b64encode(token).decode()}"
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
