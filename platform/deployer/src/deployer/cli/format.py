"""Readable text for the ``deployer`` CLI: pure functions from the API's JSON bodies to tables.

Plain fixed-width columns, no colour and no terminal queries, so the same text reads well on a
terminal, in a pipe and in CI logs. ``--output json`` bypasses this module (the API body as is).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

NONE = "-"
REASON_WIDTH = 60
FIELDS_SHOWN = 3
_DURATION = TypeAdapter(timedelta)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> str:
    """Left-aligned columns two spaces apart under ``headers``; the last column is not padded
    (so no line ends in spaces). Cells are single-line (line breaks shown as ``\\n``)."""
    lines = [[_cell(c) for c in headers], *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    return "\n".join(
        indent + "  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


def shorten(text: str, width: int = REASON_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with ``...`` when longer."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def moment(value: str | None) -> str:
    """An API timestamp (ISO 8601) as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` when absent."""
    at = _parsed(value)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else NONE


def duration(start: str | None, end: str | None) -> str:
    """The time from ``start`` to ``end`` (ISO 8601) as ``4s``, ``2m05s`` or ``1h02m``; ``-``
    when either is absent."""
    begun, ended = _parsed(start), _parsed(end)
    if begun is None or ended is None:
        return NONE
    return span((ended - begun).total_seconds())


def span(seconds: float | None) -> str:
    """A number of seconds as ``4s``, ``2m05s``, ``1h02m`` or ``2d03h``; ``-`` when absent."""
    if seconds is None:
        return NONE
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def render_plan(result: Mapping[str, Any]) -> str:
    """The body of ``POST /api/plan`` (``{"summary", "plan"}``, the plan as
    :class:`deployer.plan.Plan` dumps it): the summary, one block per workload (its change and
    each changed field as ``before -> after``), the other resources that change, the notices a
    policy may want approved, and the warnings."""
    plan: Mapping[str, Any] = result.get("plan") or {}
    parts = [f"{result.get('summary', plan.get('service', ''))}\naction: {plan.get('action')}"]
    parts += [_workload_block(w) for w in plan.get("workloads", [])]
    resources = plan.get("resources", [])
    if resources:
        rows = [
            (f"{r['kind']}/{r['name']}", r["change"], _listed(r.get("fields", [])))
            for r in resources
        ]
        parts.append("other resources\n" + table(("RESOURCE", "CHANGE", "FIELDS"), rows, "  "))
    notices = plan.get("notices", [])
    if notices:
        rows = [(n["kind"], n["workload"], n["detail"]) for n in notices]
        parts.append(
            "needs attention (the policy may ask for approval)\n"
            + table(("NOTICE", "WORKLOAD", "DETAIL"), rows, "  ")
        )
    warnings = plan.get("warnings", [])
    parts.append(
        f"warnings ({len(warnings)})\n" + "\n".join(f"  ! {_cell(w)}" for w in warnings)
        if warnings
        else "warnings: none"
    )
    return "\n\n".join(parts)


def render_status(views: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/services`` (:class:`deployer.report.views.ServiceView` each): one
    row per service and environment with its release, revision and image as Helm reports them,
    and the deployer's last outcome and when; NOTE says what runs now and drift left
    uncorrected."""
    rows = []
    for view in views:
        last: Mapping[str, Any] = view.get("last") or {}
        rows.append(
            (
                view["service"],
                _text(view.get("environment")),
                view.get("release_status") or "not installed",
                _text(view.get("revision")),
                view.get("image") or NONE,
                last.get("phase") or NONE,
                moment(last.get("updated_at")),
                _status_note(view),
            )
        )
    headers = ("SERVICE", "ENVIRONMENT", "RELEASE", "REV", "IMAGE", "LAST", "WHEN", "NOTE")
    return table(headers, rows) if rows else "no services"


def render_history(records: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/deployments`` (:class:`deployer.records.DeploymentRecord` each,
    newest first): one row per deployment with its environment, its image (or the revision a
    rollback returns to), phase, start, duration and its reason or plan summary, shortened."""
    rows = []
    for record in records:
        request: Mapping[str, Any] = record.get("request") or {}
        back_to = record.get("rollback_to_revision")
        image = request.get("image") or (f"rollback to rev {back_to}" if back_to else NONE)
        started = record.get("started_at") or record.get("received_at")
        why = record.get("reason") or record.get("plan_summary") or ""
        rows.append(
            (
                record["id"],
                record["service"],
                _text(record.get("environment")),
                image,
                record["phase"],
                moment(started),
                duration(started, record.get("finished_at")),
                shorten(why) if why else NONE,
            )
        )
    headers = ("ID", "SERVICE", "ENVIRONMENT", "IMAGE", "PHASE", "STARTED", "DURATION", "REASON")
    return table(headers, rows) if rows else "no deployments"


def render_environments(specs: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/environments`` (:class:`deployer.promotion.environments.
    EnvironmentSpec` each, by alias, in promotion order): one row per environment with its
    upstream, where it deploys and the rules of promotion into it (automatic or on request, the
    soak, the approval, the metric analysis, the freeze windows by name), then each freeze
    window: its start and length in its own zone, its recurrence and its reason."""
    rows = []
    windows = []
    for spec in specs:
        name = spec["name"]
        where = spec.get("namespace") or NONE
        if spec.get("kubeContext"):
            where = f"{spec['kubeContext']}/{where}"
        if spec.get("upstream") is None:
            rows.append((name, NONE, where, "entry (CI's releases)", NONE, NONE, NONE, NONE))
            continue
        rules: Mapping[str, Any] = spec.get("promotion") or {}
        freeze: Sequence[Mapping[str, Any]] = rules.get("freeze") or []
        soak = float(rules.get("soakSeconds") or 0)
        rows.append(
            (
                name,
                spec["upstream"],
                where,
                "automatic" if rules.get("automatic", True) else "on request",
                span(soak) if soak else "none",
                "required" if rules.get("approval") else "no",
                _analysis_rules(rules.get("analysis")),
                ", ".join(w["name"] for w in freeze) or "none",
            )
        )
        windows += [
            (
                name,
                w["name"],
                f"{_local(w.get('start'))} {w.get('timezone', '')}",
                f"to {_local(w['end'])}" if w.get("end") else _iso_duration(w.get("duration")),
                w.get("rrule") or "once",
                _text(w.get("reason")),
            )
            for w in freeze
        ]
    if not rows:
        return "no environments"
    headers = (
        "ENVIRONMENT", "UPSTREAM", "NAMESPACE", "PROMOTION", "SOAK", "APPROVAL", "ANALYSIS",
        "FREEZE",
    )  # fmt: skip
    text = table(headers, rows)
    if windows:
        columns = ("ENVIRONMENT", "WINDOW", "START", "LENGTH", "RECURS", "REASON")
        text += "\n\nfreeze windows (local times)\n" + table(columns, windows, "  ")
    return text


def render_board(rows: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/environments/board`` (:class:`deployer.promotion.views.ServiceRow`
    each): one row per service and environment with the image tag serving there, its phase and
    the promotion coming in; under it, that promotion's first gate that does not pass (or its
    reason) and the hold on automatic promotion, each with its reason in full."""
    lines: list[tuple[str, str, str, str, str]] = []
    details: list[list[str]] = []
    for row in rows:
        for cell in row.get("environments", []):
            incoming: Mapping[str, Any] | None = cell.get("incoming")
            notes = []
            arriving = NONE
            if incoming:
                release: Mapping[str, Any] = incoming.get("release") or {}
                arriving = f"{image_tag(release.get('image'))} {incoming['state']}"
                notes.append(f"  incoming {incoming['id']}: {_blocked(incoming)}")
            hold: Mapping[str, Any] | None = cell.get("hold")
            if hold:
                notes.append(
                    f"  held since {moment(hold.get('since'))} by {hold.get('by', NONE)}: "
                    f"{_cell(hold.get('reason', ''))} (deployer holds clear {cell['environment']} "
                    f"{row['service']})"
                )
            serving = image_tag(cell.get("image")) if cell.get("image") else "not deployed"
            lines.append(
                (row["service"], cell["environment"], serving, _text(cell.get("phase")), arriving)
            )
            details.append(notes)
    if not lines:
        return "no services"
    head, *body = table(("SERVICE", "ENVIRONMENT", "SERVING", "PHASE", "INCOMING"), lines).split(
        "\n"
    )
    out = [head]
    for line, notes in zip(body, details, strict=True):
        out += [line, *notes]
    return "\n".join(out)


def render_releases(views: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/releases`` (:class:`deployer.promotion.views.ReleaseView` each,
    newest first): one row per release with its image, commit and creation, and a column per
    environment with where it stands there (and the gate it waits at)."""
    if not views:
        return "no releases"
    names = [standing["environment"] for standing in views[0].get("environments", [])]
    rows = []
    for view in views:
        release: Mapping[str, Any] = view["release"]
        standing = {s["environment"]: s for s in view.get("environments", [])}
        rows.append(
            (
                release["id"],
                release.get("image") or NONE,
                (release.get("commit") or NONE)[:7],
                moment(release.get("created_at")),
                *(_standing(standing.get(name)) for name in names),
            )
        )
    headers = ("RELEASE", "IMAGE", "COMMIT", "CREATED", *(name.upper() for name in names))
    return table(headers, rows)


def render_promotions(promotions: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/promotions`` (:class:`deployer.promotion.model.Promotion` each,
    newest first): one row per promotion with its release's image tag, from where into where,
    its state, last change and reason, shortened (``deployer promotions show ID``: every gate)."""
    rows = []
    for promotion in promotions:
        release: Mapping[str, Any] = promotion.get("release") or {}
        rows.append(
            (
                promotion["id"],
                release.get("service") or NONE,
                image_tag(release.get("image")),
                f"{promotion.get('source')} -> {promotion.get('environment')}",
                promotion["state"],
                moment(promotion.get("updated_at")),
                shorten(promotion.get("reason") or NONE),
            )
        )
    headers = ("ID", "SERVICE", "IMAGE", "PATH", "STATE", "UPDATED", "REASON")
    return table(headers, rows) if rows else "no promotions"


def render_promotion(promotion: Mapping[str, Any]) -> str:
    """The body of ``GET /api/promotions/{id}``: the promotion's release, path, state and reason,
    who started it and approved it, and every gate with its verdict, reason and evidence."""
    release: Mapping[str, Any] = promotion.get("release") or {}
    started = "automatically" if promotion.get("automatic") else "requested"
    if promotion.get("requested_by"):
        started += f" by {promotion['requested_by']}"
    facts = [
        ("release", f"{release.get('id')}  {release.get('image')}  commit {release.get('commit')}"),
        ("path", f"{promotion.get('source')} -> {promotion.get('environment')}"),
        (
            "verified",
            f"in {promotion.get('source')} by {promotion.get('upstream_deployment_id')} at "
            f"{moment(promotion.get('verified_at'))}",
        ),
        ("started", f"{started} at {moment(promotion.get('created_at'))}"),
        ("updated", moment(promotion.get("updated_at"))),
        ("reason", _cell(promotion.get("reason") or NONE)),
        ("deployment", _text(promotion.get("deployment_id"))),
    ]
    approval: Mapping[str, Any] | None = promotion.get("approval")
    if approval:
        said = f": {approval['reason']}" if approval.get("reason") else ""
        through = " (overrides a freeze)" if approval.get("override_freeze") else ""
        approved = f"{approval['by']} at {moment(approval.get('at'))}{through}{said}"
        facts.append(("approval", approved))
    parts = [
        f"promotion {promotion['id']}: {promotion['state']}",
        "\n".join(f"{key:<11} {value}" for key, value in facts),
    ]
    gates: Sequence[Mapping[str, Any]] = promotion.get("gates") or []
    if gates:
        head, *body = table(
            ("GATE", "VERDICT", "DECIDED", "REASON"),
            [(g["gate"], g["verdict"], moment(g.get("decided_at")), g["reason"]) for g in gates],
        ).split("\n")
        lines = [head]
        for line, gate in zip(body, gates, strict=True):
            lines.append(line)
            if gate.get("evidence"):
                lines.append(f"  evidence: {_evidence(gate['evidence'])}")
        parts.append("\n".join(lines))
    else:
        parts.append("gates: not decided yet")
    return "\n\n".join(parts)


def render_holds(holds: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/holds`` (:class:`deployer.promotion.model.Hold` each): one row per
    hold with since when, who set it (and the rollback that did) and why; then how to clear
    one."""
    rows = [
        (
            hold["environment"],
            hold["service"],
            moment(hold.get("since")),
            hold.get("by") or NONE,
            _text(hold.get("deployment_id")),
            shorten(hold.get("reason") or NONE),
        )
        for hold in holds
    ]
    if not rows:
        return "no holds"
    headers = ("ENVIRONMENT", "SERVICE", "SINCE", "BY", "DEPLOYMENT", "REASON")
    return (
        table(headers, rows)
        + "\n\nautomatic promotion resumes once cleared: deployer holds clear ENVIRONMENT SERVICE"
    )


def render_dora(figures: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/dora`` (:class:`deployer.promotion.dora.DoraFigures` each): the
    window, then one row per service and environment with the successful deployments per day,
    the lead time's median and 90th percentile, the change failure rate with its counts, the
    median time to restore and the failures not restored yet. A lead time marked ``*`` counts
    some deployments from when the deployer received them, for want of a commit time."""
    if not figures:
        return "no deployments in the window"
    rows = []
    received = 0
    for f in figures:
        without = int(f.get("lead_times_without_commit_time") or 0)
        received += without
        rate = f.get("change_failure_rate")
        rows.append(
            (
                f["service"],
                f.get("environment") or NONE,
                f"{f['deployments_per_day']:.2f} ({f.get('successful_deployments', 0)})",
                span(f.get("lead_time_median_seconds")) + ("*" if without else ""),
                span(f.get("lead_time_p90_seconds")),
                NONE
                if rate is None
                else f"{rate * 100:.0f}% ({f.get('failed_changes', 0)}/{f.get('changes', 0)})",
                span(f.get("time_to_restore_median_seconds")),
                str(f.get("open_failures", 0)),
            )
        )
    since, until = figures[0].get("since"), figures[0].get("until")
    headers = (
        "SERVICE", "ENVIRONMENT", "DEPLOYS/DAY", "LEAD TIME", "LEAD P90", "CHANGE FAILURES",
        "RESTORE", "OPEN",
    )  # fmt: skip
    text = f"from {moment(since)} to {moment(until)} UTC ({duration(since, until)})\n"
    text += table(headers, rows)
    if received:
        text += (
            f"\n\n* {received} lead time{'s' if received > 1 else ''} counted from when the "
            "deployer received the request (no commit time was sent)"
        )
    return text


def image_tag(image: str | None) -> str:
    """The tag of an image reference (``registry/name:1.2.0-abc1234@sha256:...`` ->
    ``1.2.0-abc1234``), the reference as is without a tag; ``-`` when absent."""
    if not image:
        return NONE
    name = image.split("@", 1)[0]
    _, sep, tag = name.rpartition(":")
    return tag if sep and "/" not in tag else image


def _blocked(promotion: Mapping[str, Any]) -> str:
    """The first gate of ``promotion`` that does not pass, as ``gate verdict: reason``; the
    promotion's own reason when every gate passed or none was decided."""
    for gate in promotion.get("gates") or []:
        if gate.get("verdict") != "passed":
            return f"{gate['gate']} {gate['verdict']}: {_cell(gate.get('reason', ''))}"
    return _cell(promotion.get("reason") or NONE)


def _standing(standing: Mapping[str, Any] | None) -> str:
    """A release's status in one environment, with the gate it waits at or failed."""
    if standing is None:
        return NONE
    status = str(standing["status"])
    stuck = next((g for g in standing.get("gates") or [] if g.get("verdict") != "passed"), None)
    if stuck is not None and status in ("waiting", "promotion_failed"):
        status += f" ({stuck['gate']})"
    return status


def _analysis_rules(rules: Mapping[str, Any] | None) -> str:
    if not rules:
        return "none"
    return (
        f"success >= {float(rules.get('minSuccessRate', 0)) * 100:g}%, "
        f"p99 <= {float(rules.get('maxP99Seconds', 0)):g}s, "
        f">= {rules.get('minRequests')} requests, "
        f"<= {rules.get('maxHandlerFailures')} handler failures, "
        f"<= {rules.get('maxDeadLetters')} dead letters"
    )


def _local(value: str | None) -> str:
    """A local date-time of a freeze window (ISO 8601, no offset) as ``YYYY-MM-DD HH:MM``."""
    return value.replace("T", " ")[:16] if value else NONE


def _iso_duration(value: str | float | None) -> str:
    """A freeze window's length (ISO 8601 duration or seconds) as ``for 2d14h``."""
    if value is None:
        return NONE
    try:
        length = _DURATION.validate_python(value)
    except ValidationError:
        return str(value)
    return f"for {span(length.total_seconds())}"


def _evidence(evidence: Mapping[str, Any]) -> str:
    """A gate's evidence on one line: ``key=value``, nested keys dotted, lists as JSON."""

    def flat(prefix: str, value: Any) -> list[str]:
        if isinstance(value, Mapping):
            return [item for k, v in value.items() for item in flat(f"{prefix}{k}.", v)]
        shown = json.dumps(value) if isinstance(value, list) else _text(value)
        return [f"{prefix[:-1]}={_cell(shown)}"]

    return ", ".join(flat("", evidence))


def _workload_block(workload: Mapping[str, Any]) -> str:
    """``Kind/name: change (fields)`` and a FIELD / BEFORE -> AFTER table of what changes."""
    head = f"{workload['kind']}/{workload['name']}: {workload['change']}"
    if workload.get("fields"):
        head += f" ({', '.join(workload['fields'])})"
    changes = [*workload.get("template_changes", []), *workload.get("spec_changes", [])]
    rows = [(c["path"], f"{_value(c.get('before'))} -> {_value(c.get('after'))}") for c in changes]
    if workload["change"] == "install":
        rows += [
            (f"containers[{name}].image", f"{_value(None)} -> {image}")
            for name, image in workload.get("images", {}).items()
        ]
    lines = [head]
    if rows:
        lines.append(table(("FIELD", "BEFORE -> AFTER"), rows, "  "))
    elif workload["change"] == "delete":
        lines.append("  the workload and its pods are removed")
    elif workload["change"] == "no-op":
        lines.append("  nothing changes")
    elif workload["change"] == "service-only":
        lines.append("  pods do not roll; other resources of the release change")
    if workload.get("config_changes"):
        pods = "the pods roll" if workload["change"] == "rollout" else "the pods do not roll"
        lines.append(f"  reads changed {', '.join(workload['config_changes'])} ({pods})")
    return "\n".join(lines)


def _status_note(view: Mapping[str, Any]) -> str:
    notes = []
    if view.get("running"):
        notes.append(f"running {view['running']}")
    drift: Mapping[str, Any] = view.get("drift") or {}
    if drift.get("error"):
        notes.append("drift not checked")
    elif drift.get("fields"):
        count = len(drift["fields"])
        what = "corrected" if drift.get("corrected") else "drifted"
        notes.append(f"{count} field{'s' if count > 1 else ''} {what}")
    return ", ".join(notes) or NONE


def _listed(items: Sequence[str]) -> str:
    more = f" and {len(items) - FIELDS_SHOWN} more" if len(items) > FIELDS_SHOWN else ""
    return ", ".join(items[:FIELDS_SHOWN]) + more if items else NONE


def _value(value: str | None) -> str:
    """A plan value (None: the field is absent)."""
    return "unset" if value is None else value


def _text(value: object) -> str:
    return NONE if value is None or value == "" else str(value)


def _cell(value: str) -> str:
    return value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def _parsed(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
