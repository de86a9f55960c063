"""What the deployer says about the new pods of a failed rollout, from pod statuses shaped like
the ones the real node reported (OOMKilled at 48Mi, a build exiting at start, /readyz 503)."""

from typing import Any

from deploy_contract.events import DeployPhase
from deployer.reconcile.podproblems import cannot_run, describe, pod_problems
from deployer.reconcile.state import Outcome, with_pod_problems


def pod(name: str, *statuses: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T09:19:20Z"
    return {"metadata": metadata, "status": {"containerStatuses": list(statuses)}}


def oom_killed(restarts: int = 2) -> dict[str, Any]:
    return {
        "name": "order",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }


def test_an_oom_killed_container_is_named_with_its_reason_and_exit_code() -> None:
    problems = pod_problems([pod("order-7d85-6zd9k", oom_killed())])
    assert [(p.pod, p.container, p.reason, p.exit_code, p.restarts) for p in problems] == [
        ("order-7d85-6zd9k", "order", "OOMKilled", 137, 2)
    ]
    assert describe(problems) == (
        "pod order-7d85-6zd9k container order: OOMKilled (exit 137), restarted 2 times"
    )


def test_alike_problems_of_several_pods_are_counted_once() -> None:
    problems = pod_problems([pod("order-a", oom_killed()), pod("order-b", oom_killed(1))])
    assert describe(problems).endswith("restarted 2 times (and 1 more pod)")


def test_a_container_exiting_at_start_says_error_and_its_message() -> None:
    crashed = {
        "name": "order",
        "ready": False,
        "restartCount": 1,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "message": "broken build"}},
    }
    (problem,) = pod_problems([pod("order-x", crashed)])
    assert (problem.reason, problem.exit_code, problem.message) == ("Error", 1, "broken build")


def test_a_running_container_that_never_gets_ready_carries_the_probe_failure() -> None:
    running = {
        "name": "order",
        "ready": False,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": "2026-12-03T09:18:51Z"}},
    }
    events = [
        {
            "involvedObject": {"kind": "Pod", "name": "order-x"},
            "reason": "Unhealthy",
            "lastTimestamp": "2026-12-03T09:19:01Z",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        }
    ]
    (problem,) = pod_problems([pod("order-x", running)], events)
    assert problem.reason == "NotReady"
    assert problem.message == "Readiness probe failed: HTTP probe failed with statuscode: 503"


def test_ready_containers_and_terminating_pods_are_no_problem() -> None:
    ready = {"name": "order", "ready": True, "restartCount": 3, "state": {"running": {}}}
    old = pod("order-old", oom_killed(), deleting=True)
    assert pod_problems([pod("order-ok", ready), old]) == []


def test_a_failed_outcome_gains_the_problems_in_its_reason() -> None:
    problems = pod_problems([pod("order-a", oom_killed())])
    outcome = with_pod_problems(Outcome(DeployPhase.ROLLED_BACK, "helm said so", 3), problems)
    assert outcome.reason == (
        "helm said so; the new pods: pod order-a container order: OOMKilled (exit 137), "
        "restarted 2 times"
    )
    assert outcome.pod_problems == tuple(problems)


def test_only_crashes_repeated_enough_or_unpullable_images_mean_the_build_cannot_run() -> None:
    pull = {
        "name": "order",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}},
    }
    not_ready = {
        "name": "order",
        "ready": False,
        "started": True,
        "restartCount": 0,
        "state": {"running": {}},
    }
    problems = pod_problems(
        [
            pod("order-once", oom_killed(1)),
            pod("order-twice", oom_killed(2)),
            pod("order-pull", pull),
            pod("order-slow", not_ready),
        ]
    )
    assert [p.pod for p in cannot_run(problems, restarts=2)] == ["order-twice", "order-pull"]
    assert [p.pod for p in cannot_run(problems, restarts=1)] == [
        "order-once",
        "order-twice",
        "order-pull",
    ]
