"""Which deployables a change touches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines_cli import gitrepo
from pipelines_cli.deployables import (
    CHARTS_DIR,
    DEPLOYER,
    SERVICE_DOCKERFILE,
    Deployable,
    discover,
)

# A change under one of these folders, or to one of these files, is a change of every image:
# the chassis and the library chart are in all of them, the lock file and the root project pin
# every dependency, and the root .dockerignore shapes every build context.
SHARED_FOLDERS = ("platform/kit/", "charts/flotilla-lib/")
# The deploy event contract: in the deployer's image (CI only imports it, it ships in no other).
CONTRACT_FOLDER = "platform/contract/"
SHARED_FILES = frozenset({"uv.lock", "pyproject.toml", ".dockerignore"})


@dataclass(frozen=True)
class ChangeSet:
    """The deployables to build and deploy, and why (for the CI log)."""

    deployables: tuple[Deployable, ...]
    reasons: Mapping[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the changed deployables, sorted."""
        return tuple(d.name for d in self.deployables)

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        """A GitHub Actions matrix: one entry per deployable with its folder and chart."""
        return {
            "include": [
                {"service": d.name, "folder": d.folder, "chart": d.chart} for d in self.deployables
            ]
        }

    @property
    def services(self) -> tuple[str, ...]:
        """The changed deployables the deployer deploys (all but the deployer itself)."""
        return tuple(name for name in self.names if name != DEPLOYER)

    @property
    def deployer(self) -> bool:
        """True when the deployer itself has to be rebuilt and redeployed."""
        return DEPLOYER in self.names


def affected(paths: Iterable[str], deployables: Mapping[str, Deployable]) -> ChangeSet:
    """The deployables touched by the changed ``paths`` (relative to the repository root).

    A deployable's own folder or its chart counts for it; a shared path (the chassis, the library
    chart, the lock file, the root pyproject, .dockerignore) counts for all, the services'
    Dockerfile for every service. Any chart counts for the deployer too: its image ships charts/
    and deploys the services with it; so does the event contract (platform/contract/).
    """
    reasons: dict[str, str] = {}

    def mark(name: str, why: str) -> None:
        if name in deployables:
            reasons.setdefault(name, why)

    for path in paths:
        if path in SHARED_FILES or path.startswith(SHARED_FOLDERS):
            for name in deployables:
                mark(name, f"{path} is shared by every image")
            continue
        if path == SERVICE_DOCKERFILE:
            for name, deployable in deployables.items():
                if deployable.is_service:
                    mark(name, f"{path} builds every service")
            continue
        for name, deployable in deployables.items():
            if path.startswith((f"{deployable.folder}/", f"{deployable.chart}/")):
                mark(name, path)
        if path.startswith(f"{CHARTS_DIR}/"):
            mark(DEPLOYER, f"{path} (the deployer's image ships the charts)")
        if path.startswith(CONTRACT_FOLDER):
            mark(DEPLOYER, f"{path} (the deployer's image ships the event contract)")
    hit = tuple(d for name, d in deployables.items() if name in reasons)
    return ChangeSet(hit, {d.name: reasons[d.name] for d in hit})


def changed(repo: Path, base: str, head: str) -> ChangeSet:
    """The deployables changed between ``base`` and ``head`` (both commits of ``repo``).

    When ``base`` is unknown (a new branch's all-zero sha, or a commit the clone does not have),
    every deployable counts as changed: building too much is safe, missing a change is not.
    """
    head_sha = gitrepo.commit_sha(repo, head)
    deployables = discover(repo, head_sha)
    base_sha = gitrepo.resolve(repo, base)
    if base_sha is None:
        why = f"base {base!r} is not a known commit, so everything counts as changed"
        return ChangeSet(tuple(deployables.values()), dict.fromkeys(deployables, why))
    return affected(gitrepo.changed_paths(repo, base_sha, head_sha), deployables)
