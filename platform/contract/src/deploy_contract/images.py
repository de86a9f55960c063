"""Image references and the immutable-tag rule: ``repo:<semver>-<git sha>[@sha256:<digest>]``.

The tag, repository and digest rules are kit.naming's, shared with CI and the charts' schemas.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit import naming


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
    try:
        if digest:
            naming.check_image_digest(digest)
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
        naming.check_image_repository(repository)
        parts = naming.check_image_tag(tag)
    except naming.NamingError as exc:
        raise ImageRejectedError(str(exc)) from None
    version = Version(parts.major, parts.minor, parts.patch, parts.pre)
    return ImageRef(repository, tag, digest or None, version, parts.sha)
