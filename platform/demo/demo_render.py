"""How the demo prints: chapters, status lines, the commands CI runs, and the tables of
releases, plans and ReplicaSets."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from demo_common import SERVICES
from demo_replicasets import ReplicaSet, rolled_services, serving
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from deploy_contract.events import CanaryState, CanaryStatus, DeployEventData, DeployPhase
from deployer.plan import Plan


class Narrator:
    """The demo's voice on a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def chapter(self, number: int, title: str) -> None:
        """A chapter heading."""
        self.console.print()
        self.console.rule(f"[bold cyan]{number}. {escape(title)}", align="left", style="cyan")

    def ok(self, what: str, detail: str, seconds: float | None = None) -> None:
        """A one-line status (``detail`` may hold markup)."""
        took = f" [dim]({seconds:.1f} s)[/]" if seconds is not None else ""
        self.console.print(f"  [green]✓[/] [bold]{escape(what):<9}[/] {detail}{took}")

    def say(self, text: str) -> None:
        """A line of narration (markup allowed)."""
        self.console.print(f"  {text}")

    def shell(self, command: str, outcome: str) -> None:
        """A command CI runs, and what it printed."""
        self.console.print(f"  [dim]$[/] [bold]{escape(command)}[/]  [dim]→[/] {outcome}")

    def http_line(self, method: str, path: str, status: int, detail: str) -> None:
        """One HTTP exchange."""
        self.console.print(
            f"  [bold]{method:<4}[/] {escape(path):<26} [green]{status}[/]  {detail}"
        )


def short(identifier: str) -> str:
    """The first 8 characters of an id, for tables."""
    return identifier[:8]


def progress_text(event: DeployEventData, old_sets: set[str]) -> Text:
    """``1/2 updated, 2 ready, 2 available │ order-5d8f 2, new order-7b9c 0``: the
    Deployment's counts, then the ready pods of each ReplicaSet."""
    p = event.progress
    text = Text()
    if p is None:
        return text
    text.append(f"{p.updated}/{p.desired} updated, {p.ready} ready, {p.available} available")
    ordered = sorted(p.replica_sets.items(), key=lambda kv: kv[0] not in old_sets)
    for index, (name, ready) in enumerate(ordered):
        text.append(" │ " if index == 0 else ", ", style="dim")
        new = name not in old_sets
        if new:
            text.append("new ", style="dim")
        text.append(f"{name} {ready}", style="bold" if new else "")
    return text


def canary_text(status: CanaryStatus) -> Text:
    """``analysing weight 50%: stable 1 · canary 1 pods (50% of requests)``, and the last
    measurement: ``fail: canary 80.0% ok, p99 12 ms (96 requests) · stable 100.0%, p99 9 ms``
    with each threshold it broke."""
    text = Text(f"{status.state.value} ", style="bold")
    text.append(
        f"weight {status.weight}%: stable {status.stable_replicas} · canary "
        f"{status.canary_replicas} pods ({round(100 * status.share)}% of requests)"
    )
    if status.measurements and status.state in (CanaryState.ANALYSING, CanaryState.ABORTING):
        last = status.measurements[-1]
        canary, stable = last.canary, last.stable
        text.append(
            f"\n{last.verdict}: canary {_rate(canary.success_rate)} ok, p99 "
            f"{_ms(canary.p99_seconds)} ({canary.requests:.0f} requests) · stable "
            f"{_rate(stable.success_rate)}, p99 {_ms(stable.p99_seconds)}",
            style="red" if last.verdict == "fail" else "dim",
        )
    if status.reason and status.state is not CanaryState.ANALYSING:
        text.append("\n" + status.reason, style="dim")
    return text


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1000 * seconds:.0f} ms"


PHASE_STYLES = {
    DeployPhase.QUEUED: "dim",
    DeployPhase.STARTED: "cyan",
    DeployPhase.PROGRESSING: "yellow",
    DeployPhase.CANARY: "yellow",
    DeployPhase.SUCCEEDED: "bold green",
    DeployPhase.FAILED: "bold red",
    DeployPhase.ROLLED_BACK: "bold magenta",
    DeployPhase.REJECTED: "bold red",
    DeployPhase.SUPERSEDED: "red",
}


@dataclass
class Lane:
    """One service's row in the live table of a release."""

    service: str
    tag: str
    deployment_id: str
    phase: str = "published"
    replicas: str = ""
    revision: str = ""
    started: float = field(default_factory=time.monotonic)
    took: float | None = None


