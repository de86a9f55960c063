"""Readable text for the ``deployer`` CLI: pure functions from the API's JSON bodies to tables.

Plain fixed-width columns, no colour and no terminal queries, so the same text reads well on a
terminal, in a pipe and in CI logs. ``--output json`` bypasses this module (the API body as is).

This module holds the pieces every table uses (columns, times, durations, cells) and the tables of
the deployment commands (plan, status, history); :mod:`deployer.cli.promotion_format` those of the
environment and promotion commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

NONE = "-"
REASON_WIDTH = 60
FIELDS_SHOWN = 3


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> str:
    """Left-aligned columns two spaces apart under ``headers``; the last column is not padded
    (so no line ends in spaces). Cells are single-line (line breaks shown as ``\\n``)."""
    lines = [[one_line(c) for c in headers], *([one_line(c) for c in row] for row in rows)]
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


def text_of(value: object) -> str:
    """``value`` as text; ``-`` when it is absent or empty."""
    return NONE if value is None or value == "" else str(value)


def one_line(value: str) -> str:
    """``value`` fit for one cell: line breaks shown as ``\\r`` / ``\\n``, tabs as spaces."""
    return value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


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
        f"warnings ({len(warnings)})\n" + "\n".join(f"  ! {one_line(w)}" for w in warnings)
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
                text_of(view.get("environment")),
                view.get("release_status") or "not installed",
                text_of(view.get("revision")),
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
                text_of(record.get("environment")),
                image,
                record["phase"],
                moment(started),
                duration(started, record.get("finished_at")),
                shorten(why) if why else NONE,
            )
        )
    headers = ("ID", "SERVICE", "ENVIRONMENT", "IMAGE", "PHASE", "STARTED", "DURATION", "REASON")
    return table(headers, rows) if rows else "no deployments"


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


def _parsed(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
