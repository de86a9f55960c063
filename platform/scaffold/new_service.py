"""Scaffold a service (`make new-service name=<name>`) or remove one (`make remove-service`).

A new service gets, from the templates next to this file and from the payment service (whose
Dockerfile, chart and skaffold module it copies, renamed):

- services/<name>/: pyproject.toml, Dockerfile, README.md, src/<name>_service/ with an example
  resource (items in its database, an Alembic migration, an event through the outbox) and tests;
- charts/<name>/: the chart on flotilla-lib, its vendored library and generated values schema;
- its registrations in the files that cannot discover it from its folder: the root
  pyproject.toml (workspace dependency and uv source, ruff first-party, mypy path) and uv.lock;
  skaffold.yaml (one module per service); its NATS user in platform/nats/local.conf and
  charts/nats/files/users.conf (each user's permissions are the security policy, written per
  service); its database in charts/postgres/values-local.yaml (helm values;
  platform/secrets/cluster_secrets.py reads both lists); the static job matrix of .gitlab-ci.yml.

Everything else finds the service from its folder (kit.layout): the chart schemas
(charts/schemagen.py), the vendored library (charts/vendor-lib.sh), CI's deployables, `make run`
(devkit.devrun) and the tests. Its pyproject.toml carries ``[tool.flotilla] scaffold =
"new-service"``, which is what lets `make remove-service` remove it; removal undoes exactly what
creation did and refuses the platform's own services. Usage (make passes --uv):

    .venv/bin/python platform/scaffold/new_service.py new inventory --uv ~/.cache/.../uv
    .venv/bin/python platform/scaffold/new_service.py remove inventory --uv ~/.cache/.../uv
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit import layout

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates" / "service"
# A new service copies this service's Dockerfile, chart and skaffold module, renamed.
REFERENCE = "payment"
# A scaffolded service's pyproject.toml says so ([tool.flotilla] scaffold = "new-service"):
# remove-service removes no other service (the platform's own ones, or one written by hand).
SCAFFOLD_MARKER = "new-service"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_LENGTH = 30
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
        return f"{self.snake}_service"

    @property
    def project(self) -> str:
        """Its workspace project and image name: stock-level-service."""
        return f"{self.name}-service"

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


# --- names --------------------------------------------------------------------------------------


def check_name_format(name: str, command: str) -> Service:
    """The service called ``name``, or ScaffoldError saying which names are allowed."""
    if not name:
        raise ScaffoldError(f"give the service a name: make {command} name=inventory")
    if not NAME_PATTERN.match(name) or len(name) > MAX_LENGTH:
        raise ScaffoldError(
            f"{name!r} is not a valid service name: use lowercase letters, digits and single "
            f"dashes, starting with a letter, at most {MAX_LENGTH} characters "
            "(e.g. inventory, stock-level)"
        )
    if name == "service" or name.endswith("-service"):
        base = name.removesuffix("-service") or "inventory"
        raise ScaffoldError(
            f"{name!r}: leave out the -service suffix (name={base}); the scaffold adds it where "
            f"it belongs (project and image {base}-service, package {Service(base).package})"
        )
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


# --- text helpers -------------------------------------------------------------------------------


def read(root: Path, path: str) -> str:
    """The text of a repository file, or ScaffoldError when it is missing."""
    try:
        return (root / path).read_text()
    except FileNotFoundError:
        raise ScaffoldError(f"{path} not found in {root}: run it in a Flotilla checkout") from None


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every placeholder of ``values`` replaced."""
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def rename_reference(text: str, service: Service) -> str:
    """A file of the reference service, renamed for ``service`` (comment columns kept)."""
    text = text.replace(f"{REFERENCE}_service", service.package)
    shift = len(service.name) - len(REFERENCE)

    def keep_column(match: re.Match[str]) -> str:
        return service.name + " " * max(1, len(match.group(1)) - shift) + "#"

    text = re.sub(rf"\b{REFERENCE}\b( +)#", keep_column, text)
    return re.sub(rf"\b{REFERENCE}\b", service.name, text)


def anchor_missing(path: str, what: str) -> ScaffoldError:
    """The error for a shared file that no longer looks the way the scaffold expects."""
    return ScaffoldError(
        f"{path}: cannot find {what}, so the scaffold does not know where to register the "
        "service. Restore that part of the file (see git log), or register it by hand as "
        "platform/scaffold/README.md describes"
    )


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


# --- the shared files ---------------------------------------------------------------------------

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
    """skaffold.yaml: the reference module renamed, inserted before the deployer's."""
    documents = re.split(r"(?m)^---\n", text)
    modules = skaffold_modules(text)
    if service.name in modules:
        del documents[modules[service.name]]
    if add:
        if REFERENCE not in modules:
            raise anchor_missing("skaffold.yaml", f"the {REFERENCE} module")
        reference = documents[modules[REFERENCE]]
        module = rename_reference(reference[reference.index("apiVersion:") :], service)
        documents.insert(modules.get("deployer", len(documents)), module)
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


# --- generation ---------------------------------------------------------------------------------


def service_files(root: Path, service: Service) -> dict[str, bytes]:
    """services/<name>/ from the templates, and its Dockerfile from the reference service's."""
    values = {
        "__PACKAGE__": service.package,
        "__SNAKE__": service.snake,
        "__STREAM__": service.stream,
        "__NAME__": service.name,
    }
    files = {}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = substitute(str(template.relative_to(TEMPLATES)), values).removesuffix(".tmpl")
        files[f"{service.folder}/{relative}"] = substitute(template.read_text(), values).encode()
    dockerfile = read(root, f"services/{REFERENCE}/Dockerfile")
    files[f"{service.folder}/Dockerfile"] = rename_reference(dockerfile, service).encode()
    return files