def lanes_table(lanes: Mapping[str, Lane]) -> Padding:
    """The table of a release: one row per service lane."""
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("service")
    for column in ("image tag", "deployment", "phase", "ReplicaSet / replicas", "revision"):
        table.add_column(column, no_wrap=True)
    table.add_column("took", justify="right")
    for lane in lanes.values():
        style = next((s for p, s in PHASE_STYLES.items() if p.value == lane.phase), "dim")
        table.add_row(
            lane.service,
            lane.tag,
            short(lane.deployment_id),
            Text(lane.phase, style=style),
            lane.replicas,
            lane.revision,
            f"{lane.took:.1f} s" if lane.took is not None else "…",
        )
    return Padding(table, (0, 0, 0, 2))


def plan_table(plan: Plan) -> Group:
    """The deployer's plan: each workload's change and the fields that make it."""
    parts: list[Text | Table] = []
    for workload in plan.workloads:
        why = {
            "rollout": "its pod template changes, so its pods roll",
            "scale-only": "only its replica count changes: no pod rolls",
            "no-op": "nothing changes",
        }.get(workload.change, workload.change)
        parts.append(
            Text.assemble(
                ("plan: ", "dim"),
                (f"{workload.kind}/{workload.name} ", "bold"),
                (workload.change, "bold cyan"),
                f" ({why})",
            )
        )
        fields = Table(box=None, padding=(0, 3, 0, 2), show_header=False)
        fields.add_column(no_wrap=True)
        fields.add_column(no_wrap=True)
        for change in workload.template_changes or workload.spec_changes:
            fields.add_row(
                Text(change.path),
                Text(f"{_tag_only(change.before)} → {_tag_only(change.after)}"),
            )
        parts.append(fields)
    for resource in plan.resources:
        parts.append(
            Text(
                f"plan: {resource.kind}/{resource.name} {resource.change} "
                f"({', '.join(resource.fields)})"
            )
        )
    parts += [Text(f"warning: {warning}", style="yellow") for warning in plan.warnings]
    return Group(*parts)


def titled_table(title: str) -> Table:
    """An empty table in the demo's style, its bold title on the left."""
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
    )


def before_after_table(
    before: Mapping[str, Sequence[ReplicaSet]], after: Mapping[str, Sequence[ReplicaSet]]
) -> Table:
    """The serving ReplicaSet of every service, before and after."""
    table = titled_table(
        " The ReplicaSet serving each service, before → after (kubectl get replicasets)"
    )
    for column in ("service", "ReplicaSet", "rev.", "uid", "ready", ""):
        table.add_column(column, no_wrap=True)
    rolled = rolled_services(before, after)
    for service in SERVICES:
        old, new = serving(before.get(service, ())), serving(after.get(service, ()))
        if old is None or new is None:
            table.add_row(service, "-", "", "", "", Text("missing", style="red"))
            continue
        if rolled[service]:
            verdict = Text("rolled", style="bold yellow")
            name = f"{old.name} → {new.name}"
            revision = f"{old.revision} → {new.revision}"
            uid = f"{short(old.uid)} → {short(new.uid)}"
        else:
            verdict = Text("unchanged", style="green")
            name, revision, uid = f"{new.name} (same)", str(new.revision), short(new.uid)
        table.add_row(service, name, revision, uid, f"{new.ready}/{new.desired}", verdict)
    return table


def order_sets_table(sets: Sequence[ReplicaSet], previous: ReplicaSet | None) -> Table:
    """Every ReplicaSet of order after the rollback."""
    table = titled_table(" Every ReplicaSet of order after the rollback")
    for column in ("ReplicaSet", "image tag", "revision", "ready", ""):
        table.add_column(column, no_wrap=True)
    for rs in sets:
        if previous is not None and rs.uid == previous.uid:
            note = Text("serving: same uid as before", style="bold green")
        elif rs.tag.startswith("1.2.0-"):
            note = Text("broken: scaled to 0", style="red")
        else:
            note = Text("older release", style="dim")
        table.add_row(rs.name, rs.tag, str(rs.revision), f"{rs.ready}/{rs.desired}", note)
    return table


def event_row(stamp: Text, label: Text, detail: Text | Table) -> Table:
    """One deploy event: time since publish, phase, and a detail that wraps in its column."""
    row = Table.grid(padding=(0, 1))
    row.add_column(width=1)
    row.add_column(width=6, justify="right")
    row.add_column(width=11)
    row.add_column(ratio=1)
    row.add_row("", stamp, label, detail)
    return row


def _tag_only(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value.rpartition(":")[2] if "/" in value else value


def make_console(no_color: bool) -> Console:
    """A console that reads well in a terminal and in a log (wider, no colour)."""
    console = Console(no_color=no_color, highlight=False)
    if not console.is_terminal:
        console = Console(no_color=no_color, highlight=False, width=100)
    return console
