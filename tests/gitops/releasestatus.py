"""What a watcher reads in a HelmRelease's status: the outcome of one generation, a summary of
the status, and the sequence of changes a watch saw."""

from __future__ import annotations

from typing import Any

from tests.gitops.fluxobjects import Object, condition, ready

# What became of one generation of a HelmRelease (outcome()).
IN_PROGRESS = "in progress"
SUCCEEDED = "succeeded"
ROLLED_BACK = "failed, rolled back"
FAILED = "failed, not remediated"
RETRYING = "failing before any release, retried"


def outcome(release: Object, generation: int) -> str:
    """What helm-controller made of ``generation`` of the HelmRelease, as its status tells:

    - finished: status.observedGeneration is ``generation`` (helm-controller writes it last,
      after the conditions and the history); then Ready True is SUCCEEDED, Remediated True for
      that generation is ROLLED_BACK (the failed upgrade was rolled back), else FAILED (e.g. an
      install that timed out, with no install retries: the release is left failed, Stalled);
    - RETRYING: the attempt at ``generation`` failed before helm made a release (values the
      chart refuses, a template error): failures counts the attempts, but neither
      installFailures nor upgradeFailures; it never finishes (back-off, no Stalled);
    - IN_PROGRESS otherwise (the conditions may still describe the previous generation).
    """
    status = release.get("status", {})
    if status.get("observedGeneration") == generation:
        if ready(release) == "True":
            return SUCCEEDED
        remediated = condition(release, "Remediated") or {}
        if (
            remediated.get("status") == "True"
            and remediated.get("observedGeneration") == generation
        ):
            return ROLLED_BACK
        return FAILED
    attempted = status.get("lastAttemptedGeneration") == generation
    release_failures = status.get("installFailures") or status.get("upgradeFailures")
    if attempted and status.get("failures") and not release_failures:
        return RETRYING
    return IN_PROGRESS


def status_summary(release: Object) -> dict[str, Any]:
    """The parts of a HelmRelease's status a watcher reads."""
    status = release.get("status", {})
    keys = (
        "observedGeneration", "lastAttemptedGeneration", "lastAttemptedRevision",
        "lastAttemptedRevisionDigest", "lastAttemptedConfigDigest", "lastAttemptedReleaseAction",
        "lastHandledReconcileAt", "failures", "installFailures", "upgradeFailures",
        "storageNamespace", "helmChart",
    )  # fmt: skip
    return {
        "generation": release["metadata"]["generation"],
        **{key: status[key] for key in keys if key in status},
        "conditions": status.get("conditions"),
        "history": status.get("history"),
    }


def _brief(found: Object) -> str:
    brief = f"{found['status']} {found.get('reason')} (gen {found.get('observedGeneration')})"
    return f"{brief}: {found.get('message', '')[:70]}"


def timeline(versions: list[Object]) -> list[dict[str, Any]]:
    """What a watcher saw of a HelmRelease, one entry per change of the fields it reads."""
    seen: list[dict[str, Any]] = []
    for release in versions:
        status = release.get("status", {})
        entry = {
            "generation": release["metadata"].get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "lastAttemptedGeneration": status.get("lastAttemptedGeneration"),
            "failures": status.get("failures"),
            "upgradeFailures": status.get("upgradeFailures"),
            **{
                kind: _brief(found)
                for kind in ("Ready", "Reconciling", "Stalled", "Released", "Remediated")
                if (found := condition(release, kind)) is not None
            },
            "history[0]": [
                (status.get("history") or [{}])[0].get(key)
                for key in ("version", "action", "status")
            ],
        }
        if not seen or seen[-1] != entry:
            seen.append(entry)
    return seen
