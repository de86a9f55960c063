"""The suite a test's time is counted under."""

from __future__ import annotations

import pytest

from devkit.testing.suitetimes import suite_of


@pytest.mark.parametrize(
    ("nodeid", "suite"),
    [
        ("tests/realpods/test_realpods_crash.py::test_x", "tests/realpods"),
        ("services/order/tests/test_order_api.py::test_y[sqlite]", "services/order"),
        ("pipelines/tests/test_pipelines_wait.py::test_z", "pipelines/tests"),
        ("conftest_check.py::test_w", "conftest_check.py"),
        ("tests/test_top.py::test_v", "tests/test_top.py"),
    ],
)
def test_a_test_counts_under_the_first_two_folders_of_its_file(nodeid: str, suite: str) -> None:
    assert suite_of(nodeid) == suite
