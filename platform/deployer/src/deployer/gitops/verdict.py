"""What the status of Flux's objects says (pure: dicts in, answers out).

Flux's objects follow Kubernetes' status conventions: ``status.observedGeneration`` is the
generation the controller finished with, conditions carry their own ``observedGeneration``, and
``Ready`` is ``Unknown`` (with ``Reconciling`` true) while the controller works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Verdict:
    """Where a HelmRelease is with one generation: still working, succeeded, or failed (and
    whether Flux rolled it back)."""

    state: Literal["working", "succeeded", "failed"]
    message: str = ""
    reason: str = ""
    remediated: bool = False


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """The condition of type ``kind`` (None: the object has none)."""
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return None


def revision_sha(revision: str | None) -> str | None:
    """The commit of a Flux revision (``main@sha1:<sha>``, or a bare SHA)."""
    if not revision:
        return None
    return revision.rsplit(":", 1)[-1] if "@" in revision or ":" in revision else revision


def handled(obj: dict[str, Any] | None, requested_at: str) -> bool:
    """Whether the controller has handled the reconcile asked for at ``requested_at``."""
    status = (obj or {}).get("status") or {}
    return bool(status.get("lastHandledReconcileAt") == requested_at)


def failure_of(obj: dict[str, Any] | None) -> str | None:
    """The Ready condition's message when it is False (None: not failed)."""
    ready = condition(obj, "Ready")
    if ready is not None and ready.get("status") == "False":
        return f"{ready.get('reason', '')}: {ready.get('message', '')}".strip(": ")
    return None


def release_verdict(obj: dict[str, Any], generation: int) -> Verdict:
    """The outcome of HelmRelease ``obj`` for its ``generation``."""
    status = obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < generation:
        return _before_any_release(obj, generation)
    ready = condition(obj, "Ready")
    reconciling = condition(obj, "Reconciling")
    if ready is None or int(ready.get("observedGeneration") or 0) < generation:
        return Verdict("working")
    if reconciling is not None and reconciling.get("status") == "True":
        return Verdict("working")
    message, reason = str(ready.get("message") or ""), str(ready.get("reason") or "")
    if ready.get("status") == "True":
        return Verdict("succeeded", message, reason)
    if ready.get("status") == "False":
        remediated = condition(obj, "Remediated") or {}
        rolled_back = remediated.get("status") == "True" and (
            int(remediated.get("observedGeneration") or 0) >= generation
        )
        released = condition(obj, "Released")
        if released is not None and released.get("status") == "False":
            message = str(released.get("message") or message)
        return Verdict("failed", message, reason, remediated=rolled_back)
    return Verdict("working")


def _before_any_release(obj: dict[str, Any], generation: int) -> Verdict:
    """A generation helm-controller keeps failing before Helm makes a release (values the chart
    refuses, a chart that does not render): it retries for ever and never finishes the
    generation, so repeated failures of this generation are its end."""
    status = obj.get("status") or {}
    released = int(status.get("installFailures") or 0) + int(status.get("upgradeFailures") or 0)
    failing = (
        int(status.get("lastAttemptedGeneration") or 0) == generation
        and int(status.get("failures") or 0) >= 2
        and released == 0
    )
    message = failure_of(obj)
    if failing and message is not None:
        return Verdict("failed", message, "ReconciliationFailed")
    return Verdict("working")
