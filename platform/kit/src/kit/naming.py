"""The naming rules every part of the platform shares, each written once.

- the immutable image tag ``<semver>-<git sha>`` (CI makes it, the deployer and the charts'
  values.schema.json refuse anything else),
- the OCI image repository (``[registry host[:port]/]path``) and the image digest,
- the service name (folders, charts, NATS subjects, deploy events), the stricter name of a service
  `make new-service` creates, and the names derived from it (Python package, distribution).

The patterns are plain strings that mean the same in Python's ``re``, Go's RE2 (Helm) and
ECMA-262 (JSON Schema): only ``[0-9]`` classes and unnamed groups, anchored with ``^``/``$``.
charts/schemagen writes them into the schemas as they are; code calls the ``check_*``
functions, which raise :class:`NamingError` with a message saying what is wrong and how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# MAJOR.MINOR.PATCH[-PRERELEASE], without a leading "v" (a pyproject.toml's version).
SEMVER = r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?"
VERSION = rf"^{SEMVER}$"
# A git commit sha as tags carry it: 7 to 40 lowercase hex digits.
COMMIT_SHA = r"^[0-9a-f]{7,40}$"
# <semver>-<git sha>, e.g. 1.4.2-a8f3d21 or 2.0.0-rc.1-a8f3d21 (an optional leading v). It can
# never match "latest" or any other moving name.
IMAGE_TAG = rf"^v?{SEMVER}-[0-9a-f]{{7,40}}$"
# An OCI repository: an optional registry host (with port) and lowercase path components.
IMAGE_REPOSITORY = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(:[0-9]+)?/)?[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_DIGEST = r"^sha256:[0-9a-f]{64}$"
# A service: a folder services/<name>/, its chart and release, its NATS subjects <name>.>.
SERVICE_NAME = r"^[a-z][a-z0-9-]{0,39}$"
# A service `make new-service` creates: a SERVICE_NAME with single dashes, none at the end, and
# at most NEW_SERVICE_MAX_LENGTH characters.
NEW_SERVICE_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
NEW_SERVICE_MAX_LENGTH = 30

_VERSION = re.compile(VERSION)
_COMMIT_SHA = re.compile(COMMIT_SHA)
_IMAGE_TAG = re.compile(IMAGE_TAG)
_IMAGE_REPOSITORY = re.compile(IMAGE_REPOSITORY)
_IMAGE_DIGEST = re.compile(IMAGE_DIGEST)
_SERVICE_NAME = re.compile(SERVICE_NAME)
_NEW_SERVICE_NAME = re.compile(NEW_SERVICE_NAME)


class NamingError(ValueError):
    """A name breaks one of the platform's rules; the message says which and how to fix it."""


@dataclass(frozen=True)
class TagParts:
    """The parts of an immutable tag: its semantic version and the commit it was built from."""

    major: int
    minor: int
    patch: int
    pre: str | None
    sha: str


def is_version(version: str) -> bool:
    """True when ``version`` is MAJOR.MINOR.PATCH[-PRERELEASE]."""
    return _VERSION.fullmatch(version) is not None


def check_version(version: str) -> str:
    """``version``, or NamingError when it is not a semantic version."""
    if not is_version(version):
        raise NamingError(
            f"version {version!r} is not MAJOR.MINOR.PATCH[-PRERELEASE] (e.g. 1.4.2, 1.5.0-rc.1): "
            "set [project].version in the service's pyproject.toml to a semantic version"
        )
    return version


def check_commit_sha(sha: str) -> str:
    """``sha``, or NamingError when it is not 7 to 40 lowercase hex digits."""
    if _COMMIT_SHA.fullmatch(sha) is None:
        raise NamingError(f"{sha!r} is not a git commit sha (7 to 40 lowercase hex digits)")
    return sha


def is_image_tag(tag: str) -> bool:
    """True when ``tag`` is an immutable ``<semver>-<git sha>`` tag."""
    return _IMAGE_TAG.fullmatch(tag) is not None


