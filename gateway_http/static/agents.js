/* The agents panel: presence, status, task, subagents, health pill and CPU/MEM/DISK gauges
 * from /api/agents/registry, classes, reasons and sources from /api/agents/health
 * (health.js), with disconnected agents collapsed under an "N offline" toggle; the header
 * counts the classes. A card opens the agent's detail (agentdetail.js); an admin gets
 * "Purge dead" (agentops.js). */
import { renderAgentDetail } from "./agentdetail.js";
import { renderPanelOps } from "./agentops.js";
import { api } from "./api.js";
import { channel, renderChannelMeta, renderChannels } from "./channels.js";
import { $, ago, avatar, el } from "./dom.js";
import { countClasses, healthClasses, healthText, mergeHealth, pill, rank } from "./health.js";
import { state } from "./state.js";

export const AGENT_POLL_MS = 5000;
const AGENT_RENDER_MS = 15000;  // re-render so "last seen" ages stay true between polls
const INTERNAL_CHANNEL_PREFIX = "#.";
let showOffline = false;  // disconnected agents are collapsed under "N offline"

export function scheduleAgentRefresh() {
  clearTimeout(state.agentsTimer);
  state.agentsTimer = setTimeout(refreshAgents, 150);
}

export async function refreshAgents() {
  const gen = state.generation;
  let rows, health;
  try {
    [rows, health] = await Promise.all([
      api("/api/agents/registry"),
      api("/api/agents/health").catch(() => null),  // the pills fall back to the rows' own
    ]);
  } catch (_) { return; }
  if (gen !== state.generation) return;
  state.agents = mergeHealth(rows, health);
  const members = new Map();
  for (const a of rows) {
    if (!a.online) continue;
    for (const c of a.channels || []) {
      if (c.startsWith(INTERNAL_CHANNEL_PREFIX)) continue;  // #.doctor: never listed
      if (!members.has(c)) members.set(c, []);
      members.get(c).push(a.name);
    }
  }
  let changed = false;
  for (const [name, list] of members) {
    const ch = channel(name);
    if (ch.members.join() !== list.join()) { ch.members = list; changed = true; }
  }
  for (const ch of state.channels.values()) {
    if (!members.has(ch.name) && ch.members.length) { ch.members = []; changed = true; }
  }
  if (changed) { renderChannels(); renderChannelMeta(); }
  renderAgents();
}

function gauge(label, pct, detail) {
  const g = el("div", "gauge");
  const top = el("div", "gauge-label");
  top.append(el("span", null, label), el("span", null, pct === null ? "–" : `${Math.round(pct)}%`));
  const bar = el("div", "gauge-bar");
  const fill = el("div", "gauge-fill" + (pct >= 90 ? " hot" : pct >= 70 ? " warn" : ""));
  fill.style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
  bar.appendChild(fill);
  g.append(top, bar);
  if (detail) g.title = detail;
  return g;
}

/** CPU (load per core), MEM and DISK gauges of a heartbeat's resources. */
export function resourceGauges(r) {
  const cpu = r.cpu_count && r.load_avg_1m !== undefined ? (100 * r.load_avg_1m) / r.cpu_count : null;
  const mem = r.mem_used_percent !== undefined ? r.mem_used_percent : null;
  const disk = r.disk_used_percent !== undefined ? r.disk_used_percent : null;
  const gauges = el("div", "gauges");
  gauges.append(
    gauge("CPU", cpu, r.cpu_model ? `${r.cpu_model}, load ${r.load_avg_1m}` : null),
    gauge("MEM", mem, r.mem_total_mb ? `${r.mem_total_mb} MB total` : null),
    gauge("DISK", disk, null));
  return gauges;
}

function agentCard(a) {
  const li = el("li", "agent" + (a.online ? "" : " offline"));
  li.dataset.name = a.name;
  li.tabIndex = 0;
  li.title = "Show details";
  const top = el("div", "agent-top");
  const av = avatar(a.name, false);
  av.appendChild(el("span", "presence-dot" + (a.online ? " on" : "")));
  const id = el("div", "agent-id");
  id.append(el("div", "agent-name", a.name),
            el("div", "agent-sub", [a.machine, a.role, a.model].filter(Boolean).join(" · ") || a.agent_id || ""));
  top.append(av, id, pill(a.hh.health, healthText(a.hh)));
  li.appendChild(top);
  const task = el("div", "agent-task");
  task.append(el("span", "status", a.online ? (a.status || "online") : "offline"),
              el("span", "task", a.current_task || "no current task"));
  li.appendChild(task);
  const subs = subagentLine(a);
  if (subs) li.appendChild(subs);
  const gauges = resourceGauges(a.resources || {});
  li.appendChild(gauges);
  const foot = el("div", "agent-foot");
  foot.append(el("span", "tags", (a.channels || []).join(" ")), el("span", null, a.online ? ago(a.last_seen_s_ago) : "offline"));
  li.appendChild(foot);
  return li;
}

/** The subagents: dialect B's list (`subagents`: [{name, task, status}]) or A's count. */
export function subagentNames(a) {
  return Array.isArray(a.subagents)
    ? a.subagents.map((s) => (s && typeof s === "object" && s.name ? String(s.name) : "?")) : [];
}

function subagentLine(a) {
  const names = subagentNames(a);
  const count = names.length || (Number.isInteger(a.subagent_count) ? a.subagent_count : 0);
  if (!count) return null;
  const line = el("div", "agent-subagents", `${count} subagent${count === 1 ? "" : "s"}`
    + (names.length ? `: ${names.join(", ")}` : ""));
  line.dataset.count = String(count);
  return line;
}

export function renderAgents() {
  const ul = $("agents");
  ul.textContent = "";
  const rows = [...state.agents].sort((a, b) => (b.online - a.online)
    || (rank(a.hh.health) - rank(b.hh.health)) || a.name.localeCompare(b.name));
  const online = rows.filter((a) => a.online);
  const offline = rows.filter((a) => !a.online);
  const counts = countClasses(rows);
  const summary = $("health-summary");
  summary.textContent = "";
  const order = [...healthClasses(), ...Object.keys(counts).filter((k) => !healthClasses().includes(k))];
  for (const k of order) {
    if (!counts[k]) continue;
    const p = pill(k, `${counts[k]} agent${counts[k] === 1 ? "" : "s"} ${k}`);
    p.textContent = `${counts[k]} ${k}`;
    p.dataset.count = String(counts[k]);
    summary.appendChild(p);
  }
  if (!online.length) {
    ul.appendChild(el("li", "no-agents", offline.length ? "No agents online."
      : "No agents connected yet. Point one at the agent port with a workspace token."));
  }
  for (const a of online) ul.appendChild(agentCard(a));
  if (offline.length) {
    const toggle = el("li", "offline-toggle");
    const button = el("button", null, `${showOffline ? "▾" : "▸"} ${offline.length} offline`);
    button.type = "button";
    button.setAttribute("aria-expanded", String(showOffline));
    button.addEventListener("click", () => { showOffline = !showOffline; renderAgents(); });
    toggle.appendChild(button);
    ul.appendChild(toggle);
    if (showOffline) for (const a of offline) ul.appendChild(agentCard(a));
  }
  const stats = $("hub-stats");
  stats.textContent = "";
  stats.append(el("b", null, String(online.length)), ` agent${online.length === 1 ? "" : "s"} online · `,
               el("b", null, String(state.channels.size)), " channels");
  renderPanelOps();
  renderAgentDetail();
}

export function wireAgents() {
  setInterval(() => { if (state.agents.length) renderAgents(); }, AGENT_RENDER_MS);
}
