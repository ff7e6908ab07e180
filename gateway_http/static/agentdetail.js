/* The agent detail: one agent's presence record (the /api/agents/registry row the agents
 * panel already polls, with its health class, reason and source), opened by clicking its
 * card; kept current by each poll. Closed by its button, a tap outside or Escape
 * (layout.js). An admin gets Kick and Forget here (agentops.js). */
import { clearDetailOps, renderDetailOps } from "./agentops.js";
import { resourceGauges } from "./agents.js";
import { $, ago, avatar, el } from "./dom.js";
import { healthText, pill, whyText } from "./health.js";
import { syncBackdrop } from "./layout.js";
import { state } from "./state.js";

const FIELDS = [
  ["health", "Health"], ["status", "Status"], ["current_task", "Current task"], ["role", "Role"], ["machine", "Machine"],
  ["model", "Model"], ["project", "Project"], ["multiplexer", "Multiplexer"],
  ["subagent_count", "Subagents"], ["channels", "Channels"], ["last_seen", "Last seen"],
  ["since", "Connected since"], ["agent_id", "Agent id"], ["workspace", "Workspace"],
  ["rtt_ms", "Ping round trip"], ["echo_rtt_ms", "Echo round trip"], ["subagents", "Subagent list"],
];

let shown = null;  // the name of the agent shown, or null

export function agentDetailOpen() { return shown !== null; }

export function openAgentDetail(name) {
  shown = name;
  renderAgentDetail();
  $("agent-detail").hidden = false;
  syncBackdrop();
  $("agent-detail-close").focus({ preventScroll: true });
}

export function closeAgentDetail() {
  if (shown === null) return;
  const name = shown;
  shown = null;
  clearDetailOps();
  $("agent-detail").hidden = true;
  syncBackdrop();
  const card = [...document.querySelectorAll("#agents .agent")].find((c) => c.dataset.name === name);
  if (card) card.focus({ preventScroll: true });
}

function when(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !isNaN(d) ? d.toLocaleString() : "";
}

function value(a, key) {
  switch (key) {
    case "status": return a.online ? (a.status || "online") : "offline";
    case "channels": {
      const chips = el("span", "chips");
      for (const c of a.channels || []) chips.appendChild(el("span", "chip", c));
      return (a.channels || []).length ? chips : "";
    }
    case "last_seen": return a.online ? `${ago(a.last_seen_s_ago)} (${when(a.last_heartbeat)})`
      : `offline, last seen ${when(a.last_heartbeat) || "never"}`;
    case "since": return when(a.registered_at);
    case "rtt_ms": case "echo_rtt_ms":  // dialect B liveness (FLEET.md §3: ping, echo)
      return typeof a[key] === "number" ? `${a[key].toFixed(1)} ms` : "";
    case "health": {
      const box = el("span", "health-detail");
      box.append(pill(a.hh.health), el("span", "health-why", whyText(a.hh)));
      return box;
    }
    case "subagents": {
      if (!Array.isArray(a.subagents) || !a.subagents.length) return "";
      const ul = el("ul", "subagent-list");
      for (const s of a.subagents) {
        const item = s && typeof s === "object" ? s : {};
        ul.appendChild(el("li", null,
          `${item.name || "?"}${item.status ? ` (${item.status})` : ""}${item.task ? `: ${item.task}` : ""}`));
      }
      return ul;
    }
    case "subagent_count": return a.subagent_count === undefined || a.subagent_count === null
      ? "" : String(a.subagent_count);
    default: return a[key] === undefined || a[key] === null ? "" : String(a[key]);
  }
}

function fieldList(pairs) {
  const dl = el("dl", "detail-fields");
  for (const [key, label, v] of pairs) {
    const dt = el("dt", null, label);
    const dd = el("dd");
    dd.dataset.field = key;
    if (v === "" || v === undefined) { dd.textContent = "—"; dd.classList.add("none"); } else dd.append(v);
    dl.append(dt, dd);
  }
  return dl;
}

function resourceText(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** Fills the panel from the agent's current row (called on open and after each poll). */
export function renderAgentDetail() {
  if (shown === null) return;
  const a = state.agents.find((r) => r.name === shown);
  $("agent-detail-title").textContent = shown;
  const av = $("agent-detail-avatar");
  av.textContent = "";
  av.appendChild(avatar(shown, false));
  const body = $("agent-detail-body");
  body.textContent = "";
  const head = $("agent-detail-health");
  renderDetailOps(shown, a);
  if (!a) {
    head.className = "pill dead";
    head.textContent = "gone";
    head.title = "";
    body.appendChild(el("p", "muted", "This agent is no longer listed."));
    return;
  }
  const p = pill(a.hh.health, healthText(a.hh));
  head.className = p.className;
  head.textContent = p.textContent;
  head.title = p.title;
  head.dataset.health = p.dataset.health;
  body.appendChild(fieldList(FIELDS.map(([key, label]) => [key, label, value(a, key)])));
  const r = a.resources || {};
  const keys = Object.keys(r).sort();
  body.appendChild(el("h4", "detail-section", "Resources"));
  if (!keys.length) {
    body.appendChild(el("p", "muted", "No heartbeat with resources yet."));
    return;
  }
  body.appendChild(resourceGauges(r));
  const res = fieldList(keys.map((k) => [`resources.${k}`, k, resourceText(r[k])]));
  res.classList.add("resources");
  body.appendChild(res);
}

export function wireAgentDetail() {
  $("agent-detail-close").addEventListener("click", closeAgentDetail);
  const open = (e) => {
    const card = e.target.closest(".agent");
    if (card && card.dataset.name) openAgentDetail(card.dataset.name);
  };
  $("agents").addEventListener("click", open);
  $("agents").addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && e.target.classList.contains("agent")) {
      e.preventDefault();
      open(e);
    }
  });
}
