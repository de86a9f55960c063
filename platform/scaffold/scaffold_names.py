"""Which names the scaffold accepts: the rule of kit.naming, the names the platform keeps for
itself, and whether a service exists already or was made by the scaffold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from scaffold_common import (
    NATS_CHART_USERS,
    NATS_CONF,
    SCAFFOLD_MARKER,
    STREAMS,
    ScaffoldError,
    Service,
    read,
)
from scaffold_registry import skaffold_modules

from kit import layout, naming

RESERVED = {
    "kit": "the service chassis (platform/kit)",
    "deployer": "the deploy orchestrator (platform/deployer, charts/deployer)",
    "platform": "the platform folder (and a module of the standard library)",
    "flotilla": "the workspace's root project",
    "flotilla-lib": "the library chart (charts/flotilla-lib)",
    "ci": "the NATS user of CI",
    "pipeline": "the pipeline.> events that only CI publishes",
    "pipelines": "the CI command line (pipelines/)",
    "deploy": "the deploy.> events that only the deployer publishes",
    "deadletter": "the dead letters (deadletter.>)",
    "scaffold": "this scaffold (platform/scaffold)",
    "charts": "a top-level folder",
    "services": "a top-level folder",
    "tests": "a top-level folder",
}


def check_name_format(name: str, command: str) -> Service:
    """The service called ``name``, or ScaffoldError saying which names are allowed."""
    if not name:
        raise ScaffoldError(f"give the service a name: make {command} name=inventory")
    try:
        naming.check_new_service_name(name)
    except naming.NamingError as exc:
        raise ScaffoldError(str(exc)) from None
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved for {RESERVED[name]}: choose another name")
    return Service(name)


def kit_streams(root: Path) -> dict[str, str]:
    """The streams the kit declares, by name, with the subject prefix each one holds."""
    text = read(root, STREAMS)
    return dict(re.findall(r'StreamSpec\(\s*"([A-Z0-9_]+)",\s*\(\s*"([^".]+)\.>"', text))


def traces(root: Path, service: Service) -> list[str]:
    """Where ``service`` already appears in the repository."""
    found = [path for path in (service.folder, service.chart) if (root / path).exists()]
    if service.name in skaffold_modules(read(root, "skaffold.yaml")):
        found.append("skaffold.yaml")
    for users in (NATS_CONF, NATS_CHART_USERS):
        if re.search(rf"(?m)^\s*user: {re.escape(service.name)},", read(root, users)):
            found.append(users)
    if f'"{service.project}"' in read(root, "pyproject.toml"):
        found.append("pyproject.toml")
    return found


def made_by_scaffold(root: Path, service: Service) -> bool:
    """True unless ``service`` has a pyproject.toml without the new-service marker (a leftover of
    a failed scaffold, without its folder, counts as made by it)."""
    pyproject = root / service.folder / "pyproject.toml"
    if not pyproject.is_file():
        return True
    try:
        data = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScaffoldError(f"{pyproject} is not valid TOML ({exc}): fix it first") from None
    return bool(data.get("tool", {}).get("flotilla", {}).get("scaffold") == SCAFFOLD_MARKER)


def platform_services(root: Path) -> list[str]:
    """The services the scaffold did not make (kit.layout's discovery, without the marked)."""
    names = layout.service_names(root)
    return [name for name in names if not made_by_scaffold(root, Service(name))]


def check_new(root: Path, name: str) -> Service:
    """The service to create, or ScaffoldError when the name is invalid, reserved or taken."""
    service = check_name_format(name, "new-service")
    streams = kit_streams(root)
    for stream, prefix in streams.items():
        if service.stream == stream or service.name == prefix:
            raise ScaffoldError(
                f"{name!r} would share the {stream} stream or its {prefix}.> subjects, which "
                f"belong to another part of the platform ({STREAMS}): choose another name"
            )
    if service.stream.startswith(("KV_", "OBJ_")):
        raise ScaffoldError(
            f"{name!r} would name its stream {service.stream}, a prefix JetStream keeps for "
            "key-value and object stores: choose another name"
        )
    found = traces(root, service)
    if found:
        leftover = (
            ""
            if not made_by_scaffold(root, service)
            else f", or run `make remove-service name={name}` first if it is a scaffold to redo"
        )
        raise ScaffoldError(
            f"a service {name!r} exists already ({', '.join(found)}): choose another name{leftover}"
        )
    return service


def check_remove(root: Path, name: str) -> Service:
    """The service to remove, or ScaffoldError when it is not one the scaffold could have made."""
    service = check_name_format(name, "remove-service")
    if not made_by_scaffold(root, service):
        raise ScaffoldError(
            f"{name!r} is one of the platform's own services "
            f"({', '.join(platform_services(root))}): remove-service only removes services made "
            "by make new-service (their pyproject.toml has [tool.flotilla] "
            f'scaffold = "{SCAFFOLD_MARKER}")'
        )
    if not traces(root, service):
        raise ScaffoldError(f"there is no service {name!r} (no {service.folder}): nothing to do")
    return service
