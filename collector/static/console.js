"use strict";
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (t) => t ? new Date(t * 1000).toLocaleString() : "";
const badge = (s) => `<span class="st ${esc(s)}">${esc(s)}</span>`;
function table(id, headers, rows, none) {
  const el = document.getElementById(id);
  if (!rows.length) { el.innerHTML = `<div class="empty">${esc(none)}</div>`; return; }
  el.innerHTML = "<table><tr>" + headers.map((h) => `<th>${esc(h)}</th>`).join("") + "</tr>" +
    rows.map((r) => "<tr>" + r.map((c) => `<td>${c}</td>`).join("") + "</tr>").join("") + "</table>";
}
let csrf = "";
class SignedOut extends Error {}
async function get(path) {
  const resp = await fetch(path, {credentials: "same-origin"});
  if (resp.status === 401) throw new SignedOut(path);
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}
async function post(path, body) {
  return fetch(path, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)});
}
function show(signedIn, who) {
  document.getElementById("signin").style.display = signedIn ? "none" : "block";
  document.getElementById("main").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn || !who || who.auth === "none";
  document.getElementById("whoname").textContent = signedIn && who ? `${who.name} (${who.role})` : "";
  if (!signedIn) document.getElementById("meta").textContent = "signed out";
}
async function session() {
  const resp = await fetch("api/v1/session", {credentials: "same-origin"});
  if (!resp.ok) { show(false); return false; }
  const who = await resp.json();
  csrf = who.csrf || "";
  show(true, who);
  return true;
}
async function refresh() {
  try {
    // only the series that are not OK: a fleet has 100,000 series, and the agents' rows count theirs
    const [agents, problems, incidents, findings] = await Promise.all([
      get("api/v1/agents"), get("api/v1/checks?status=problems&limit=5000"), get("api/v1/incidents?status=active"),
      get("api/v1/findings?state=new"),
    ]);
    table("incidents", ["#", "status", "priority", "system", "agent", "check", "key", "opened", "response due", "summary"],
      incidents.map((i) => [`<a href="#incident-${esc(i.id)}">${esc(i.id)}</a>`, esc(i.status), esc(i.priority),
        esc(i.system), esc(i.agent_id), esc(i.check_id), esc(i.key), esc(when(i.opened_at)),
        esc(when(i.response_due_at)), esc(i.summary)]), "No open incidents.");
    table("problems", ["status", "agent", "check", "target", "key", "value", "outcome", "since", "summary"],
      problems.map((c) => [badge(c.status), esc(c.agent), esc(c.title || c.check_id), esc(c.target), esc(c.key),
        esc(c.value === null ? "" : `${+c.value.toFixed(3)} ${c.unit || ""}`), esc(c.outcome), esc(when(c.since)), esc(c.summary)]),
      "Every check is OK.");
    table("agents", ["agent", "host", "state", "last seen", "series", "spool", "dropped", "version"],
      agents.map((a) => [esc(a.id), esc(a.hostname), badge(a.connected ? "UP" : "DOWN"), esc(when(a.last_seen)),
        esc(a.series), esc(a.spool_depth), esc(a.dropped), esc(a.version)]),
      "No agent has connected yet.");
    table("findings", ["#", "engine", "target", "object", "seen", "last seen", "title"],
      findings.map((f) => [esc(f.id), esc(f.engine), esc(f.target), esc(f.object), esc(f.seen_count), esc(when(f.last_seen)), esc(f.title)]),
      "No new findings.");
    document.getElementById("meta").textContent =
      `${agents.length} agents · ${agents.reduce((n, a) => n + (a.series || 0), 0)} series · ${problems.length} problems · updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e instanceof SignedOut) { show(false); return; }
    document.getElementById("meta").innerHTML = `<span class="err">${esc(e.message)}</span>`;
  }
}
async function showIncident() {
  const view = document.getElementById("incident-view");
  const m = /^#incident-(\d+)$/.exec(location.hash);
  if (!m) { view.hidden = true; return; }
  try {
    const i = await get(`api/v1/incidents/${m[1]}`);
    document.getElementById("incident-title").textContent = `#${i.id} ${i.title} (${i.status})`;
    const fields = ["priority", "severity", "system", "host", "check_id", "target", "key", "summary", "runbook",
      "acknowledged_by", "assignee", "suppressed", "resolution", "root_cause", "rca_solution"];
    const times = ["opened_at", "acknowledged_at", "response_due_at", "resolution_due_at", "resolved_at", "closed_at"];
    table("incident-fields", ["field", "value"], [
      ...fields.filter((f) => i[f]).map((f) => [esc(f), esc(i[f])]),
      ...times.filter((f) => i[f]).map((f) => [esc(f), esc(when(i[f]))])], "");
    table("incident-timeline", ["at", "event", "by", "detail"], i.timeline.map((e) => [esc(when(e.at)), esc(e.event),
      esc(e.actor), esc(Object.entries(e.detail || {}).filter(([, v]) => v !== "" && v !== null)
        .map(([k, v]) => `${k}=${k.endsWith("_at") ? when(v) : v}`).join(", "))]), "");
    view.hidden = false;
  } catch (e) {
    if (e instanceof SignedOut) { show(false); return; }
    document.getElementById("incident-title").innerHTML = `<span class="err">${esc(e.message)}</span>`;
    view.hidden = false;
  }
}
window.addEventListener("hashchange", showIncident);
document.getElementById("signinform").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  const resp = await post("api/v1/session", {token: input.value});
  input.value = "";
  if (!resp.ok) {
    document.getElementById("signinerr").textContent = (await resp.json()).error || `HTTP ${resp.status}`;
    return;
  }
  document.getElementById("signinerr").textContent = "";
  if (await session()) { refresh(); showIncident(); }
});
document.getElementById("signout").addEventListener("click", async () => {
  await post("api/v1/session/end", {});
  csrf = "";
  show(false);
});
session().then((ok) => { if (ok) { refresh(); showIncident(); } });
setInterval(() => { if (csrf || !document.getElementById("main").hidden) refresh(); }, 10000);
