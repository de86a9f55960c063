// The deployer dashboard, live (docs/dashboard.md). Plain JavaScript, no build step.
//
// It listens to the deploy events of /api/events (server-sent events; same origin, so the browser
// sends the credentials it opened the page with) and updates the tables in place: a deployment
// appears under "Live rollouts", its phase and rollout progress change as they happen, and its
// outcome moves it to "Recent history". On every (re)connection it reads /api/deployments once,
// so nothing that happened while it was not listening is missed. Text from the server is only
// ever set as text (textContent), never as markup, except the services table, which is HTML the
// deployer renders (and escapes) itself.
"use strict";

(() => {
  const TERMINAL = new Set([
    "succeeded", "unchanged", "failed", "rolled_back", "rejected", "superseded",
  ]);
  // A snapshot read from /api/deployments may be older than an event already shown: it never
  // moves a deployment back (an event, e.g. queued again after an approval, may).
  const RANK = { queued: 0, pending_approval: 1, started: 2, progressing: 3, canary: 3 };
  const DRIFTED = "dev.flotilla.deploy.drifted.v1";
  const PROMOTION = "dev.flotilla.deploy.promotion.v1";
  const HISTORY_LIMIT = 30;
  const known = new Map();
  const $ = (id) => document.getElementById(id);
  let source = null;
  let retryMs = 1000;
  let servicesTimer = null;
  let syncs = 0;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child !== null && child !== undefined && child !== "") {
        node.append(typeof child === "string" ? document.createTextNode(child) : child);
      }
    }
    return node;
  }

  function rank(phase) {
    return TERMINAL.has(phase) ? 9 : (RANK[phase] ?? 0);
  }

  function setConnection(state, text) {
    const indicator = $("connection");
    indicator.dataset.state = state;
    indicator.textContent = text;
  }

  // ---- what the page knows of each deployment ------------------------------------------------

  function remember(id, fields, fromEvent) {
    const d = known.get(id) || { id };
    const phase = fields.phase;
    if (phase && d.phase) {
      const backwards = fromEvent
        ? TERMINAL.has(d.phase) && !TERMINAL.has(phase)
        : rank(phase) < rank(d.phase);
      if (backwards) delete fields.phase;
    }
    for (const [name, value] of Object.entries(fields)) {
      if (value !== undefined && value !== null) d[name] = value;
    }
    if (d.phase && TERMINAL.has(d.phase)) delete d.progress;
    known.set(id, d);
    return d;
  }

  function fromRecord(record) {
    return remember(record.id, {
      service: record.service,
      phase: record.phase,
      image: record.request ? record.request.image : undefined,
      reason: record.reason,
      plan_summary: record.plan_summary,
      approvals_needed: record.approvals_needed,
      finished_at: record.finished_at,
      canary: record.canary,
    }, false);
  }

  function fromEvent(event) {
    const data = event.data;
    const fields = {
      service: data.service,
      phase: data.phase,
      image: data.image,
      reason: data.reason,
      approvals_needed: data.approvals_needed,
      progress: data.progress,
      canary: data.canary,
    };
    if (TERMINAL.has(data.phase)) fields.finished_at = event.time || new Date().toISOString();
    return remember(data.deployment_id, fields, true);
  }

  // ---- rows -------------------------------------------------------------------------------------

  function badge(phase) {
    return el("span", { class: `phase ${phase}` }, phase);
  }

  function planCell(d, live) {
    const cell = el("td", {},
      el("a", { class: "plan", href: `/deployments/${encodeURIComponent(d.id)}/plan` },
        d.plan_summary || "plan"));
    if (live && d.phase === "pending_approval" && d.approvals_needed && d.approvals_needed.length) {
      cell.append(el("br"), el("span", { class: "muted" },
        `needs approval: ${d.approvals_needed.join("; ")} (`,
        el("code", {}, `deployer approve ${d.id}`), ")"));
    }
    return cell;
  }

  function percent(value) {
    return value === null || value === undefined ? "-" : `${(100 * value).toFixed(1)}%`;
  }

  function milliseconds(seconds) {
    return seconds === null || seconds === undefined ? "-" : `${Math.round(1000 * seconds)} ms`;
  }

  // A canary: its steps (the current one marked), the split, and the last measurement of both
  // tracks over the same window.
  function canaryCell(c) {
    const cell = el("td", { class: "progress canary", "data-state": c.state });
    const steps = el("ol", { class: "steps" });
    c.steps.forEach((step, index) => {
      const state = index < c.step ? "done" : index === c.step ? "current" : "next";
      steps.append(el("li", { class: state }, step));
    });
    const total = c.stable_replicas + c.canary_replicas;
    const share = total ? Math.round((100 * c.canary_replicas) / total) : 0;
    cell.dataset.stable = String(c.stable_replicas);
    cell.dataset.canary = String(c.canary_replicas);
    cell.append(badge(c.state), steps,
      el("div", { class: "split" },
        `stable ${c.stable_replicas} · canary ${c.canary_replicas} pods (${share}% of requests)`));
    const last = (c.measurements || []).at(-1);
    if (last) {
      cell.append(el("div", { class: `measurement ${last.verdict}` },
        `${last.verdict}: canary ${percent(last.canary.success_rate)} ok, p99 `
        + `${milliseconds(last.canary.p99_seconds)}, ${Math.round(last.canary.requests)} req · `
        + `stable ${percent(last.stable.success_rate)}, p99 ${milliseconds(last.stable.p99_seconds)}`));
      for (const broken of last.broken || []) cell.append(el("div", { class: "problem" }, broken));
    }
    if (c.reason) cell.append(el("div", { class: "muted" }, c.reason));
    return cell;
  }

  function progressCell(d) {
    if (d.canary) return canaryCell(d.canary);
    const cell = el("td", { class: "progress" });
    const p = d.progress;
    if (!p) {
      const waiting = { queued: "waiting for its lane", pending_approval: "waiting for approval" };
      cell.append(el("span", { class: "muted" }, waiting[d.phase] || ""));
      return cell;
    }
    // Ready counts the old pods too: the bar shows the new pods that can be ready, at most.
    const done = Math.min(p.updated, p.ready);
    const percent = p.desired ? Math.round((100 * done) / p.desired) : 100;
    const bar = el("span", { class: "bar" }, el("span", { style: `width: ${percent}%` }));
    cell.dataset.ready = String(p.ready);
    cell.dataset.updated = String(p.updated);
    cell.dataset.desired = String(p.desired);
    cell.append(bar, `${p.updated}/${p.desired} updated, ${p.ready} ready`);
    for (const problem of (p.problems || []).slice(0, 2)) {
      const waiting = problem.reason === "NotReady";  // readiness probe not passing (yet)
      cell.append(el("div", { class: waiting ? "muted" : "problem" },
        `${problem.pod}: ${waiting ? "not ready yet" : problem.reason}`));
    }
    return cell;
  }

  function liveRow(d) {
    return el("tr", { "data-id": d.id, "data-phase": d.phase },
      el("td", {}, d.service || ""),
      el("td", {}, el("code", {}, d.id)),
      el("td", {}, badge(d.phase)),
      progressCell(d),
      el("td", {}, el("code", {}, d.image || "")),
      planCell(d, true));
  }

  function historyRow(d) {
    const finished = d.finished_at ? new Date(d.finished_at).toISOString().slice(11, 19) : "";
    return el("tr", { "data-id": d.id, "data-phase": d.phase },
      el("td", { class: "muted" }, finished),
      el("td", {}, d.service || ""),
      el("td", {}, el("code", {}, d.id)),
      el("td", {}, badge(d.phase)),
      el("td", {}, el("code", {}, d.image || "")),
      planCell(d, false),
      el("td", { class: "muted" }, (d.reason || "").slice(0, 160)));
  }

  function show(d) {
    if (!d.phase) return;
    const terminal = TERMINAL.has(d.phase);
    const body = terminal ? $("history-rows") : $("live-rows");
    const row = terminal ? historyRow(d) : liveRow(d);
    const shown = document.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
    if (shown && shown.parentElement === body) {
      shown.replaceWith(row);
    } else {
      if (shown) shown.remove();
      body.prepend(row);
    }
    while ($("history-rows").rows.length > HISTORY_LIMIT) $("history-rows").lastElementChild.remove();
    $("nothing-live").hidden = $("live-rows").rows.length > 0;
  }

  // ---- the server ---------------------------------------------------------------------------

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json();
  }

  function refreshServicesSoon() {
    clearTimeout(servicesTimer);
    servicesTimer = setTimeout(async () => {
      try {
        const response = await fetch("/fragments/services");
        if (response.ok) $("service-rows").innerHTML = await response.text();
        if ($("environments")) {
          const environments = await fetch("/fragments/environments");
          if (environments.ok) $("environments").innerHTML = await environments.text();
        }
      } catch (error) {
        console.warn("dashboard: services not refreshed", error);
      }
    }, 250);
  }

  async function refreshDeployment(id) {
    try {
      show(fromRecord(await getJson(`/api/deployments/${encodeURIComponent(id)}`)));
    } catch (error) {
      console.warn("dashboard: deployment not refreshed", error);
    }
  }

  async function resync() {
    try {
      const records = await getJson(`/api/deployments?limit=${HISTORY_LIMIT}`);
      for (const record of records.reverse()) show(fromRecord(record));
      refreshServicesSoon();
      document.body.dataset.synced = String(++syncs);
    } catch (error) {
      console.warn("dashboard: resync failed", error);
    }
  }

  function onMessage(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    if (event.type === DRIFTED || event.type === PROMOTION) {
      refreshServicesSoon();
      return;
    }
    const data = event.data;
    if (!data || !data.deployment_id || !data.phase) return;
    show(fromEvent(event));
    if (data.phase !== "progressing" && data.phase !== "canary") {
      // The record adds what events do not carry (the plan's summary) and the service moved on.
      refreshDeployment(data.deployment_id);
      refreshServicesSoon();
    }
  }

  function connect() {
    setConnection("connecting", "connecting…");
    source = new EventSource("/api/events");
    source.onopen = () => {
      retryMs = 1000;
      setConnection("live", "live");
      resync();
    };
    source.onmessage = onMessage;
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (401, 503 while the deployer starts): EventSource gives up; try again later.
        setConnection("disconnected", `disconnected, retrying in ${retryMs / 1000} s`);
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      } else {
        setConnection("disconnected", "disconnected, reconnecting…");
      }
    };
  }

  document.addEventListener("DOMContentLoaded", connect);
})();
