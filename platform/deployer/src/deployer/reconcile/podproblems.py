"""Why the new pods of a rollout are not becoming ready, read from their status and events.

Helm only says that it timed out waiting; the pods say why: a container OOM-killed by the
kubelet, one that exits at start (CrashLoopBackOff), an image that cannot be pulled, or a
readiness probe that keeps failing. The deployer reads this while helm waits (helm's rollback
deletes the pods) and puts it in the deployment's outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deploy_contract.events import PodProblem

# Waiting reasons that mean the container will not start as it is.
STUCK_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# Waiting reasons that prove the pod cannot run this image at all (the kubelet already retried).
CANNOT_PULL = frozenset({"ImagePullBackOff", "InvalidImageName"})
# Event reasons that explain a running container that is not ready.
PROBE_EVENT_REASONS = frozenset({"Unhealthy"})
MESSAGE_LIMIT = 300


def pod_problems(
    pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]] = ()
) -> list[PodProblem]:
    """The problems of ``pods`` (Pod objects as the API returns them, camelCase): each
    container that was killed, crashed, cannot start, or runs without becoming ready (with the
    latest probe failure among ``events`` of that pod)."""
    probe_failures = _latest_probe_failures(events)
    found: list[PodProblem] = []
    for pod in pods:
        name = str(pod.get("metadata", {}).get("name", "?"))
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue  # being replaced; its state says nothing about the new build
        status = pod.get("status", {})
        statuses = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
        for container in statuses:
            problem = _container_problem(name, container, probe_failures.get(name))
            if problem is not None:
                found.append(problem)
    return found


def cannot_run(problems: Iterable[PodProblem], restarts: int) -> list[PodProblem]:
    """The problems that prove the new build cannot run, so waiting longer only delays the
    rollback: a container that crashed or was OOM-killed and restarted ``restarts`` times or
    more, or an image the kubelet cannot pull. A container that runs but is not ready is left
    to the progress deadline (it may still become ready)."""
    return [
        problem
        for problem in problems
        if problem.reason in CANNOT_PULL
        or (problem.exit_code is not None and problem.restarts >= restarts)
    ]


def _container_problem(
    pod: str, container: Mapping[str, Any], probe_failure: str | None
) -> PodProblem | None:
    name = str(container.get("name", "?"))
    if container.get("ready"):
        return None
    restarts = int(container.get("restartCount", 0))
    state = container.get("state", {})
    last = container.get("lastState", {}).get("terminated")
    terminated = state.get("terminated")
    waiting = state.get("waiting")
    ended = terminated if terminated and terminated.get("exitCode", 0) != 0 else last
    if ended is not None and (ended.get("reason") == "OOMKilled" or restarts or terminated):
        return PodProblem(
            pod=pod,
            container=name,
            reason=str(ended.get("reason") or "Error"),
            exit_code=ended.get("exitCode"),
            restarts=restarts,
            message=_short(ended.get("message") or (waiting or {}).get("message")),
        )
    if waiting and waiting.get("reason") in STUCK_WAITING:
        return PodProblem(
            pod=pod,
            container=name,
            reason=str(waiting["reason"]),
            restarts=restarts,
            message=_short(waiting.get("message")),
        )
    if state.get("running") and container.get("started"):
        return PodProblem(
            pod=pod,
            container=name,
            reason="NotReady",
            restarts=restarts,
            message=_short(probe_failure or "running, but its readiness probe does not pass"),
        )
    return None


def _latest_probe_failures(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    latest: dict[str, tuple[str, str]] = {}
    for event in events:
        involved = event.get("involvedObject", {})
        if involved.get("kind") != "Pod" or event.get("reason") not in PROBE_EVENT_REASONS:
            continue
        message = str(event.get("message", ""))
        if not message.startswith("Readiness probe failed"):
            continue
        when = str(event.get("lastTimestamp") or event.get("eventTime") or "")
        pod = str(involved.get("name", ""))
        if pod not in latest or when >= latest[pod][0]:
            latest[pod] = (when, message)
    return {pod: message for pod, (_, message) in latest.items()}


def _short(message: object) -> str | None:
    if not message:
        return None
    text = " ".join(str(message).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def describe(problems: Iterable[PodProblem]) -> str:
    """One line for an outcome's reason, e.g. ``pod order-7f9c-x2k container order:
    OOMKilled (exit 137), restarted 2 times``; problems alike are counted once per reason."""
    parts: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for problem in problems:
        key = (problem.container, problem.reason)
        if key in seen:
            seen[key] += 1
            continue
        seen[key] = 1
        parts.append(problem.summary())
    counted = [
        f"{part} (and {seen[key] - 1} more pod{'s' if seen[key] > 2 else ''})"
        if seen[key] > 1
        else part
        for part, key in zip(parts, seen, strict=True)
    ]
    return "; ".join(counted)
