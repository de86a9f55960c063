"""The simulated CI: a throw-away clone of the repository, version commits, and the pipelines CLI
(changed, tag, publish, wait) as CI's NATS user; images built from the clone with buildah."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from demo_common import (
    DEPLOY_TIMEOUT,
    PIPELINES_SRC,
    REGISTRY,
    REPO,
    DemoError,
    Result,
    run,
)

from devkit.localstack.environment import local_password
from pipelines_cli.buildah import Progress
from pipelines_cli.imagebuild import ensure_image
from pipelines_cli.incluster import EXITS_AT_START, push_variant

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Flotilla Demo",
    "GIT_AUTHOR_EMAIL": "demo@flotilla.invalid",
    "GIT_COMMITTER_NAME": "Flotilla Demo",
    "GIT_COMMITTER_EMAIL": "demo@flotilla.invalid",
}
# What the broken build runs instead of the service: it exits at start, never Ready.
BROKEN_COMMAND = EXITS_AT_START


class CI:
    """CI's steps in the checkout ``checkout``, against CI's NATS at ``nats_url``."""

    def __init__(self, checkout: Path, logs: Path, nats_url: str, registry: str) -> None:
        self.checkout = checkout
        self.logs = logs
        self.nats_url = nats_url
        self.registry = registry  # the cluster's, 127.0.0.1:PORT

    async def clone(self) -> str:
        """Clone HEAD of the repository into the checkout; returns that commit."""
        await run(
            ["git", "clone", "--quiet", "--shared", str(REPO), str(self.checkout)],
            log=self.logs / "commands.log",
        )
        return await self.git("rev-parse", "HEAD")

    async def pipelines(self, *args: str, check: bool = True, timeout: float = 60) -> Result:
        """The pipelines CLI as CI runs it (the ci NATS user), in the checkout."""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PIPELINES_SRC), os.environ.get("PYTHONPATH", "")) if p
            ),
            "NATS_URL": self.nats_url,
            "NATS_USER": "ci",
            "NATS_PASSWORD": local_password("ci"),
            "PIPELINE_REGISTRY": REGISTRY,
        }
        argv = [sys.executable, "-m", "pipelines_cli", *args]
        return await run(
            argv,
            log=self.logs / "pipelines.log",
            env=env,
            cwd=self.checkout,
            timeout=timeout,
            check=check,
        )

    async def git(self, *args: str) -> str:
        """git in the checkout, with the demo's identity."""
        env = {**os.environ, **GIT_IDENTITY}
        argv = ["git", "-C", str(self.checkout), *args]
        return (await run(argv, log=self.logs / "commands.log", env=env)).stdout.strip()

    async def commit_versions(self, versions: Mapping[str, str], message: str) -> str:
        """Set services' [project].version in the checkout and commit; returns the sha."""
        for service, version in versions.items():
            path = self.checkout / "services" / service / "pyproject.toml"
            text, count = re.subn(
                r'(?m)^version = "[^"]*"', f'version = "{version}"', path.read_text(), count=1
            )
            if count != 1:
                raise DemoError(f"no version line in {path}: cannot simulate a release")
            path.write_text(text)
        await self.git("commit", "--quiet", "--all", "--message", message)
        return await self.git("rev-parse", "HEAD")

    async def changed(self, base: str) -> list[str]:
        """`pipelines changed` from ``base`` to HEAD: the services to release."""
        result = await self.pipelines("changed", "--base", base, "--head", "HEAD")
        return result.stdout.split()

    async def tags(self, services: Sequence[str]) -> dict[str, str]:
        """`pipelines tag <service>` of each service (``<version>-<sha>``)."""
        results = await asyncio.gather(*(self.pipelines("tag", s) for s in services))
        return {s: r.stdout.strip() for s, r in zip(services, results, strict=True)}

    async def build(self, tags: Mapping[str, str], progress: Progress) -> dict[str, str]:
        """Build each service's image at its tag from the checkout (buildah; cached by content,
        so only a changed service is rebuilt) and push it to the cluster's registry; returns
        service -> the image reference pushed."""

        def build_all() -> dict[str, str]:
            return {
                service: ensure_image(
                    self.checkout, service, self.registry, tag=tag, progress=progress
                ).image.reference
                for service, tag in tags.items()
            }

        return await asyncio.to_thread(build_all)

    async def push_broken(self, good_image: str, image: str) -> str:
        """Push ``image``: ``good_image`` whose command exits at start; returns its digest."""
        return await asyncio.to_thread(
            push_variant, good_image, image, self.registry, BROKEN_COMMAND
        )

    async def push_faulty(self, good_image: str, image: str, env: Mapping[str, str]) -> str:
        """Push ``image``: ``good_image`` with more environment (injected errors); returns its
        digest."""
        return await asyncio.to_thread(
            push_variant, good_image, image, self.registry, None, dict(env)
        )

    async def publish(
        self, service: str, run_id: str, image: str, values: Mapping[str, object] | None = None
    ) -> str:
        """`pipelines publish --image <the image pushed>` (and `--value KEY=<JSON>` per value);
        returns the deployment id."""
        extra = [f"--value={key}={json.dumps(value)}" for key, value in (values or {}).items()]
        result = await self.pipelines(
            "publish", service, "--run-id", run_id, "--image", image, *extra
        )
        match = re.search(r"^deployment_id=(\S+)$", result.stdout, re.MULTILINE)
        if match is None:
            raise DemoError(f"pipelines publish printed no deployment_id: {result.explain()}")
        return match.group(1)

    async def wait(self, service: str, deployment_id: str) -> Result:
        """`pipelines wait` (its exit code is CI's verdict)."""
        return await self.pipelines(
            "wait",
            service,
            "--deployment-id",
            deployment_id,
            "--timeout",
            f"{DEPLOY_TIMEOUT:g}",
            check=False,
            timeout=DEPLOY_TIMEOUT + 30,
        )
