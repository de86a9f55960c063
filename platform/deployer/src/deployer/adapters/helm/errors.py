"""Failed helm commands, classified from helm's exit and stderr: retryable or final, with a
``reason`` and advice for a human.

Errors are classified in this order:

=====================================================  =========  ===========================
helm says                                              type       ``reason``
=====================================================  =========  ===========================
the helm binary cannot be started                      final      ``no-helm``
killed by a signal / no answer before our deadline     retryable  ``killed`` / ``deadline``
"has been rolled back due to rollback-on-failure"      final      ``rolled-back``
"has been uninstalled due to rollback-on-failure"      final      ``uninstalled``
"an error occurred while rolling back/uninstalling"    final      ``rollback-failed``
"resource K/ns/name not ready", "timed out waiting"    final      ``rollout-failed``
"another operation (install/upgrade/rollback) is ..."  retryable  ``operation-in-progress``
kubeconfig missing or invalid                          final      ``kubeconfig``
"kubernetes cluster unreachable", connection refused,  retryable  ``api-unavailable``
i/o or TLS timeouts, "context deadline exceeded",
etcd/server timeouts, 429/503, optimistic-lock
conflicts ("the object has been modified")
"values don't meet the specifications of the schema"   final      ``values-schema``
template failures ("execution error at", parse)        final      ``render``
chart path or repo not found                           final      ``chart-not-found``
"release: not found", "has no N version"               final      ``release-not-found``
  (reads return None or [] for a missing release instead)
"is forbidden", "is invalid", namespace not found,     final      ``rejected``
"already exists", "has no deployed releases"
anything else                                          final      ``unknown``
=====================================================  =========  ===========================

A rollout that does not become ready is final even though helm's message ends with "context
deadline exceeded": retrying the same image gives the same result. Unknown failures are final so
that nothing retries forever; the error carries helm's stderr for a human. "Another operation is
in progress" is retryable, but when no helm of ours is running on the release it was left pending
by a killed process: :meth:`~deployer.adapters.helm.Helm.recover_pending` then unblocks it.
"""

from __future__ import annotations

import re

from deployer.reconcile.errors import StepError

STDERR_LIMIT = 4000

_ERROR_LINE = re.compile(r"^Error: ", re.MULTILINE)


class HelmError(StepError):
    """A helm command failed; ``reason`` names the kind of failure (see the module docstring)."""

    system = "helm"
    stderr: str

    def __init__(self, message: str, *, reason: str, command: str, stderr: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.command = command
        self.stderr = stderr


class HelmRetryableError(HelmError):
    """Retrying later may succeed: the API server was unreachable, slow, or the release busy."""

    @property
    def retryable(self) -> bool:
        """Always: see the class docstring."""
        return True


class HelmFinalError(HelmError):
    """Retrying the same request cannot succeed: bad values, missing chart, failed rollout."""


def trim(stderr: str) -> str:
    """Helm's stderr without surrounding blanks, cut to its last few thousand characters."""
    text = stderr.strip()
    return text if len(text) <= STDERR_LIMIT else "..." + text[-STDERR_LIMIT:]


def _helm_message(stderr: str) -> str:
    """Helm's own error (from its "Error: " line to the end), else the whole trimmed stderr."""
    found = _ERROR_LINE.search(stderr)
    return trim(stderr[found.end() :] if found else stderr)


_ROLLOUT = (" not ready. status:", "timed out waiting for the condition")
_API_UNAVAILABLE = (
    "kubernetes cluster unreachable",
    "connection refused",
    "connection reset by peer",
    "no route to host",
    "i/o timeout",
    "tls handshake timeout",
    "context deadline exceeded",
    "client rate limiter",
    "too many requests",
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
    "etcdserver: request timed out",
    "http2: client connection lost",
    "unexpected eof",
    "the object has been modified",
    "internal error occurred",
)
_RENDER = ("execution error at", "parse error", "error converting yaml to json", "yaml: line")
_MISSING_NAMESPACE = re.compile(r'namespaces "[^"]+" not found')
_KUBECONFIG = ("no such file or directory", "invalid configuration", "no configuration has been")
_REJECTED = (
    "is forbidden",
    "is invalid",
    "already exists",
    "cannot re-use a name",
    "has no deployed releases",
    "unable to find a previously successful release",
)


def classify(stderr: str) -> tuple[type[HelmError], str]:
    """The error type and reason of a failed helm command, from its stderr (module docstring)."""
    text = stderr.lower()
    if "has been rolled back due to rollback-on-failure" in text:
        return HelmFinalError, "rolled-back"
    if "has been uninstalled due to rollback-on-failure" in text:
        return HelmFinalError, "uninstalled"
    if "an error occurred while rolling back" in text or "while uninstalling the release" in text:
        return HelmFinalError, "rollback-failed"
    if any(marker in text for marker in _ROLLOUT):
        return HelmFinalError, "rollout-failed"
    if "another operation (install/upgrade/rollback) is in progress" in text:
        return HelmRetryableError, "operation-in-progress"
    if "kubernetes cluster unreachable" in text and any(m in text for m in _KUBECONFIG):
        return HelmFinalError, "kubeconfig"
    if any(marker in text for marker in _API_UNAVAILABLE):
        return HelmRetryableError, "api-unavailable"
    if "don't meet the specifications of the schema" in text:
        return HelmFinalError, "values-schema"
    if any(marker in text for marker in _RENDER):
        return HelmFinalError, "render"
    if re.search(r"repo \S+ not found|path \S+ not found|chart\.yaml file is missing", text):
        return HelmFinalError, "chart-not-found"
    if "release: not found" in text or re.search(r"release has no \d+ version", text):
        return HelmFinalError, "release-not-found"
    if any(marker in text for marker in _REJECTED) or _MISSING_NAMESPACE.search(text):
        return HelmFinalError, "rejected"
    return HelmFinalError, "unknown"


_ADVICE = {
    "rolled-back": "helm restored the last successful revision; fix the image or values "
    "(check the new pods' events and logs) and deploy again",
    "uninstalled": "this was the first install, so helm removed it again; fix the image or "
    "values (check the pods' events and logs) and deploy again",
    "rollback-failed": "the release may be left failed or pending: inspect `helm history` "
    "and recover it before deploying again",
    "rollout-failed": "the new pods did not become ready in time; the release is marked "
    "failed: fix the image or values, or roll back",
    "operation-in-progress": "another helm operation holds the release; retry when it ends, "
    "or recover the release if that operation was interrupted",
    "kubeconfig": "check the kubeconfig path and its contents",
    "api-unavailable": "the Kubernetes API did not answer; retry later",
    "values-schema": "fix the named values (see charts/README.md) and deploy again",
    "render": "the chart refused these values; fix them (see the message) and deploy again",
    "chart-not-found": "check the deployer's charts directory",
    "release-not-found": "check the release name and revision (`helm history`)",
    "rejected": "the Kubernetes API refused the change; fix what the message names",
    "unknown": "see helm's message",
}


def classified_error(command: str, stderr: str, what: str) -> HelmError:
    """The classified error of a failed command."""
    kind, reason = classify(stderr)
    message = f"{what} failed ({reason}): {_helm_message(stderr)}. What to do: {_ADVICE[reason]}."
    return kind(message, reason=reason, command=command, stderr=trim(stderr))
