/* Health classes as the hub reports them (GET /api/agents/health): the class list and
 * order from its `classes` (else the seven below), each agent's class, reason and source
 * ("hub" when computed, the reporter's, e.g. "healer", when reported), merged into the
 * registry rows the agents panel shows. A class this page has no colour for shows as a
 * neutral pill. Text only (textContent). */
import { el } from "./dom.js";

export const DEFAULT_CLASSES = ["healthy", "idle", "stale", "stuck_prompt", "remediating", "ghost", "dead"];
const STYLED = new Set(DEFAULT_CLASSES);
const MAX_CLASSES = 32;
let classes = DEFAULT_CLASSES;

export function healthClasses() { return classes; }

/** Takes the hub's ordered class list when it gives a sane one. */
export function setClasses(list) {
  if (Array.isArray(list) && list.length && list.length <= MAX_CLASSES
      && list.every((c) => typeof c === "string" && c.length <= 64)) classes = list;
}

/** Sort rank of a class: its place in the list, unknown ones last. */
export function rank(health) {
  const i = classes.indexOf(health);
  return i < 0 ? classes.length : i;
}

/** A pill for a class: its colour if styled, else neutral (`pill other`). */
export function pill(health, title) {
  const name = String(health || "unknown");
  const p = el("span", `pill ${STYLED.has(name) ? name : "other"}`, name);
  p.dataset.health = name;
  if (title) p.title = title;
  return p;
}

/** "reason (source S)", and the reported diagnosis when the class shown is another. */
export function whyText(h) {
  const lines = [`${h.reason ? `${h.reason} ` : ""}(source ${h.source})`];
  const r = h.reported;
  if (r) lines.push(`reported ${r.status}${r.reason ? `: ${r.reason}` : ""} (by ${r.source || r.reported_by || "?"})`);
  return lines.join("\n");
}

/** The pill's tooltip: "class: reason (source S)" and any other reported diagnosis. */
export function healthText(h) { return `${h.health}: ${whyText(h)}`; }

const key = (ws, name) => `${ws}\u0000${name}`;

/** Sets `a.hh = {health, reason, source, reported}` on each registry row from the
 * hub's health report (when it has the agent), else from the row's own fields. */
export function mergeHealth(rows, report) {
  if (report) setClasses(report.classes);
  const entries = new Map();
  for (const e of (report && Array.isArray(report.agents) ? report.agents : [])) {
    entries.set(key(e.workspace, e.name), e);
  }
  for (const a of rows) {
    const e = entries.get(key(a.workspace, a.name));
    const online = a.online;
    // A disconnected agent is dead whatever its last status said, unless the hub says more.
    const health = (e && e.health) || a.health || (online ? "healthy" : "dead");
    const reason = (e && e.reason) || a.health_reason || (online ? "" : "disconnected");
    const source = (e && e.source) || a.health_source || "hub";
    let reported = e && e.reported && typeof e.reported === "object" ? e.reported : null;
    // Shown apart only while it differs from the class the hub gives.
    if (reported && reported.status === health && (reported.source || "") === source) reported = null;
    a.hh = { health, reason, source, reported };
  }
  return rows;
}

/** {class: n} over rows, every class of the list present (0 when none). */
export function countClasses(rows) {
  const counts = {};
  for (const c of classes) counts[c] = 0;
  for (const a of rows) counts[a.hh.health] = (counts[a.hh.health] || 0) + 1;
  return counts;
}
