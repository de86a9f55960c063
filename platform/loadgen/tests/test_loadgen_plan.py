"""Plans and the command line: loopback targets only, bounded input, clear errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadgen.cli import app
from loadgen.plan import LoadPlan, PlanError, is_loopback_host, loopback_target

runner = CliRunner()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("128.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("::2", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_targets_are_normalised_or_refused_saying_what_to_do() -> None:
    assert loopback_target("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert loopback_target("http://[::1]:9000") == "http://[::1]:9000"
    with pytest.raises(PlanError, match=r"'192\.168\.1\.5' is not a loopback address.*--target"):
        loopback_target("http://192.168.1.5:8000")
    with pytest.raises(PlanError, match="not an http:// or https:// URL"):
        loopback_target("127.0.0.1:8000")
    with pytest.raises(PlanError, match="query or fragment"):
        loopback_target("http://127.0.0.1:8000/?x=1")
    with pytest.raises(PlanError, match="invalid port"):
        loopback_target("http://127.0.0.1:99999")


def test_plan_defaults_follow_rate_and_duration() -> None:
    plan = LoadPlan(rate=40, duration=3)
    assert (plan.max_requests, plan.users) == (120, 2)
    assert LoadPlan(rate=2000, duration=1).users == 80
    assert LoadPlan(rate=0.5, duration=3).max_requests == 2
    assert LoadPlan(rate=10, duration=10, max_requests=7, users=3).max_requests == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": 2001}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"duration": 0}, "duration"),
        ({"duration": 3601}, "duration"),
        ({"post_ratio": 1.5}, "post ratio"),
        ({"timeout": 0}, "timeout"),
        ({"users": 101}, "users"),
        ({"max_in_flight": 0}, "max in flight"),
        ({"rate": 2000, "duration": 3600}, "more than 1000000"),
    ],
)
def test_plans_out_of_bounds_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        LoadPlan(**changes)  # type: ignore[arg-type]


def test_post_ratio_spreads_posts_evenly() -> None:
    def posts(ratio: float, count: int = 20) -> list[int]:
        plan = LoadPlan(post_ratio=ratio)
        return [i for i in range(count) if plan.is_post(i)]

    assert posts(0.2) == [0, 5, 10, 15]
    assert posts(0.5) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert posts(0.0) == []
    assert posts(1.0) == list(range(20))
    assert len(posts(0.1, 1000)) == 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "rate (requests/s) must be more than 0"),
        (["--rate", "5000"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--duration", "-1"], "duration (s) must be more than 0"),
        (["--post-ratio", "2"], "--post-ratio"),
        (["--users", "0"], "--users"),
        (["--target", "http://10.1.2.3:8000"], "not a loopback address"),
        (["--target", "ftp://127.0.0.1"], "not an http:// or https:// URL"),
    ],
)
def test_bad_input_exits_2_with_a_message(args: list[str], message: str) -> None:
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 2, outcome.output
    assert message in " ".join(outcome.output.replace("│", " ").split())


def test_the_target_comes_from_the_environment_too() -> None:
    outcome = runner.invoke(app, [], env={"LOADGEN_TARGET": "http://203.0.113.9"})
    assert outcome.exit_code == 2
    assert "LOADGEN_TARGET" in outcome.output


def test_a_clean_run_exits_0_and_writes_the_report(fake_gateway: str, tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    args = ["--target", f"{fake_gateway}/ok", "--rate", "20", "--duration", "1.2"]
    outcome = runner.invoke(app, [*args, "--json", str(report)])
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.splitlines()
    assert lines[0].startswith("t=0s sent=20 ok=")
    assert "loadgen: 24 requests" in outcome.stdout
    assert "failed: 0" in outcome.stdout
    data = json.loads(report.read_text())
    assert (data["sent"], data["failed"], data["counts"]["ok"]) == (24, 0, 24)


def test_failed_requests_exit_1(fake_gateway: str) -> None:
    args = ["--target", f"{fake_gateway}/broken", "--rate", "20", "--duration", "0.5"]
    outcome = runner.invoke(app, [*args, "--quiet"])
    assert outcome.exit_code == 1, outcome.output
    assert "server_error=10 (503: 10)" in outcome.stdout
    assert "t=" not in outcome.stdout.splitlines()[0]


def test_no_users_no_traffic_exits_1_saying_why(fake_gateway: str) -> None:
    args = ["--target", f"{fake_gateway}/authdown", "--duration", "1", "--setup-timeout", "1"]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 1
    assert "auth is not ready" in outcome.output
    assert "503" in outcome.output
