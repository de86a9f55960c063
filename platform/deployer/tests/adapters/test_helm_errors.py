"""Helm's messages classified as retryable or final errors, each with its reason (no helm run)."""

from __future__ import annotations

import pytest

from deployer.adapters.helm import HelmFinalError, HelmRetryableError, classify


# Messages of helm v4.3.2, as it printed them against the local control plane.
@pytest.mark.parametrize(
    ("stderr", "kind", "reason"),
    [
        (
            'level=WARN msg="upgrade failed" name=order error="resource Deployment/ns/order not '
            'ready. status: InProgress, message: Updated: 1/2\\ncontext deadline exceeded"\n'
            "Error: UPGRADE FAILED: release order failed, and has been rolled back due to "
            "rollback-on-failure being set: resource Deployment/ns/order not ready. status: "
            "InProgress, message: Updated: 1/2\ncontext deadline exceeded",
            HelmFinalError,
            "rolled-back",
        ),
        (
            "Error: release pay failed, and has been uninstalled due to rollback-on-failure being "
            "set: resource Deployment/ns/pay not ready. status: InProgress, message: Available: "
            "0/2\ncontext deadline exceeded",
            HelmFinalError,
            "uninstalled",
        ),
        (
            "Error: UPGRADE FAILED: resource Deployment/ns/order not ready. status: InProgress, "
            "message: Updated: 1/2\ncontext deadline exceeded",
            HelmFinalError,
            "rollout-failed",
        ),
        (
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
            HelmRetryableError,
            "operation-in-progress",
        ),
        (
            'Error: kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": dial tcp '
            "127.0.0.1:1: connect: connection refused",
            HelmRetryableError,
            "api-unavailable",
        ),
        (
            'Error: UPGRADE FAILED: Operation cannot be fulfilled on deployments.apps "order": '
            "the object has been modified; please apply your changes to the latest version",
            HelmRetryableError,
            "api-unavailable",
        ),
        (
            "Error: kubernetes cluster unreachable: stat /tmp/nokc.yaml: no such file or directory",
            HelmFinalError,
            "kubeconfig",
        ),
        (
            "Error: UPGRADE FAILED: values don't meet the specifications of the schema(s) in the "
            "following chart(s):\norder:\n- at '/replicaCount': minimum: got 0, want 1",
            HelmFinalError,
            "values-schema",
        ),
        (
            "Error: UPGRADE FAILED: execution error at (order/templates/deployment.yaml:1:4): "
            "lifecycle.terminationGracePeriodSeconds (3) must be at least ...",
            HelmFinalError,
            "render",
        ),
        ("Error: repo charts not found", HelmFinalError, "chart-not-found"),
        ("Error: release: not found", HelmFinalError, "release-not-found"),
        ("Error: release has no 99 version", HelmFinalError, "release-not-found"),
        (
            'Error: create: failed to create: namespaces "nonexist" not found',
            HelmFinalError,
            "rejected",
        ),
        ("Error: something new", HelmFinalError, "unknown"),
    ],
)
def test_classification_of_helm_messages(stderr: str, kind: type[Exception], reason: str) -> None:
    assert classify(stderr) == (kind, reason)
