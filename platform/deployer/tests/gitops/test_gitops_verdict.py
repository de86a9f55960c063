"""Reading Flux's status: when a HelmRelease is done with a generation, and how it ended."""

from __future__ import annotations

from typing import Any

from deployer.gitops.verdict import failure_of, handled, release_verdict, revision_sha


def helm_release(observed: int, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"generation": 3},
        "status": {"observedGeneration": observed, "conditions": list(conditions)},
    }


def cond(
    kind: str, status: str, reason: str = "", message: str = "", gen: int = 3
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
    }


def test_an_older_generation_or_a_reconcile_in_progress_is_still_working() -> None:
    assert release_verdict(helm_release(2, cond("Ready", "True", gen=2)), 3).state == "working"
    ready_old = helm_release(3, cond("Ready", "True", gen=2))
    assert release_verdict(ready_old, 3).state == "working"
    progressing = helm_release(
        3, cond("Ready", "Unknown", "Progressing"), cond("Reconciling", "True", "Progressing")
    )
    assert release_verdict(progressing, 3).state == "working"


def test_ready_is_success_and_a_failure_says_whether_flux_rolled_back() -> None:
    done = release_verdict(helm_release(3, cond("Ready", "True", "UpgradeSucceeded", "ok")), 3)
    assert (done.state, done.reason) == ("succeeded", "UpgradeSucceeded")
    failed = release_verdict(
        helm_release(
            3,
            cond("Ready", "False", "RollbackSucceeded", "Helm rollback to previous release"),
            cond("Released", "False", "UpgradeFailed", "Helm upgrade failed: timeout"),
            cond("Remediated", "True", "RollbackSucceeded", "rolled back"),
        ),
        3,
    )
    assert (failed.state, failed.remediated) == ("failed", True)
    assert failed.message == "Helm upgrade failed: timeout"
    stuck = release_verdict(helm_release(3, cond("Ready", "False", "UpgradeFailed", "boom")), 3)
    assert (stuck.state, stuck.remediated, stuck.message) == ("failed", False, "boom")


def test_revisions_requests_and_failures_of_sources() -> None:
    assert revision_sha("main@sha1:0a1b2c") == "0a1b2c"
    assert revision_sha("0a1b2c") == "0a1b2c"
    assert revision_sha(None) is None
    source = {
        "status": {
            "lastHandledReconcileAt": "t1",
            "conditions": [cond("Ready", "False", "GitOperationFailed", "authentication required")],
        }
    }
    assert handled(source, "t1")
    assert not handled(source, "t2")
    assert failure_of(source) == "GitOperationFailed: authentication required"
    assert failure_of({"status": {"conditions": [cond("Ready", "True")]}}) is None


def test_a_generation_failing_before_any_release_ends_after_repeated_failures() -> None:
    status: dict[str, Any] = {
        "observedGeneration": 3,
        "lastAttemptedGeneration": 4,
        "failures": 1,
        "conditions": [cond("Ready", "False", "UpgradeFailed", "values don't meet", gen=4)],
    }
    refused = {"metadata": {"generation": 4}, "status": status}
    assert release_verdict(refused, 4).state == "working"  # once may be a timed-out upgrade
    status["failures"] = 3
    verdict = release_verdict(refused, 4)
    assert (verdict.state, verdict.remediated) == ("failed", False)
    assert "values don't meet" in verdict.message
    status["upgradeFailures"] = 1  # a release was made: wait for its end
    assert release_verdict(refused, 4).state == "working"


def test_a_rollback_of_an_earlier_generation_is_not_this_ones() -> None:
    failed = release_verdict(
        helm_release(
            3,
            cond("Ready", "False", "InstallFailed", "boom"),
            cond("Remediated", "True", "RollbackSucceeded", "old", gen=2),
        ),
        3,
    )
    assert (failed.state, failed.remediated) == ("failed", False)
