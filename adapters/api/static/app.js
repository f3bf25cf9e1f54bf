// ebbtide dashboard: the rollouts list (#/) and one rollout's detailed view (#/{namespace}/{name}),
// live from the API's server-sent event streams; actions go to the actions route after a confirmation.
// Plain JavaScript, no build step, nothing loaded from elsewhere; every text is set as text (never as HTML).
// On a cluster the API wants a bearer token: the one typed in the header's token field is kept in this tab's
// sessionStorage and sent as "Authorization: Bearer" on every request, the event streams included (they are
// read with fetch, since an EventSource cannot send a header).
"use strict";

const API = "/api/v1";
const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const conn = document.getElementById("conn");
const TOKEN_KEY = "ebbtide.token";
let stream = null; // the AbortController of the event stream of the page shown

// ----- small helpers -------------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function path(ns, name) {
  return `${API}/namespaces/${encodeURIComponent(ns)}/rollouts/${encodeURIComponent(name)}`;
}

function badge(phase, extra) {
  return el("span", { class: `badge phase-${phase}`, "data-phase": phase }, phase, extra || "");
}

function bar(percent, cls) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const fill = el("span");
  fill.style.width = `${p}%`; // set through the CSSOM: the page's CSP allows no inline style attribute
  return el("div", { class: `bar ${cls || ""}`, role: "img", "aria-label": `${p}%` }, fill);
}

function setConn(state, text) {
  conn.className = `conn ${state}`;
  conn.textContent = state === "live" ? "live" : state === "down" ? text || "reconnecting…" : "connecting…";
}

// ----- the bearer token ----------------------------------------------------------------------------------
function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    return "";
  }
}

function authHeaders(extra) {
  const t = token();
  return t ? { ...(extra || {}), Authorization: `Bearer ${t}` } : { ...(extra || {}) };
}

function tokenField() {
  const input = el("input", { id: "token", type: "password", placeholder: "bearer token", autocomplete: "off",
    "aria-label": "bearer token", value: token() });
  const use = el("button", { type: "button", id: "token-use", onclick: () => {
    const t = input.value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    route();
  } }, "Use token");
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") use.click(); });
  conn.before(el("span", { class: "token" }, input, use));
}

// ----- server-sent events, read with fetch (so the token goes along) --------------------------------------
function watch(url, event, render) {
  if (stream) stream.abort();
  const ctl = new AbortController();
  stream = ctl;
  setConn("");
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const response = await fetch(url, { headers: authHeaders({ Accept: "text/event-stream" }),
          signal: ctl.signal, cache: "no-store" });
        if (response.ok) {
          setConn("live");
          await readEvents(response, event, render, ctl);
          if (ctl.signal.aborted) return;
          setConn("down");
        } else {
          setConn("down", `${response.status}: ${await errorText(response)}`);
        }
      } catch (_) {
        if (ctl.signal.aborted) return;
        setConn("down");
      }
      await new Promise((resolve) => setTimeout(resolve, 2000)); // then connect again, as EventSource does
    }
  })();
}

async function readEvents(response, event, render, ctl) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue; // a heartbeat comment
      if (name === event) render(JSON.parse(data.join("\n")));
      else if (name === "gone") {
        ctl.abort();
        main.replaceChildren(el("p", { class: "panel failure" }, JSON.parse(data.join("\n")).detail));
        return;
      }
    }
  }
}

async function errorText(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
  const detail = body && body.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail) && detail.reason) return detail.reason;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : `${response.status} ${response.statusText}`;
}

// ----- the rollouts list ---------------------------------------------------------------------------------
function showList() {
  crumbs.replaceChildren("rollouts");
  document.title = "ebbtide rollouts";
  main.replaceChildren(el("h1", {}, "Rollouts"), el("div", { id: "list", class: "panel" }, "Loading…"));
  watch(`${API}/watch/rollouts`, "list", renderList);
}

function trafficText(traffic) {
  return Object.entries(traffic).map(([rev, w]) => `${rev} ${w}%`).join(" · ");
}

function renderList(data) {
  const box = document.getElementById("list");
  if (!box) return;
  if (!data.items.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No rollouts."));
    return;
  }
  const head = ["Namespace", "Name", "Phase", "Step", "Traffic", "Ready / desired", "Rollback", "Failure"];
  const rows = data.items.map((r) =>
    el("tr", { "data-rollout": `${r.namespace}/${r.name}` },
      el("td", {}, r.namespace),
      el("td", {}, el("a", { href: `#/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}` }, r.name)),
      el("td", {}, badge(r.phase), r.degraded ? el("span", { class: "badge degraded" }, "degraded") : null),
      el("td", {}, r.step || "—"),
      el("td", { class: "mono nowrap" }, trafficText(r.traffic)),
      el("td", { class: "num" }, `${r.ready} / ${r.desired}`),
      el("td", { class: "nowrap" }, r.rollbackPercent === null ? "—" : `${r.rollbackPercent}% complete`),
      el("td", { class: "muted" }, r.failureReason || "")));
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)));
}

