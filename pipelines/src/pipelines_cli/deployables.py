"""What CI can build and deploy: every service under services/, and the deployer."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kit import layout, naming
from pipelines_cli import gitrepo
from pipelines_cli.errors import PipelineError, UnknownServiceError

SERVICES_DIR = "services"
CHARTS_DIR = "charts"
DEPLOYER = "deployer"
DEPLOYER_FOLDER = "platform/deployer"
# One Dockerfile builds every service, told which by build arguments (Deployable.build_args);
# the deployer has its own, in its folder.
SERVICE_DOCKERFILE = f"{SERVICES_DIR}/Dockerfile"


@dataclass(frozen=True)
class Deployable:
    """One independently built and deployed unit: its source folder, chart and image name."""

    name: str
    folder: str

    @property
    def chart(self) -> str:
        """The folder of its Helm chart."""
        return f"{CHARTS_DIR}/{self.name}"

    @property
    def dockerfile(self) -> str:
        """Its Dockerfile, relative to the repository root (the build context): the services'
        shared one, or the deployer's own."""
        return SERVICE_DOCKERFILE if self.is_service else f"{self.folder}/Dockerfile"

    @property
    def build_args(self) -> dict[str, str]:
        """The build arguments its Dockerfile needs: a service's folder name and Python package
        (the shared Dockerfile's SERVICE and PACKAGE); none for the deployer."""
        if not self.is_service:
            return {}
        return {"SERVICE": self.name, "PACKAGE": naming.service_package(self.name)}

    @property
    def pyproject(self) -> str:
        """Its pyproject.toml, which holds the version."""
        return f"{self.folder}/pyproject.toml"

    @property
    def image_name(self) -> str:
        """The repository name of its image: ``<name>-service``, or ``deployer``."""
        return self.name if self.name == DEPLOYER else naming.service_distribution(self.name)

    @property
    def is_service(self) -> bool:
        """True for the services the deployer deploys (everything but the deployer itself)."""
        return self.name != DEPLOYER


def discover(repo: Path, rev: str | None = None) -> dict[str, Deployable]:
    """The deployables at commit ``rev`` (None: the work tree), by name, sorted.

    A service is a folder ``services/<name>/`` with a ``pyproject.toml``; the deployer is
    ``platform/deployer/``.
    """
    if rev is None:
        names = list(layout.service_names(repo))
        has_deployer = (repo / DEPLOYER_FOLDER / "pyproject.toml").is_file()
    else:
        names = [
            name
            for name in gitrepo.list_dirs(repo, rev, SERVICES_DIR)
            if gitrepo.file_at(repo, rev, f"{SERVICES_DIR}/{name}/pyproject.toml") is not None
        ]
        has_deployer = gitrepo.file_at(repo, rev, f"{DEPLOYER_FOLDER}/pyproject.toml") is not None
    valid = [name for name in names if naming.is_service_name(name)]
    found = {name: Deployable(name, f"{SERVICES_DIR}/{name}") for name in valid}
    if has_deployer:
        found[DEPLOYER] = Deployable(DEPLOYER, DEPLOYER_FOLDER)
    return dict(sorted(found.items()))


def find(repo: Path, name: str) -> Deployable:
    """The deployable called ``name`` in the work tree, or UnknownServiceError listing them."""
    known = discover(repo)
    if name not in known:
        raise UnknownServiceError(
            f"unknown service {name!r}: expected one of {', '.join(known) or '(none found)'} "
            f"(a service is services/<name>/ with a pyproject.toml, in {repo})"
        )
    return known[name]


def project_version(repo: Path, deployable: Deployable) -> str:
    """The ``[project].version`` of the deployable's pyproject.toml."""
    path = repo / deployable.pyproject
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: every deployable needs a pyproject.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path} is not valid TOML ({exc}): fix the file") from None
    version = data.get("project", {}).get("version")
    if not isinstance(version, str) or not version:
        raise PipelineError(
            f'{path} has no [project].version: set it (e.g. version = "1.4.2"); '
            "image tags are <version>-<sha7>"
        )
    return version
