"""Readable text for the environment and promotion commands of the ``deployer`` CLI
(environments, board, releases, promotions, holds, dora): pure functions from the API's JSON
bodies to tables, built of :mod:`deployer.cli.format`'s pieces."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from deployer.cli.format import NONE, duration, moment, one_line, shorten, span, table, text_of

_DURATION = TypeAdapter(timedelta)


def render_environments(specs: Sequence[Mapping[str, Any]]) -> str:
    """The body of ``GET /api/environments`` (:class:`deployer.promotion.environments.
    EnvironmentSpec` each, by alias, in promotion order): one row per environment with its
    upstream, where it deploys (a gitops environment: with its repository) and the rules of
    promotion into it (automatic or on request, the
    soak, the approval, the metric analysis, the freeze windows by name), then each freeze
    window: its start and length in its own zone, its recurrence and its reason."""
    rows = []
    windows = []
    for spec in specs:
        name = spec["name"]
        where = spec.get("namespace") or NONE
        if spec.get("kubeContext"):
            where = f"{spec['kubeContext']}/{where}"
        if spec.get("mode") == "gitops":
            where = f"{where} (gitops: {spec['gitops']['repository']})"
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
                text_of(w.get("reason")),
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
                    f"{one_line(hold.get('reason', ''))} "
                    f"(deployer holds clear {cell['environment']} {row['service']})"
                )
            serving = image_tag(cell.get("image")) if cell.get("image") else "not deployed"
            lines.append(
                (row["service"], cell["environment"], serving, text_of(cell.get("phase")), arriving)
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
        ("reason", one_line(promotion.get("reason") or NONE)),
        ("deployment", text_of(promotion.get("deployment_id"))),
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
            text_of(hold.get("deployment_id")),
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
            return f"{gate['gate']} {gate['verdict']}: {one_line(gate.get('reason', ''))}"
    return one_line(promotion.get("reason") or NONE)


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
        shown = json.dumps(value) if isinstance(value, list) else text_of(value)
        return [f"{prefix[:-1]}={one_line(shown)}"]

    return ", ".join(flat("", evidence))
