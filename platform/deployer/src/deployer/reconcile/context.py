"""What a pass of the reconcile loop works with: the parts (built once, at start) and the pass
itself (built once per pass: the deployment, the release as observed, the plan)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.canary.registry import Canaries
from deployer.intake.checks import Intake
from deployer.queue.approvals import Approvals
from deployer.reconcile.decide import Planned
from deployer.reconcile.observe import ReleaseObserver
from deployer.reconcile.ports import Ports
from deployer.reconcile.state import Observation, Outcome
from deployer.records import DeploymentRecord
from deployer.report.events import Reporter
from deployer.report.outcomes import Outcomes
from deployer.settings import DeployerSettings
from deployer.targets import Target


@dataclass
class Crew:
    """The parts the acts use: ports, settings, each environment's intake, reporting, the queue's
    views."""

    settings: DeployerSettings
    charts: dict[str, Path]
    ports: Ports
    observer: ReleaseObserver
    intakes: Mapping[str, Intake]
    reporter: Reporter
    outcomes: Outcomes
    approvals: Approvals
    canaries: Canaries
    queued: Callable[[Target], DeploymentRecord | None]


@dataclass
class Pass:
    """One pass over one deployment: what was observed and, once made, the plan."""

    record: DeploymentRecord
    observed: Observation
    planned: Planned | None = None
    values: dict[str, Any] = field(default_factory=dict)
    rendered: str = ""

    @property
    def target(self) -> Target:
        """The release the pass works on."""
        return self.record.target

    def with_plan(self, note: str = "") -> DeploymentRecord:
        """The deployment carrying the pass's plan and its summary (``note`` leads it)."""
        assert self.planned is not None, "the pass made no plan"
        plan = self.planned.plan
        return self.record.model_copy(
            update={"plan": plan.model_dump(mode="json"), "plan_summary": note + plan.summary()}
        )


@dataclass(frozen=True)
class Ending:
    """How a pass ended: the record as it is now and its outcome (None: it waits for a person);
    ``applied``: the release as this pass left it, when it applied it; ``changed``: whether the
    release may have changed (what was known of it is forgotten then)."""

    record: DeploymentRecord
    outcome: Outcome | None
    applied: Observation | None = None
    changed: bool = True
