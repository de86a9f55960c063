"""The shared files a new service is registered in (the ones that cannot discover it from its
folder): each edit adds the service or, with ``add`` false, takes out exactly what it added."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from scaffold_common import (
    NATS_CHART_USERS,
    NATS_CONF,
    POSTGRES_VALUES,
    Changes,
    Service,
    anchor_missing,
    read,
)
from scaffold_render import skaffold_module


def edit_word_list(text: str, pattern: str, name: str, add: bool, before: str = "") -> str | None:
    """Edit the list in group 2 of ``pattern`` (items split by ``, `` or spaces)."""
    match = re.search(pattern, text, flags=re.M)
    if match is None:
        return None
    separator = ", " if "," in match.group(2) else " "
    items = [item.strip() for item in match.group(2).split(separator.strip() or None)]
    items = [item for item in items if item and item != name]
    if add:
        index = items.index(before) if before in items else len(items)
        items.insert(index, name)
    new = match.group(1) + separator.join(items) + match.group(3)
    return text[: match.start()] + new + text[match.end() :]


# An edit of one shared file: (text, service, add) -> the new text, or None when the file has no
# list to edit. Adding and removing are one function, so removal undoes exactly what adding did.
Edit = Callable[[str, Service, bool], str | None]


def edit_pyproject(text: str, service: Service, add: bool) -> str:
    """The root pyproject.toml: dependency, uv source, first-party package, mypy path."""
    path = "pyproject.toml"
    dependency = f'  "{service.project}",\n'
    source = f"{service.project} = {{ workspace = true }}\n"
    text = text.replace(dependency, "").replace(source, "")
    if add:
        block = re.search(r"(?ms)^\[project\]\n.*?^dependencies = \[\n(?P<body>.*?)^\]", text)
        if block is None:
            raise anchor_missing(path, "[project].dependencies")
        services = list(re.finditer(r'(?m)^  "[a-z0-9-]+-service",\n', block["body"]))
        at = block.start("body") + (services[-1].end() if services else len(block["body"]))
        text = text[:at] + dependency + text[at:]
        sources = list(re.finditer(r"(?m)^[a-z0-9-]+-service = \{ workspace = true \}\n", text))
        if not sources:
            raise anchor_missing(path, "a `<name>-service = { workspace = true }` line")
        at = sources[-1].end()
        text = text[:at] + source + text[at:]
    first_party = edit_word_list(
        text, r"^(known-first-party = \[)(.*)(\])$", f'"{service.package}"', add
    )
    if first_party is None:
        raise anchor_missing(path, "[tool.ruff.lint.isort] known-first-party")
    mypy = re.search(r'(?m)^(mypy_path = ")([^"]*)(")$', first_party)
    if mypy is None:
        raise anchor_missing(path, "[tool.mypy] mypy_path")
    entry = f"{service.folder}/src"
    entries = [e for e in mypy.group(2).split(":") if e and e != entry] + ([entry] if add else [])
    return first_party[: mypy.start(2)] + ":".join(entries) + first_party[mypy.end(2) :]


def skaffold_modules(text: str) -> dict[str, int]:
    """The module names of skaffold.yaml, with the index of their document."""
    modules = {}
    for index, document in enumerate(re.split(r"(?m)^---\n", text)):
        match = re.search(r"(?m)^metadata:\n  name: (\S+)$", document)
        if match:
            modules[match.group(1)] = index
    return modules


def edit_skaffold(text: str, service: Service, add: bool) -> str:
    """skaffold.yaml: the service's module (from the template), inserted before the deployer's."""
    documents = re.split(r"(?m)^---\n", text)
    modules = skaffold_modules(text)
    if service.name in modules:
        del documents[modules[service.name]]
    if add:
        documents.insert(modules.get("deployer", len(documents)), skaffold_module(service))
    return "---\n".join(documents)


def nats_user(service: Service, password: str) -> str:
    """The service's user in a NATS configuration: its own subjects, dead letters and stream."""
    stream, name = service.stream, service.name
    return (
        "    {\n"
        f"      user: {name}, password: {password}\n"
        "      permissions: {\n"
        '        publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.*",\n'
        f'          "{name}.>", "deadletter.{name}.>",\n'
        f'          "$JS.API.STREAM.CREATE.{stream}", "$JS.API.STREAM.UPDATE.{stream}",\n'
        '          "$JS.API.STREAM.CREATE.DEADLETTER", "$JS.API.STREAM.UPDATE.DEADLETTER"] }\n'
        '        subscribe: { allow: ["_INBOX.>"] }\n'
        "      }\n"
        "    },\n"
    )


