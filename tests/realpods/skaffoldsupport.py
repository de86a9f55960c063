"""skaffold against the real cluster: the pinned binary with the pinned helm, the cluster's
kubeconfig and registry, ``skaffold run`` to completion and ``skaffold dev`` in the background,
and a throwaway copy of the work tree for edits (skaffold dev watches files)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.clustersupport import REPO_ROOT
from tests.realpods.realcluster import Platform

TAIL = 6000


def skaffold_binary() -> Path:
    """The pinned skaffold (pipelines/tools.sh), or a failure naming the command to build it."""
    result = subprocess.run(
        [str(REPO_ROOT / "pipelines/tools.sh"), "--path", "skaffold"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"skaffold is not installed ({result.stderr.strip()}): run `pipelines/tools.sh "
            "skaffold` (`make setup` runs it; several minutes once)"
        )
    return Path(result.stdout.strip())


def tail(text: str) -> str:
    """The end of some output, for failure messages."""
    return text[-TAIL:] if len(text) > TAIL else text


@dataclass(frozen=True)
class Skaffold:
    """The pinned skaffold bound to the platform's cluster: its kubeconfig, the pinned helm first
    on PATH (with the platform's helm homes) and the cluster's registry as the default repo."""

    binary: Path
    platform: Platform

    @property
    def default_repo(self) -> str:
        """Where skaffold pushes: ``127.0.0.1:PORT/flotilla`` (the node pulls from there)."""
        return f"{self.platform.cluster.registry}/flotilla"

    def env(self) -> dict[str, str]:
        helm = self.platform.cluster.helm
        home = self.platform.cluster.helm_home
        return {
            **os.environ,
            "PATH": f"{helm.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "SKAFFOLD_UPDATE_CHECK": "false",
            "SKAFFOLD_INTERACTIVE": "false",
            # The buildah profile is the default; a caller's FLOTILLA_BUILDER=docker must not
            # switch this test to a Docker engine the machine does not have.
            "FLOTILLA_BUILDER": "buildah",
        }

    def argv(self, command: str, *args: str) -> list[str]:
        return [
            str(self.binary), command, "-m", "order",
            "--kubeconfig", str(self.platform.cluster.kubeconfig),
            "--default-repo", self.default_repo,
            *args,
        ]  # fmt: skip

    def run(self, command: str, *args: str, cwd: Path = REPO_ROOT, timeout: float = 600) -> str:
        """Run ``skaffold <command> -m order ...`` to completion; fail with its output unless it
        exits 0. Returns stdout and stderr together."""
        argv = self.argv(command, *args)
        try:
            result = subprocess.run(
                argv, cwd=cwd, env=self.env(), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise AssertionError(
                f"`{' '.join(argv)}` did not finish within {timeout:g} s:\n{tail(out)}"
            ) from None
        assert result.returncode == 0, (
            f"`{' '.join(argv)}` exited {result.returncode}:\n{tail(result.stdout)}"
        )
        return result.stdout


@dataclass
class SkaffoldDev:
    """``skaffold dev`` running in the background in ``workdir``, its output in a log file."""

    skaffold: Skaffold
    workdir: Path
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __enter__(self) -> SkaffoldDev:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.skaffold.argv("dev", *self.args),
                cwd=self.workdir, env=self.skaffold.env(), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def wait_for(self, check: Callable[[str], bool], *, timeout: float, what: str) -> float:
        """Poll the output (and the process) until ``check`` holds; returns the seconds it took.
        Fails with skaffold's output when skaffold exits or time runs out."""
        assert self.process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check(self.output()):
                return time.monotonic() - started
            code = self.process.poll()
            if code is not None:
                raise AssertionError(
                    f"skaffold dev exited {code} before {what}:\n{tail(self.output())}"
                )
            time.sleep(0.5)
        raise AssertionError(
            f"not within {timeout:g} s: {what}; skaffold dev's output:\n{tail(self.output())}"
        )

    def stop(self, timeout: float = 60) -> int:
        """SIGINT (Ctrl+C), as a user stops it; SIGKILL after ``timeout``. Returns its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(
                    f"skaffold dev did not exit within {timeout:g} s of SIGINT (killed):\n"
                    f"{tail(self.output())}"
                ) from None
        return self.process.returncode

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def work_tree_copy(destination: Path) -> Path:
    """A copy of the work tree as it is (tracked and untracked files, not the ignored ones) in a
    git repository of its own, one commit, so skaffold's gitCommit tagger has a sha and an edit
    there never touches the real checkout. The copy shares the real checkout's ``.venv``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if not source.is_file():  # deleted in the work tree, or a submodule
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    (destination / ".venv").symlink_to(REPO_ROOT / ".venv")
    git = ["git", "-c", "user.name=realpods", "-c", "user.email=realpods@flotilla.invalid"]
    git += ["-c", "commit.gpgsign=false"]
    for args in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=destination, check=True, capture_output=True)
    return destination


def deployment_image(platform: Platform, service: str) -> tuple[str, str]:
    """The image of the service's Deployment and the version label of its pod template."""
    found: dict[str, Any] = platform.kubectl.json(
        "get", "deployment", service, "-n", platform.namespace
    )
    template = found["spec"]["template"]
    [image] = [c["image"] for c in template["spec"]["containers"] if c["name"] == service]
    return image, template["metadata"]["labels"].get("app.kubernetes.io/version", "")
