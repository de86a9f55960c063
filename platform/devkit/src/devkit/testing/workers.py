"""A pytest plugin that spreads a run over pytest-xdist workers (``pytest -n N``) without
breaking what the suites share.

- Tests marked ``real_node`` need the machine's one real node (a cluster with real pods): they
  all go to one worker, in their collected order, and they go last, when the other workers are
  done or nearly: the real pods' timing (rollouts under traffic, fail-overs, canary analyses) is
  what those tests measure, and a machine whose cores are busy with other tests fails them.
- Every other test goes with the rest of its module (or of its package, when it uses a
  package-scoped fixture), so module and package fixtures (a platform of processes, a cluster
  namespace) are set up once, as in a run without workers. The system suites (``tests/``) are
  handed out before the unit suites, so that no worker is left with a long module at the end.
- A test that is not ``real_node`` runs at a lower CPU priority (``nice``), for the minutes where
  the last of them overlap with the real-node tests.

Only the workers see the tests' markers and fixtures; each writes every test's group to a file
the controller named, and the controller's scheduler reads it once every worker has collected.
Without workers the plugin only orders the tests (real-node last).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

REAL_NODE_GROUP = "real-node"
# The CPU priority of the tests that share the machine with the real node's (0 is the default,
# 19 the lowest): low enough that the real pods' rollouts keep their CPU, high enough that a
# process started by a test still answers within its start-up timeout.
OTHERS_NICENESS = 5
_GROUPS_FILE = "flotilla_groups_file"
_groups_key = pytest.StashKey[Path]()
_overlap_key = pytest.StashKey["RealNodeOverlap"]()


@dataclass
class RealNodeOverlap:
    """When the real-node tests began, and how long other tests still ran beside them (what to
    look at first when a real-node test fails for lack of CPU)."""

    run_began: float
    began: float | None = None
    worker: str = ""
    others_ended: float | None = None

    def summary(self) -> str | None:
        """One line for the end of the run, once the real-node tests have begun."""
        if self.began is None:
            return None
        beside = max(0.0, (self.others_ended or self.began) - self.began)
        return (
            f"real-node tests began {self.began - self.run_began:.0f} s into the run on "
            f"{self.worker}; other tests ran beside them for {beside:.0f} s"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real_node: needs the machine's one real node; all such tests run in one worker, last",
    )


def _package_sharing(item: pytest.Item) -> str | None:
    """The package (its node id) whose package-scoped fixture ``item`` uses, if any."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for definitions in info.name2fixturedefs.values():
        for definition in definitions:
            if definition.scope == "package" and definition.baseid:
                return str(definition.baseid)
    return None


def group_of(item: pytest.Item) -> str:
    """The group of a test, which one worker runs whole: the real node's, its package's (when it
    uses a package-scoped fixture) or its module's."""
    if item.get_closest_marker("real_node"):
        return REAL_NODE_GROUP
    return _package_sharing(item) or item.nodeid.split("::", 1)[0]


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no type hints
    """xdist's scheduling by scope, with this plugin's groups as the scopes, in collected order."""

    def __init__(
        self, config: pytest.Config, log: Any, groups_file: Path, overlap: RealNodeOverlap
    ) -> None:
        config.option.loadscopereorder = False  # the collected order is already the best
        super().__init__(config, log)
        self._groups_file = groups_file
        self._groups: dict[str, str] | None = None
        self._overlap = overlap
        self._real_node_worker: Any = None

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        if self._real_node_worker is not None and node is not self._real_node_worker:
            self._overlap.others_ended = time.monotonic()
        super().mark_test_complete(node, item_index, duration)

    def _assign_work_unit(self, node: Any) -> None:
        if not self.workqueue:
            return
        if next(iter(self.workqueue)) != REAL_NODE_GROUP:
            super()._assign_work_unit(node)
            return
        # The real-node group waits until no other worker runs tests: it must have the machine's
        # cores to itself. A worker holds its last test back until it gets more work or is shut
        # down, so one pending test means idle; once the group is handed out, the idle workers
        # are shut down and run that test (a short one: the unit suites come last).
        others = [worker for worker in self.assigned_work if worker != node]
        if any(self._pending_of(self.assigned_work[worker]) > 1 for worker in others):
            return
        super()._assign_work_unit(node)
        self._real_node_worker = node
        self._overlap.began = time.monotonic()
        self._overlap.worker = str(getattr(getattr(node, "gateway", None), "id", node))
        if not self.workqueue:
            for worker in others:
                if not worker.shutting_down:
                    worker.shutdown()

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            try:
                self._groups = json.loads(self._groups_file.read_text())
            except (OSError, ValueError):
                self._groups = {}
        return self._groups.get(nodeid) or _module_of(nodeid)


def _sharing_workers(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") in ("load", "loadgroup", "loadscope")


def _groups_file(config: pytest.Config) -> Path:
    """Where the workers write the groups (made on first use, removed at the end)."""
    if _groups_key not in config.stash:
        config.stash[_groups_key] = Path(tempfile.mkdtemp(prefix="flotilla-xdist-")) / "groups.json"
    return config.stash[_groups_key]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker where to write the groups (before it starts)."""
    if _sharing_workers(node.config):
        node.workerinput[_GROUPS_FILE] = str(_groups_file(node.config))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    """The controller's scheduler (once the workers run): this plugin's groups, unless another
    ``--dist`` was asked for."""
    if not _sharing_workers(config):
        return None
    overlap = RealNodeOverlap(run_began=time.monotonic())
    config.stash[_overlap_key] = overlap
    return GroupScheduling(config, log, _groups_file(config), overlap)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the real-node tests began, and what ran beside them."""
    overlap = terminalreporter.config.stash.get(_overlap_key, None)
    line = overlap.summary() if overlap else None
    if line:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_groups_key, None)
    if path is not None:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The system suites, then the unit suites, then the real-node tests; a worker also writes
    each test's group for the controller."""
    real = [item for item in items if item.get_closest_marker("real_node")]
    rest = [item for item in items if not item.get_closest_marker("real_node")]
    system = [item for item in rest if item.nodeid.startswith("tests/")]
    units = [item for item in rest if not item.nodeid.startswith("tests/")]
    items[:] = system + units + real
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    target = workerinput.get(_GROUPS_FILE) if workerinput else None
    if target:
        groups = {item.nodeid: group_of(item) for item in items}
        partial = Path(f"{target}.{os.getpid()}")
        partial.write_text(json.dumps(groups))
        partial.replace(target)  # every worker writes the same map; each write is whole


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In a worker, a real-node test runs at the default priority and any other at a lower one
    (processes it starts inherit it)."""
    if not hasattr(item.config, "workerinput"):
        return
    wanted = 0 if item.get_closest_marker("real_node") else OTHERS_NICENESS
    if os.getpriority(os.PRIO_PROCESS, 0) != wanted:
        # Raising it back needs root; without, the test only runs a little slower.
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, wanted)