def check_image_tag(tag: str) -> TagParts:
    """The parts of the immutable tag ``tag``, or NamingError saying why it is refused."""
    if tag == "latest":
        raise NamingError(
            "the tag 'latest' is mutable: deploy an immutable <version>-<git sha> tag "
            "(e.g. 1.4.2-a8f3d21), so that what runs is what was tested"
        )
    if not is_image_tag(tag):
        raise NamingError(
            f"tag {tag!r} is not <semver>-<git sha> (e.g. 1.4.2-a8f3d21): tags must be immutable "
            "and name the commit they were built from"
        )
    version, _, sha = tag.removeprefix("v").rpartition("-")
    core, _, pre = version.partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    return TagParts(major, minor, patch, pre or None, sha)


def is_image_repository(repository: str) -> bool:
    """True when ``repository`` is a valid OCI repository (without tag or digest)."""
    return _IMAGE_REPOSITORY.fullmatch(repository) is not None


def check_image_repository(repository: str) -> str:
    """``repository``, or NamingError when it is not a valid OCI repository."""
    if not is_image_repository(repository):
        raise NamingError(
            f"image repository {repository!r} is not a valid OCI name: an optional registry "
            "host[:port]/ then lowercase path components (e.g. ghcr.io/acme/order-service)"
        )
    return repository


def check_registry(registry: str) -> str:
    """``registry`` without a trailing slash, or NamingError when repositories under it would
    not be valid: a registry is the part of a repository before the image name (a host with an
    optional port and lowercase path, e.g. ghcr.io/acme or localhost:5000)."""
    prefix = registry.rstrip("/")
    if not prefix or not is_image_repository(f"{prefix}/image"):
        raise NamingError(
            f"registry {registry!r} is not a registry host with an optional lowercase path "
            "(e.g. ghcr.io/acme or localhost:5000)"
        )
    return prefix


def is_image_digest(digest: str) -> bool:
    """True when ``digest`` is ``sha256:<64 lowercase hex digits>``."""
    return _IMAGE_DIGEST.fullmatch(digest) is not None


def check_image_digest(digest: str) -> str:
    """``digest``, or NamingError when it is not ``sha256:<64 hex digits>``."""
    if not is_image_digest(digest):
        raise NamingError(f"digest {digest!r} is not sha256:<64 hex digits>")
    return digest


def is_service_name(name: str) -> bool:
    """True when ``name`` may name a service."""
    return _SERVICE_NAME.fullmatch(name) is not None


def check_service_name(name: str) -> str:
    """``name``, or NamingError when it may not name a service."""
    if not is_service_name(name):
        raise NamingError(
            f"{name!r} is not a valid service name: a lowercase letter, then at most 39 "
            "lowercase letters, digits or dashes (e.g. order, stock-level)"
        )
    return name


def check_new_service_name(name: str) -> str:
    """``name``, or NamingError when a new service (`make new-service`) may not take it."""
    if _NEW_SERVICE_NAME.fullmatch(name) is None or len(name) > NEW_SERVICE_MAX_LENGTH:
        raise NamingError(
            f"{name!r} is not a valid service name: use lowercase letters, digits and single "
            f"dashes, starting with a letter, at most {NEW_SERVICE_MAX_LENGTH} characters "
            "(e.g. inventory, stock-level)"
        )
    if name == "service" or name.endswith("-service"):
        base = name.removesuffix("-service") or "inventory"
        raise NamingError(
            f"{name!r}: leave out the -service suffix (name={base}); the scaffold adds it where "
            f"it belongs (project and image {service_distribution(base)}, package "
            f"{service_package(base)})"
        )
    return name


def service_distribution(name: str) -> str:
    """The service's workspace project (distribution) and image name: stock-level-service."""
    return f"{name}-service"


def service_package(name: str) -> str:
    """The service's Python package: stock_level_service."""
    return f"{name.replace('-', '_')}_service"