def chart_files(root: Path, service: Service) -> dict[str, bytes]:
    """charts/<name>/: the reference chart renamed, with its vendored library as it is.

    values.schema.json is left to charts/schemagen.py; the vendored flotilla-lib tarball and
    Chart.lock are the same bytes in every chart (helm packages the library reproducibly).
    """
    source = root / "charts" / REFERENCE
    if not (source / "Chart.yaml").is_file():
        raise anchor_missing(f"charts/{REFERENCE}", "Chart.yaml (the chart a new one copies)")
    files = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        if relative == "values.schema.json":
            continue
        if relative == "Chart.lock" or path.suffix == ".tgz":
            content = path.read_bytes()
        else:
            text = rename_reference(path.read_text(), service)
            if relative == "Chart.yaml":
                text = re.sub(
                    r"(?m)^description: .*$",
                    f"description: The Flotilla {service.name} service.",
                    text,
                )
                text = re.sub(r"(?m)^version: .*$", "version: 0.1.0", text)
                text = re.sub(r"(?m)^appVersion: .*$", 'appVersion: "0.1.0"', text)
            content = text.encode()
        files[f"{service.chart}/{relative}"] = content
    return files


# --- running it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The programs a run calls: the venv's Python and ruff, and uv."""

    root: Path
    uv: str

    def run(self, *command: str) -> None:
        """Run ``command`` in the repository; ScaffoldError with its output when it fails."""
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ScaffoldError(
                f"`{' '.join(command)}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}".rstrip()
            )

    def ruff(self, *args: str) -> None:
        """Run the venv's ruff."""
        ruff = Path(sys.executable).with_name("ruff")
        if not ruff.is_file():
            raise ScaffoldError(f"{ruff} not found: run `make deps` first")
        self.run(str(ruff), *args, "--quiet")

    def lock_and_sync(self) -> None:
        """Update uv.lock for the changed workspace and install it into the venv."""
        self.run(self.uv, "lock", "--quiet")
        self.run(self.uv, "sync", "--all-packages", "--locked", "--quiet")


def apply(root: Path, changes: Changes) -> None:
    """Write the new files and the edited shared files."""
    for path, content in changes.new_files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    for path, text in changes.edits.items():
        (root / path).write_text(text)


def new_service(root: Path, name: str, tools: Tools) -> Changes:
    """Create the service ``name`` and register it everywhere; returns what was done."""
    service = check_new(root, name)
    changes = Changes()
    shared_edits(root, service, True, changes)
    changes.new_files.update(service_files(root, service))
    changes.new_files.update(chart_files(root, service))
    apply(root, changes)
    python_edits = [path for path in changes.edits if path.endswith(".py")]
    try:
        # Import order depends on the name (first-party imports sort alphabetically): format.
        tools.ruff("check", "--fix", "--select", "I", service.folder)
        tools.ruff("format", service.folder, *python_edits)
        tools.run(sys.executable, "charts/schemagen.py")
        schema = f"{service.chart}/values.schema.json"
        if not (root / schema).is_file():
            raise ScaffoldError(f"charts/schemagen.py did not write {schema}: list {name} there")
        tools.lock_and_sync()
    except ScaffoldError as exc:
        raise ScaffoldError(
            f"{exc}\nThe files are written; fix the cause and run `make remove-service "
            f"name={name}` then `make new-service name={name}` again"
        ) from None
    return changes


def remove_service(root: Path, name: str, tools: Tools) -> Changes:
    """Delete the service ``name`` and every registration of it; returns what was done."""
    service = check_remove(root, name)
    changes = Changes()
    shared_edits(root, service, False, changes)
    for folder in (service.folder, service.chart):
        shutil.rmtree(root / folder, ignore_errors=True)
    apply(root, changes)
    python_edits = [path for path in changes.edits if path.endswith(".py")]
    if python_edits:
        tools.ruff("format", *python_edits)
    tools.lock_and_sync()
    return changes


def main(argv: list[str] | None = None) -> int:
    """The command line: ``new NAME`` or ``remove NAME``."""
    parser = argparse.ArgumentParser(
        prog="new_service.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("command", choices=["new", "remove"])
    parser.add_argument("name", help="lowercase letters, digits and dashes, e.g. inventory")
    parser.add_argument("--root", type=Path, default=HERE.parents[1], help="the checkout")
    parser.add_argument("--uv", default=os.environ.get("UV") or shutil.which("uv"))
    args = parser.parse_args(argv)
    target = "new-service" if args.command == "new" else "remove-service"
    root = args.root.resolve()
    try:
        if not args.uv:
            raise ScaffoldError(f"uv not found: run `make {target} name={args.name}`, or pass --uv")
        tools = Tools(root, args.uv)
        if args.command == "new":
            changes = new_service(root, args.name, tools)
            print(f"created services/{args.name} and charts/{args.name}")
        else:
            changes = remove_service(root, args.name, tools)
            print(f"removed services/{args.name} and charts/{args.name}")
    except ScaffoldError as exc:
        print(f"make {target}: {exc}", file=sys.stderr)
        return 2
    for path in [*sorted(changes.edits), "uv.lock"]:
        print(f"  edited {path}")
    for note in changes.notes:
        print(f"  note: {note}")
    if args.command == "new":
        print(f"next: .venv/bin/pytest services/{args.name}, then make test, then commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