// ----- one rollout ---------------------------------------------------------------------------------------
const ACTIONS = [
  ["promote", "Promote", "Move on to the next phase (also leaves an indefinite or inconclusive pause)."],
  ["promoteFull", "Promote full", "Skip every remaining phase: the new revision goes live now."],
  ["pause", "Pause", "Stop the rollout where it is until it is resumed."],
  ["resume", "Resume", "Continue a paused rollout (the running phase restarts)."],
  ["abort", "Abort", "Roll back now: the stable revision takes the traffic back."],
  ["retry", "Retry", "Roll out the rolled-back revision again (after a completed rollback)."],
];

function showRollout(ns, name) {
  historyKey = null;
  liveRevisions = [];
  crumbs.replaceChildren(el("a", { href: "#/" }, "rollouts"), ` / ${ns} / ${name}`);
  document.title = `${name} · ebbtide`;
  const select = el("select", { id: "rollback-to", "aria-label": "roll back to" },
    el("option", { value: "" }, "the last successful revision"));
  const buttons = ACTIONS.map(([action, label, help]) =>
    el("button", { type: "button", "data-action": action, title: help, class: action === "abort" ? "danger" : "",
      onclick: () => confirmAction(ns, name, action, label, help, null) }, label));
  const rollback = el("button", { type: "button", "data-action": "rollback", class: "danger",
    onclick: () => {
      const to = select.value || null;
      confirmAction(ns, name, "rollback", "Roll back", to ? `Roll back to revision ${to}.`
        : "Roll back to the last successful revision.", to);
    } }, "Roll back");
  main.replaceChildren(
    el("h1", {}, name, el("span", { id: "phase" })),
    el("div", { class: "panel" }, el("h2", {}, "Actions"),
      el("div", { class: "actions" }, buttons, el("span", { class: "muted" }, "│"), rollback, "to", select),
      el("div", { id: "action-message", class: "message", role: "status" })),
    el("div", { id: "view" }, el("p", { class: "muted" }, "Loading…")));
  watch(`${path(ns, name)}/watch`, "view", (view) => renderView(view, select));
}

function confirmAction(ns, name, action, label, help, to) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = `${label}: ${ns}/${name}?`;
  document.getElementById("confirm-text").textContent = help;
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  ok.onclick = () => {
    dialog.close();
    act(ns, name, action, to);
  };
  cancel.onclick = () => dialog.close();
  dialog.showModal();
  ok.focus();
}

async function act(ns, name, action, to) {
  const box = document.getElementById("action-message");
  const say = (cls, text) => {
    box.className = `message ${cls}`;
    box.textContent = text;
  };
  let response;
  try {
    response = await fetch(`${path(ns, name)}/actions`, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ action, to }),
    });
  } catch (err) {
    say("error", `${action}: the API cannot be reached (${err})`);
    return;
  }
  if (response.ok) {
    const body = await response.json();
    say("ok", `${action}${to ? ` to ${to}` : ""}: ${body.result} (action ${body.id.slice(0, 8)})`);
  } else {
    say("error", `${action} rejected: ${await errorText(response)}`);
  }
}