def edit_nats_users(path: str, password: Callable[[Service], str]) -> Edit:
    """An edit of a NATS configuration's users (``path``): the service's user, with the
    ``password`` it is given there, before the deployer's."""

    def edit(text: str, service: Service, add: bool) -> str:
        user = re.escape(service.name)
        own = rf"(?ms)^    \{{\n(?:      #[^\n]*\n)*      user: {user},.*?^    \}},\n"
        text = re.sub(own, "", text)
        if not add:
            return text
        deployer = re.search(r"(?m)^    \{\n(?:      #.*\n)*      user: deployer,", text)
        if deployer is None:
            raise anchor_missing(path, "the deployer's user (the new user goes before it)")
        block = nats_user(service, password(service))
        return text[: deployer.start()] + block + text[deployer.start() :]

    return edit


# local.conf: a public development password. The chart's users.conf: the environment variable
# the nats StatefulSet fills from the nats-users Secret (key: the user name).
edit_nats = edit_nats_users(NATS_CONF, lambda service: f'"{service.name}-local-only"')
edit_nats_chart = edit_nats_users(
    NATS_CHART_USERS, lambda service: f"$NATS_PASSWORD_{service.snake.upper()}"
)


def edit_postgres_databases(text: str, service: Service, add: bool) -> str:
    """charts/postgres/values-local.yaml: the service's role and database (its snake name, a
    PostgreSQL identifier) at the end of ``databases``."""
    block = re.search(r"(?m)^databases:\n(?P<items>(?:  - [a-z0-9_]+\n)+)", text)
    if block is None:
        raise anchor_missing(POSTGRES_VALUES, "the `databases:` list (one `  - <role>` a line)")
    items = [line.removeprefix("  - ") for line in block["items"].splitlines()]
    items = [item for item in items if item != service.snake] + ([service.snake] if add else [])
    body = "".join(f"  - {item}\n" for item in items)
    return text[: block.start("items")] + body + text[block.end("items") :]


def edit_gitlab(text: str, service: Service, add: bool) -> str | None:
    """.gitlab-ci.yml: the service in the per-service job matrix."""
    return edit_word_list(text, r"^(\s*- SERVICE: \[)([^\]]*)(\])$", service.name, add)


# Each shared file, how to edit it, and whether the scaffold must find its anchor (a list that
# another change may have replaced by discovery is skipped with a note instead).
SHARED: tuple[tuple[str, Edit, bool], ...] = (
    ("pyproject.toml", edit_pyproject, True),
    ("skaffold.yaml", edit_skaffold, True),
    (NATS_CONF, edit_nats, True),
    (NATS_CHART_USERS, edit_nats_chart, True),
    (POSTGRES_VALUES, edit_postgres_databases, True),
    (".gitlab-ci.yml", edit_gitlab, False),
)


def shared_edits(root: Path, service: Service, add: bool, changes: Changes) -> None:
    """Compute every shared file's edit into ``changes`` (nothing is written yet)."""
    for path, edit, required in SHARED:
        if not required and not (root / path).exists():
            continue
        before = read(root, path)
        after = edit(before, service, add)
        if after is None:
            changes.notes.append(f"{path}: no service list found there; not edited")
        elif after != before:
            changes.edits[path] = after
