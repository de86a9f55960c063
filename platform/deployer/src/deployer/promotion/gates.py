"""The gates of a promotion, decided in order from what is known now (pure: no clock, no I/O).

hold (automatic promotions only) -> verified upstream -> soak -> metric analysis -> freeze
calendar -> approval. The first gate that does not pass decides: the promotion waits there (or
fails, when the gate can never pass); the gates after it are not reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deploy_contract.promotions import Gate, GateResult, GateVerdict
from deployer.promotion.environments import PromotionRules
from deployer.promotion.model import Hold, Promotion


@dataclass(frozen=True)
class Upstream:
    """The release in the upstream environment: the deployment that verified it there and when
    (None: never), and what serves there now."""

    environment: str
    deployment_id: str | None
    verified_at: datetime | None
    serving_image: str | None

    @classmethod
    def of(cls, promotion: Promotion, serving_image: str | None) -> Upstream:
        """The upstream of ``promotion``, serving ``serving_image`` now."""
        return cls(
            promotion.source, promotion.upstream_deployment_id, promotion.verified_at,
            serving_image,
        )  # fmt: skip


@dataclass(frozen=True)
class Facts:
    """What the gates are decided on; ``analysis``: a measurement made for this decision."""

    upstream: Upstream
    hold: Hold | None
    analysis: GateResult | None
    now: datetime


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


class _Decider:
    def __init__(self, rules: PromotionRules, promotion: Promotion, facts: Facts) -> None:
        self.rules = rules
        self.promotion = promotion
        self.facts = facts

    def result(self, gate: Gate, verdict: GateVerdict, reason: str, **evidence: Any) -> GateResult:
        return GateResult(
            gate=gate, verdict=verdict, reason=reason, evidence=evidence, decided_at=self.facts.now
        )

    def hold(self) -> GateResult:
        hold = self.facts.hold
        if hold is None:
            return self.result(Gate.HOLD, GateVerdict.PASSED, "no hold on the environment")
        if not self.promotion.automatic:
            return self.result(
                Gate.HOLD, GateVerdict.PASSED,
                f"held ({hold.reason}), but a person asked for this promotion",
                hold=hold.model_dump(mode="json"),
            )  # fmt: skip
        return self.result(
            Gate.HOLD, GateVerdict.WAITING,
            f"automatic promotion into {hold.environment} is held since {_at(hold.since)}: "
            f"{hold.reason}; a person clears it (deployer holds clear {hold.environment} "
            f"{hold.service}) or promotes by hand",
            hold=hold.model_dump(mode="json"),
        )  # fmt: skip

    def verified(self) -> GateResult:
        up, release = self.facts.upstream, self.promotion.release
        evidence = {"deployment_id": up.deployment_id, "environment": up.environment}
        if up.verified_at is None:
            return self.result(
                Gate.VERIFIED, GateVerdict.FAILED,
                f"{release.id} was never verified in {up.environment}", **evidence,
            )  # fmt: skip
        if up.serving_image != release.image:
            return self.result(
                Gate.VERIFIED, GateVerdict.FAILED,
                f"{release.id} no longer serves in {up.environment} (it serves "
                f"{up.serving_image or 'nothing'}): a release that was replaced or rolled back "
                "upstream is not promoted",
                **evidence,
            )  # fmt: skip
        return self.result(
            Gate.VERIFIED, GateVerdict.PASSED,
            f"succeeded in {up.environment} at {_at(up.verified_at)} and serves there",
            verified_at=up.verified_at.isoformat(), **evidence,
        )  # fmt: skip

    def soak(self) -> GateResult:
        verified_at = self.facts.upstream.verified_at
        assert verified_at is not None  # the verified gate passed
        soak = self.rules.soak_seconds
        ends = verified_at + timedelta(seconds=soak)
        evidence = {"soak_seconds": soak, "since": verified_at.isoformat()}
        if self.facts.now < ends:
            return self.result(
                Gate.SOAK, GateVerdict.WAITING,
                f"soaking in {self.facts.upstream.environment} until {_at(ends)} ({soak:g} s)",
                until=ends.isoformat(), **evidence,
            )  # fmt: skip
        return self.result(
            Gate.SOAK, GateVerdict.PASSED,
            f"soaked {soak:g} s in {self.facts.upstream.environment}", **evidence,
        )  # fmt: skip

    def analysis(self) -> GateResult:
        if self.rules.analysis is None:
            return self.result(Gate.ANALYSIS, GateVerdict.PASSED, "no metric analysis configured")
        known = self.promotion.analysis or self.facts.analysis
        if known is None:
            return self.result(
                Gate.ANALYSIS, GateVerdict.WAITING,
                f"measuring {self.facts.upstream.environment} over its soak",
            )  # fmt: skip
        return known

    def freeze(self) -> GateResult:
        frozen = self.rules.calendar.freeze_at(self.facts.now)
        if frozen is None:
            return self.result(Gate.FREEZE, GateVerdict.PASSED, "no freeze in effect")
        evidence = {"window": frozen.window, "until": frozen.until.isoformat()}
        approval = self.promotion.approval
        if approval is not None and approval.override_freeze:
            return self.result(
                Gate.FREEZE, GateVerdict.PASSED,
                f"{frozen.describe()}; overridden by {approval.by}: {approval.reason}",
                overridden_by=approval.by, override_reason=approval.reason, **evidence,
            )  # fmt: skip
        return self.result(
            Gate.FREEZE, GateVerdict.WAITING,
            f"{frozen.describe()}; an approval that overrides the freeze, with a reason, lets "
            "it through",
            **evidence,
        )  # fmt: skip

    def approval(self) -> GateResult:
        approval = self.promotion.approval
        if approval is not None:
            said = f": {approval.reason}" if approval.reason else ""
            return self.result(
                Gate.APPROVAL, GateVerdict.PASSED, f"approved by {approval.by}{said}",
                by=approval.by, at=approval.at.isoformat(),
            )  # fmt: skip
        if not self.rules.approval:
            return self.result(Gate.APPROVAL, GateVerdict.PASSED, "no approval required")
        return self.result(
            Gate.APPROVAL, GateVerdict.WAITING,
            f"waiting for a person's approval (deployer promotions approve {self.promotion.id})",
        )  # fmt: skip


def decide_gates(rules: PromotionRules, promotion: Promotion, facts: Facts) -> list[GateResult]:
    """Each gate's result, in order; after the first that does not pass, ``not_reached``."""
    decider = _Decider(rules, promotion, facts)
    steps = [
        decider.hold, decider.verified, decider.soak, decider.analysis, decider.freeze,
        decider.approval,
    ]  # fmt: skip
    results: list[GateResult] = []
    blocked: Gate | None = None
    for step, gate in zip(steps, Gate, strict=True):
        if blocked is not None:
            results.append(
                decider.result(gate, GateVerdict.NOT_REACHED, f"waits for the {blocked} gate")
            )
            continue
        result = step()
        results.append(result)
        if result.verdict is not GateVerdict.PASSED:
            blocked = gate
    return results


def blocking(results: list[GateResult]) -> GateResult | None:
    """The first gate that did not pass (None: every gate passed)."""
    return next((r for r in results if r.verdict is not GateVerdict.PASSED), None)


def wants_measurement(
    rules: PromotionRules, promotion: Promotion, results: list[GateResult]
) -> bool:
    """Whether the analysis gate is the one waiting, for a measurement not yet made."""
    first = blocking(results)
    return (
        first is not None
        and first.gate is Gate.ANALYSIS
        and first.verdict is GateVerdict.WAITING
        and rules.analysis is not None
        and promotion.analysis is None
    )
