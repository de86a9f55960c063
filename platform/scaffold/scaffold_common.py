"""What every part of the scaffold shares: its error, a service's names, the files it edits and
reading them (platform/scaffold/new_service.py is the command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kit import naming

HERE = Path(__file__).resolve().parent
# The frozen templates a new service is rendered from (service/, chart/, the skaffold module).
TEMPLATES = HERE / "templates"
# A scaffolded service's pyproject.toml says so ([tool.flotilla] scaffold = "new-service"):
# remove-service removes no other service (the platform's own ones, or one written by hand).
SCAFFOLD_MARKER = "new-service"
STREAMS = "platform/kit/src/kit/events/streams.py"
NATS_CONF = "platform/nats/local.conf"
# The cluster's NATS users (the nats chart) and databases (the postgres release's roles).
NATS_CHART_USERS = "charts/nats/files/users.conf"
POSTGRES_VALUES = "charts/postgres/values-local.yaml"


class ScaffoldError(Exception):
    """Something the user can fix; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class Service:
    """The names a service goes by."""

    name: str  # inventory, stock-level: folders, chart, release, NATS user and subjects

    @property
    def snake(self) -> str:
        """The name as a Python identifier part: stock_level."""
        return self.name.replace("-", "_")

    @property
    def package(self) -> str:
        """Its Python package: stock_level_service."""
        return naming.service_package(self.name)

    @property
    def project(self) -> str:
        """Its workspace project and image name: stock-level-service."""
        return naming.service_distribution(self.name)

    @property
    def stream(self) -> str:
        """Its JetStream stream: STOCK_LEVEL."""
        return self.snake.upper()

    @property
    def folder(self) -> str:
        """Its source folder."""
        return f"services/{self.name}"

    @property
    def chart(self) -> str:
        """Its chart folder."""
        return f"charts/{self.name}"


@dataclass
class Changes:
    """What a run writes (new files, edited shared files) and notes for the user."""

    new_files: dict[str, bytes] = field(default_factory=dict)
    edits: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read(root: Path, path: str) -> str:
    """The text of a repository file, or ScaffoldError when it is missing."""
    try:
        return (root / path).read_text()
    except FileNotFoundError:
        raise ScaffoldError(f"{path} not found in {root}: run it in a Flotilla checkout") from None


def anchor_missing(path: str, what: str) -> ScaffoldError:
    """The error for a shared file that no longer looks the way the scaffold expects."""
    return ScaffoldError(
        f"{path}: cannot find {what}, so the scaffold does not know where to register the "
        "service. Restore that part of the file (see git log), or register it by hand as "
        "platform/scaffold/README.md describes"
    )
