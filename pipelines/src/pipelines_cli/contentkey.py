"""The content key of an image: a hash over exactly what its build reads.

That is the Dockerfile, the files its ``COPY``/``ADD`` instructions take from the build context
(after ``.dockerignore``, with Docker's matching rules), the base images' ids and the build
arguments. Two builds with the same key make the same image, so the second one is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Bump when the key's recipe changes, so old keys stop matching.
KEY_VERSION = "1"
_INSTRUCTION = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool
    literal_prefix: str


def _to_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i)
            if end < 0:
                out += re.escape(char)
            else:
                out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
                i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


class DockerIgnore:
    """``.dockerignore`` rules: a path is ignored when the last pattern matching it or one of
    its parent folders is not a ``!`` exception."""

    def __init__(self, text: str) -> None:
        self._patterns: list[_Pattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            prefix = re.split(r"[*?\[]", line, maxsplit=1)[0]
            self._patterns.append(_Pattern(_to_regex(line), exclusion, prefix))

    @classmethod
    def of(cls, context: Path, dockerfile: Path | None = None) -> DockerIgnore:
        """The rules for a build of ``dockerfile``: ``<dockerfile>.dockerignore`` when it
        exists, else ``context/.dockerignore``, else none."""
        path = context / ".dockerignore"
        if dockerfile is not None and Path(f"{dockerfile}.dockerignore").is_file():
            path = Path(f"{dockerfile}.dockerignore")
        return cls(path.read_text() if path.is_file() else "")

    def ignored(self, relative: str) -> bool:
        """Whether the build context leaves out ``relative`` (a POSIX path in the context)."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        matched = False
        for pattern in self._patterns:
            if any(pattern.regex.match(candidate) for candidate in candidates):
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, folder: str) -> bool:
        """False when ``folder`` is ignored and no exception can bring back anything under it."""
        if not self.ignored(folder):
            return True
        return any(
            p.exclusion and (p.literal_prefix.startswith(folder + "/") or not p.literal_prefix)
            for p in self._patterns
        )


def _instructions(dockerfile: str) -> Iterator[str]:
    """The Dockerfile's instructions with line continuations joined, comments dropped."""
    current = ""
    for line in dockerfile.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            yield current.strip()
        current = ""
    if current.strip():
        yield current.strip()


def _expand(source: str, build_args: Mapping[str, str]) -> str:
    """``source`` with its ``$NAME``/``${NAME}`` replaced by the build arguments it names."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        return build_args.get(name, match[0])

    return _VARIABLE.sub(value, source)


def copy_sources(dockerfile: str, build_args: Mapping[str, str] | None = None) -> list[str] | None:
    """The context paths ``COPY``/``ADD`` read (``--from`` copies excluded), with the variables
    of ``build_args`` expanded (the services' shared Dockerfile copies ``services/${SERVICE}/``).

    None when a source uses another variable, or a URL: then the whole context counts.
    """
    sources: list[str] = []
    for instruction in _instructions(dockerfile):
        match = _INSTRUCTION.match(instruction)
        if not match:
            continue
        rest = match[2].strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        for source in (_expand(path, build_args or {}) for path in paths[:-1]):
            if "$" in source or "://" in source:
                return None
            sources.append(os.path.normpath(source).lstrip("/"))
    return sources


def _walk(context: Path, relative: str, ignore: DockerIgnore) -> Iterator[str]:
    start = context / relative if relative != "." else context
    if start.is_symlink() or start.is_file():
        if not ignore.ignored(relative):
            yield relative
        return
    for dirpath, dirnames, filenames in os.walk(start):
        base = Path(dirpath).relative_to(context).as_posix()
        prefix = "" if base == "." else f"{base}/"
        dirnames[:] = sorted(
            d for d in dirnames if d != ".git" and ignore.may_include_below(prefix + d)
        )
        for name in filenames:
            if not ignore.ignored(prefix + name):
                yield prefix + name


def context_files(
    context: Path, dockerfile: Path, build_args: Mapping[str, str] | None = None
) -> list[str]:
    """The files of ``context`` the build of ``dockerfile`` with ``build_args`` takes, sorted."""
    ignore = DockerIgnore.of(context, dockerfile)
    sources = copy_sources(dockerfile.read_text(), build_args)
    roots = ["."] if sources is None else sources
    found: set[str] = set()
    for source in roots:
        if any(char in source for char in "*?["):
            matches = [p.relative_to(context).as_posix() for p in context.glob(source)]
        else:
            matches = [source] if (context / source).exists() else []
        for match in matches:
            found.update(_walk(context, match, ignore))
    return sorted(found)


def _file_digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    mode = "x" if os.access(path, os.X_OK) else "-"
    return f"{mode}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def content_key(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str],
) -> str:
    """sha256 hex over the Dockerfile, the context files it copies, build args and base ids."""
    text = dockerfile.read_text()
    listed = context_files(context, dockerfile, build_args)
    files = {rel: _file_digest(context / rel) for rel in listed}
    recipe = {
        "version": KEY_VERSION,
        "dockerfile": hashlib.sha256(text.encode()).hexdigest(),
        "files": files,
        "build_args": dict(sorted(build_args.items())),
        "base_images": dict(sorted(base_image_ids.items())),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