function facts(pairs) {
  return el("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
}

function renderView(v, select) {
  const phase = document.getElementById("phase");
  const box = document.getElementById("view");
  if (!box) return;
  phase.replaceChildren(badge(v.phase, v.pauseReason ? ` (${v.pauseReason})` : ""),
    v.degraded ? el("span", { class: "badge degraded" }, "degraded") : "");
  const parts = [];
  if (v.rollback) parts.push(rollbackPanel(v.rollback));
  if (v.failureReason) {
    parts.push(el("div", { id: "failure", class: "panel failure" }, el("h2", {}, "Failure reason"), v.failureReason));
  }
  parts.push(el("div", { class: "grid" },
    el("div", { class: "panel" }, el("h2", {}, "Rollout"), facts([
      ["rollout id", v.rolloutId], ["linked: original rollout", v.originalRolloutId],
      ["initiator", v.initiator], ["stable", v.stable], ["canary", v.canary], ["desired", v.desired],
      ["last action", v.lastAction ? lastActionText(v.lastAction) : null],
    ])),
    el("div", { class: "panel" }, el("h2", {}, "Steps"), stepsList(v.steps))));
  parts.push(el("div", { class: "panel" }, el("h2", {}, "Revisions"), revisionsTable(v.revisions)));
  parts.push(el("div", { class: "panel", id: "verifications" }, el("h2", {}, "Verification runs"),
    v.verifications.length ? v.verifications.map(runBlock) : el("p", { class: "muted" }, "None in this rollout.")));
  box.replaceChildren(...parts);
  rollbackChoices(v, select);
}

// the rollback targets offered: the revisions that reached live (the history route, newest first, read again
// whenever the phase or the rollout changes) and those the view shows, but the one desired now
let historyKey = null;
let liveRevisions = [];

async function rollbackChoices(v, select) {
  const key = `${v.namespace}/${v.name}/${v.rolloutId}/${v.phase}`;
  if (key !== historyKey) {
    historyKey = key;
    try {
      const response = await fetch(`${path(v.namespace, v.name)}/history`, { headers: authHeaders() });
      if (response.ok) liveRevisions = (await response.json()).items.map((h) => h.revision).reverse();
    } catch (_) {
      // keep what was known: the stream says when the API is back
    }
  }
  const chosen = select.value;
  const revisions = [...new Set([...liveRevisions, ...v.revisions.map((r) => r.revision)])]
    .filter((r) => r !== v.desired);
  select.replaceChildren(el("option", { value: "" }, "the last successful revision"),
    ...revisions.map((r) => el("option", { value: r, selected: r === chosen }, r)));
}

function lastActionText(a) {
  return `${a.action}${a.to ? ` to ${a.to}` : ""}: ${a.result}${a.reason ? ` (${a.reason})` : ""}`;
}

function rollbackPanel(rb) {
  const pct = rb.percentComplete;
  return el("div", { id: "rollback-status", class: "panel rollback-panel" },
    el("h2", {}, "Rollback"),
    el("div", { class: "big" }, pct === null ? "Rollback status: done" : `Rollback status: ${pct}% complete`),
    bar(pct === null ? 100 : pct, "rollback"),
    facts([["from", rb.source], ["to", rb.target],
      ["replicas completed", `${rb.targetReady} of ${rb.targetDesired} ready (${rb.target})`],
      ["mode", rb.mode + (rb.fastTrack ? " (fast-tracked)" : "")], ["reason", rb.reason]]));
}

function stepsList(steps) {
  if (!steps.length) return el("p", { class: "muted" }, "No steps.");
  return el("ol", { class: "steps" }, steps.map((s) =>
    el("li", { class: s.state, "data-step": s.index }, `${s.index + 1}. ${s.text}`)));
}

function revisionsTable(revisions) {
  const head = ["Revision", "Role", "Status", "Traffic", "Replicas ready / desired"];
  return el("table", {},
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, revisions.map((r) => el("tr", { "data-revision": r.revision },
      el("td", { class: "mono" }, r.revision),
      el("td", {}, r.role),
      el("td", {}, r.status),
      el("td", {}, el("div", { class: "traffic" }, bar(r.traffic), el("span", { class: "num" }, `${r.traffic}%`))),
      el("td", { class: "num" }, `${r.ready} / ${r.desired}`)))));
}

function runBlock(run) {
  const head = ["Metric", "Phase", "Measured", "Successful", "Failed", "Inconclusive", "Errors", "Last value"];
  return el("div", { class: "run" },
    el("div", {}, el("strong", { class: "mono" }, run.template), " ", badge(run.phase),
      run.background ? el("span", { class: "muted" }, " background") : "",
      el("span", { class: "muted mono" }, ` ${run.id}`)),
    run.message ? el("div", { class: "muted" }, run.message) : "",
    el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, run.metrics.map((m) => el("tr", {},
        el("td", { class: "mono" }, m.name), el("td", {}, m.phase),
        el("td", { class: "num" }, m.count), el("td", { class: "num" }, m.successful),
        el("td", { class: "num" }, m.failed), el("td", { class: "num" }, m.inconclusive),
        el("td", { class: "num" }, m.error), el("td", { class: "mono" }, m.last === null ? "—" : m.last))))));
}

// ----- routing -------------------------------------------------------------------------------------------
function route() {
  const m = location.hash.match(/^#\/([^/]+)\/([^/]+)$/);
  if (m) showRollout(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  else showList();
}

window.addEventListener("hashchange", route);
tokenField();
route();
