"""Image references and the immutable-tag rule: ``repo:<semver>-<git sha>[@sha256:<digest>]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*))?-(?P<sha>[0-9a-f]{7,40})$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPOSITORY = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)


class ImageRejectedError(ValueError):
    """The image reference breaks the immutable-tag rule; the message says how to fix it."""


@dataclass(frozen=True, order=False)
class Version:
    """The semantic version inside a tag; pre-releases sort before their release."""

    major: int
    minor: int
    patch: int
    pre: str | None

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """A sort key following semver precedence (numeric identifiers compare as numbers)."""
        if self.pre is None:
            return (self.major, self.minor, self.patch, 1, ())
        parts = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in self.pre.split(".")
        )
        return (self.major, self.minor, self.patch, 0, parts)

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.pre}" if self.pre else core


@dataclass(frozen=True)
class ImageRef:
    """A parsed, immutable image reference."""

    repository: str
    tag: str
    digest: str | None
    version: Version
    commit: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def is_older_than(self, other: ImageRef) -> bool:
        """True when this image's version sorts before ``other``'s."""
        return self.version.key() < other.version.key()

    def refused_over(self, deployed: ImageRef) -> str | None:
        """Why this image may not replace ``deployed`` without ``rollback=true``, or None."""
        if not self.is_older_than(deployed):
            return None
        return (
            f"image {self.tag} is older than the deployed {deployed.tag}; "
            "send rollback=true to deploy an older version on purpose"
        )


def parse_image(reference: str) -> ImageRef:
    """Parse ``repo:<semver>-<sha>`` (optionally ``@sha256:...``); refuse anything mutable."""
    rest, _, digest = reference.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ImageRejectedError(f"digest {digest!r} is not sha256:<64 hex digits>")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:
        if digest:
            raise ImageRejectedError(
                f"image {reference!r} has a digest but no tag: the charts need a "
                "<version>-<git sha> tag too, e.g. repo:1.4.2-a8f3d21@sha256:..."
            )
        raise ImageRejectedError(
            f"image {reference!r} has no tag: use an immutable <version>-<git sha> tag, "
            "e.g. registry.example/order-service:1.4.2-a8f3d21"
        )
    repository, tag = rest[:colon], rest[colon + 1 :]
    if not _REPOSITORY.match(repository):
        raise ImageRejectedError(f"image repository {repository!r} is not a valid OCI name")
    if tag == "latest":
        raise ImageRejectedError(
            "the tag 'latest' is mutable: deploy an immutable <version>-<git sha> tag "
            "(e.g. 1.4.2-a8f3d21), so that what runs is what was tested"
        )
    match = _TAG.match(tag)
    if match is None:
        raise ImageRejectedError(
            f"tag {tag!r} is not <semver>-<git sha> (e.g. 1.4.2-a8f3d21): tags must be immutable "
            "and name the commit they were built from"
        )
    version = Version(
        int(match["major"]), int(match["minor"]), int(match["patch"]), match["pre"] or None
    )
    return ImageRef(repository, tag, digest or None, version, match["sha"])
