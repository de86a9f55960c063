"""Rules that hold whatever the deploy policy allows: a deployment's values may reference only
the release's own Secrets, claims and ServiceAccount, and cannot change its security context,
NetworkPolicy, probes, resource names or selector labels. Those belong in the environment's
values file, which people review; a pipeline event is not the place to change them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from deployer.intake.valuepaths import ROOT, ValuePath, leaves, lookup, shown, walk

# Top-level values a deployment cannot change, and what they protect.
PROTECTED = {
    "securityContext": "the pods' security context",
    "networkPolicy": "the NetworkPolicy",
    "probes": "the probes",
    "nameOverride": "the release's resource names",
    "fullnameOverride": "the release's resource names",
    "canary": "the canary's split (the deployer sets it while a canary runs)",
}
SELECTOR_LABEL_PREFIX = "app.kubernetes.io/"


@dataclass(frozen=True)
class Ownership:
    """Which names belong to ``service``: its own name and ``<service>-*``, unless a longer
    service name claims them (``order-history-db`` is order-history's, not order's)."""

    service: str
    services: frozenset[str]
    shared: frozenset[str]

    def owns(self, name: str) -> bool:
        """True when ``name`` is the service's own (or a shared Secret)."""
        candidates = self.services | {self.service}
        owners = [s for s in candidates if name == s or name.startswith(s + "-")]
        return bool(owners) and max(owners, key=len) == self.service

    def described(self) -> str:
        """How a reason says what is allowed."""
        shared = f"; shared: {', '.join(sorted(self.shared))}" if self.shared else ""
        return f"{self.service} or {self.service}-*{shared}"


def guardrail_violations(
    service: str,
    values: dict[str, Any],
    base: dict[str, Any],
    services: Iterable[str],
    shared_secrets: Iterable[str] = (),
) -> Iterator[str]:
    """Each way ``values`` (a deployment's) break the rules above; ``base`` is what the release
    gets without them (the chart's defaults and the environment's values file)."""
    secrets = Ownership(service, frozenset(services), frozenset(shared_secrets))
    names = Ownership(service, frozenset(services), frozenset())
    for path, value in walk(values):
        if not isinstance(value, str) or not value:
            continue
        if _is_secret_reference(path) and value not in secrets.shared and not secrets.owns(value):
            yield (
                f"values.{path}: {value!r} is not a Secret of {service}: a release may "
                f"reference only its own Secrets ({secrets.described()})"
            )
        if path[-1:] == ("existingClaim",) and not names.owns(value):
            yield (
                f"values.{path}: {value!r} is not a PersistentVolumeClaim of {service}: a "
                f"release may mount only its own claims ({names.described()})"
            )
    account = lookup(values, ValuePath(("serviceAccount", "name")))
    if isinstance(account, str) and account and not names.owns(account):
        yield (
            f"values.serviceAccount.name: {account!r} is not a ServiceAccount of {service}: a "
            f"release runs only under its own ({names.described()})"
        )
    for key, what in PROTECTED.items():
        if values.get(key, {}) == {}:  # absent, or an empty mapping (merges to no change)
            continue
        for path, value in leaves(values[key], ROOT.child(key)):
            before = lookup(base, path)
            if value != before:
                yield (
                    f"values.{path}: {shown(before)} -> {shown(value)}: a deployment cannot "
                    f"change {what}; change it in the environment's values file"
                )
    labels = values.get("podLabels")
    for label in labels if isinstance(labels, dict) else ():
        if str(label).startswith(SELECTOR_LABEL_PREFIX):
            yield (
                f"values.podLabels.{label}: a deployment cannot set {SELECTOR_LABEL_PREFIX}* "
                "labels (Services and NetworkPolicies select pods by them)"
            )


def _is_secret_reference(path: ValuePath) -> bool:
    if path[-1:] == ("existingSecret",):
        return True
    # imagePullSecrets: [{name: ...}]
    return len(path) == 3 and path[0] == "imagePullSecrets" and path[2] == "name"
