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
