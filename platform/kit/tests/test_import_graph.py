"""The kit's modules import one another without a circle.

Every import counts: at module level, inside a function, and under ``if TYPE_CHECKING:`` (a
circle hidden from the interpreter is still one for mypy and for the reader).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import kit

KIT = Path(kit.__file__).parent


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
    paths = {module_name(path): path for path in KIT.rglob("*.py")}
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
