"""The kit's modules import one another without a circle, and never the development kit.

Every import counts: at module level, inside a function, and under ``if TYPE_CHECKING:`` (a
circle hidden from the interpreter is still one for mypy and for the reader).

The development kit (``devkit``, platform/devkit) is not installed in any image: a chassis module
importing it would fail in every service's pod.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import kit

KIT = Path(kit.__file__).parent
DEV_PACKAGE = "devkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(KIT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_names(tree: ast.AST, module: str, package: bool) -> Iterator[str]:
    """The dotted names a module imports, with relative imports made absolute."""
    here = module if package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from pkg import name`` imports the submodule pkg.name when there is one.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def kit_import_graph() -> dict[str, set[str]]:
    """Module -> the kit modules importing it runs (the imported one and its packages)."""
    paths = kit_modules()
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for name in imported_names(tree, module, is_package(path)):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                # Importing a sibling runs no code of a package this module is already inside.
                inside = module == target or module.startswith(target + ".")
                if target in paths and not inside:
                    edges.add(target)
        graph[module] = edges
    return graph


def dev_imports(modules: dict[str, Path]) -> dict[str, list[str]]:
    """Module -> the names of the development kit (``devkit`` and below) it imports."""
    found: dict[str, list[str]] = {}
    for module, path in sorted(modules.items()):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = sorted(
            {
                name
                for name in imported_names(tree, module, is_package(path))
                if name.partition(".")[0] == DEV_PACKAGE
            }
        )
        if names:
            found[module] = names
    return found


def kit_modules() -> dict[str, Path]:
    """Every module of the chassis, by dotted name."""
    return {module_name(path): path for path in KIT.rglob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules, the first repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle is not None:
            return cycle
    return None


def test_the_kit_has_no_import_circle() -> None:
    graph = kit_import_graph()
    assert {"kit.app", "kit.events.consumer", "kit.events"} <= graph.keys()
    assert "kit.events.consumer" in graph["kit.app"]  # the graph does see the kit's imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_check_finds_a_circle_hidden_under_type_checking() -> None:
    source = "if TYPE_CHECKING:\n    from kit.app import Runtime\n"
    graph = kit_import_graph()
    hidden = {
        name
        for name in imported_names(ast.parse(source), "kit.events.consumer", package=False)
        if name in graph
    }
    graph["kit.events.consumer"] |= hidden
    cycle = find_cycle(graph)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert {"kit.app", "kit.events.consumer"} <= set(cycle)


def test_relative_imports_are_resolved() -> None:
    tree = ast.parse("from .bus import EventBus\nfrom .. import db\n")
    names = set(imported_names(tree, "kit.events.consumer", package=False))
    assert {"kit.events.bus", "kit.db"} <= names


def test_the_kit_never_imports_the_development_kit() -> None:
    modules = kit_modules()
    assert {"kit.app", "kit.layout"} <= modules.keys()
    assert not {"kit.localstack", "kit.testing", "kit.devrun"} & modules.keys()  # moved to devkit
    assert dev_imports(modules) == {}, "the chassis imports the development kit (in no image)"


def test_the_check_finds_a_development_kit_import_anywhere(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from devkit.localstack.ports import free_port\n"
        "def later() -> None:\n    import devkit.testing.http\n"
    )
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    assert dev_imports({"kit.planted": planted}) == {
        "kit.planted": ["devkit.localstack.ports", "devkit.localstack.ports.free_port",
                        "devkit.testing.http"],
    }  # fmt: skip
