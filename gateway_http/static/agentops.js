/* Operator actions on agents, for the admin token only (docs/operations.md "Operator
 * actions"): Kick (a live agent: its sockets closed with 4005) and Forget (its registry
 * entry) in the agent detail, "Purge dead" in the agents panel (forget every agent
 * offline longer than a threshold, the hub's reap time by default). Each asks in the page
 * first (an inline confirmation, not window.confirm), then calls the REST route and says
 * what happened, or why not. */
import { refreshAgents } from "./agents.js";
import { api } from "./api.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

const DEFAULT_REAP_S = 300;
const isAdmin = () => !!(state.config && state.config.is_admin);

// ---- the detail's Kick / Forget ------------------------------------------------------
let detail = { name: null, confirm: null, busy: false, result: null };
let drawn = "";

function reset(name) { detail = { name, confirm: null, busy: false, result: null }; }

/** Forgets the bar's state (the detail was closed). */
export function clearDetailOps() { reset(null); drawn = ""; }

const ACTIONS = {
  kick: {
    label: "Kick",
    ask: (n) => `Kick ${n}? Its sockets are closed (code 4005). A client that reconnects by itself comes back.`,
    call: (n) => api(`/api/agents/${encodeURIComponent(n)}/kick`, { method: "POST" }),
    done: (n, r) => `kicked ${n}${r && r.was_online === false ? " (it was not online)" : ""}`,
    fail: "Not kicked",
  },
  forget: {
    label: "Forget",
    ask: (n) => `Forget ${n}? Its registry entry goes; a live agent is listed again by its next heartbeat.`,
    call: (n) => api(`/api/agents/${encodeURIComponent(n)}`, { method: "DELETE" }),
    done: (n, r) => `forgot ${n} (${(r && r.count) || 0} registry entr${r && r.count === 1 ? "y" : "ies"})`,
    fail: "Not forgotten",
  },
};

function confirmBox(text, yesLabel, onYes, onNo, extra) {
  const box = el("div", "confirm-op");
  box.setAttribute("role", "alertdialog");
  box.setAttribute("aria-label", text);
  const yes = el("button", "danger", yesLabel);
  yes.type = "button";
  yes.dataset.op = "confirm";
  const no = el("button", null, "Cancel");
  no.type = "button";
  no.dataset.op = "cancel";
  box.append(el("span", "confirm-text", text));
  if (extra) box.append(extra);
  box.append(yes, no);
  yes.addEventListener("click", onYes);
  no.addEventListener("click", onNo);
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); onNo(); }
  });
  return box;
}

function resultLine(result) {
  const line = el("p", `op-result${result.error ? " error" : ""}`, result.text);
  line.setAttribute("role", result.error ? "alert" : "status");
  return line;
}

async function runDetail(verb) {
  const { name } = detail;
  const op = ACTIONS[verb];
  detail.busy = true;
  renderDetailOps(name, state.agents.find((r) => r.name === name));
  try {
    const res = await op.call(name);
    detail.result = { text: op.done(name, res), error: false };
  } catch (err) {
    detail.result = { text: `${op.fail}: ${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, error: true };
  }
  if (detail.name !== name) return;  // another agent was opened meanwhile
  detail.busy = false;
  detail.confirm = null;
  await refreshAgents();
  renderDetailOps(name, state.agents.find((r) => r.name === name));
}

/** The detail's action bar for agent `name` (row `a`, absent once forgotten); redrawn only
 * when something it shows changed, so a confirmation survives the polls. */
export function renderDetailOps(name, a) {
  const box = $("agent-detail-ops");
  if (!box) return;
  if (detail.name !== name) reset(name);
  const key = JSON.stringify([name, !!a, !!(a && a.online), isAdmin(), detail]);
  if (key === drawn) return;
  drawn = key;
  box.textContent = "";
  box.hidden = !isAdmin();
  if (!isAdmin()) return;
  const bar = el("div", "op-bar");
  for (const verb of ["kick", "forget"]) {
    if (!a || (verb === "kick" && !a.online)) continue;
    const button = el("button", null, ACTIONS[verb].label);
    button.type = "button";
    button.dataset.op = verb;
    button.disabled = detail.busy;
    button.addEventListener("click", () => {
      detail.confirm = verb;
      detail.result = null;
      renderDetailOps(name, a);
      const yes = box.querySelector('[data-op="confirm"]');
      if (yes) yes.focus();
    });
    bar.appendChild(button);
  }
  if (bar.childElementCount) box.appendChild(bar);
  if (detail.confirm) {
    const verb = detail.confirm;
    const ask = confirmBox(ACTIONS[verb].ask(name), ACTIONS[verb].label, () => runDetail(verb), () => {
      detail.confirm = null;
      renderDetailOps(name, state.agents.find((r) => r.name === name));
    });
    if (detail.busy) for (const b of ask.querySelectorAll("button")) b.disabled = true;
    box.appendChild(ask);
  }
  if (detail.result) box.appendChild(resultLine(detail.result));
}

// ---- the panel's Purge dead ----------------------------------------------------------
let purge = { open: false, busy: false, result: null, olderThan: null };

function reapAfter() {
  const v = state.config && state.config.reap_after_s;
  return typeof v === "number" && v >= 0 ? v : DEFAULT_REAP_S;
}

/** What the hub would forget: offline agents last seen longer ago than `older` s. */
function wouldPurge(older) {
  return state.agents.filter((a) => !a.online
    && (a.last_seen_s_ago === null || a.last_seen_s_ago === undefined || a.last_seen_s_ago > older))
    .map((a) => a.name).sort();
}

async function runPurge(older) {
  purge.busy = true;
  renderPanelOps(true);
  try {
    const res = await api(`/api/agents/purge-stale?older_than_s=${encodeURIComponent(older)}`, { method: "POST" });
    const names = (res && res.purged) || [];
    purge.result = { text: names.length ? `forgot ${names.length}: ${names.join(", ")}` : "forgot 0: nothing to purge", error: false };
  } catch (err) {
    purge.result = { text: `Not purged: ${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, error: true };
  }
  purge.busy = false;
  purge.open = false;
  await refreshAgents();
  renderPanelOps(true);
}

/** The agents panel's "Purge dead" (admin only). Kept while a confirmation is open, its
 * preview list following the polls. */
export function renderPanelOps(force = false) {
  let box = $("agent-ops");
  const panel = $("agents-panel");
  if (!box && panel) {
    box = el("div", "agent-ops");
    box.id = "agent-ops";
    panel.insertBefore(box, $("agents"));
  }
  if (!box) return;
  box.hidden = !isAdmin();
  if (!isAdmin()) { box.textContent = ""; return; }
  if (purge.open && !force) {  // only the preview follows the polls
    const input = box.querySelector("input");
    const list = box.querySelector(".purge-preview");
    if (input && list) list.textContent = preview(Number(input.value));
    return;
  }
  box.textContent = "";
  if (!purge.open) {
    const button = el("button", "link", "Purge dead…");
    button.type = "button";
    button.id = "purge-dead";
    button.disabled = purge.busy;
    button.addEventListener("click", () => { purge.open = true; purge.result = null; renderPanelOps(true); });
    box.appendChild(button);
  } else {
    const older = purge.olderThan === null ? reapAfter() : purge.olderThan;
    const field = el("label", "purge-field", "offline for more than ");
    const input = el("input");
    input.type = "number";
    input.min = "0";
    input.step = "1";
    input.value = String(older);
    input.id = "purge-older";
    field.append(input, " s");
    const list = el("div", "purge-preview", preview(older));
    input.addEventListener("input", () => {
      purge.olderThan = Number(input.value);
      list.textContent = preview(Number(input.value));
    });
    const extra = el("div", "purge-extra");
    extra.append(field, list);
    const ask = confirmBox("Forget every dead agent?", "Purge", () => {
      const v = Number(input.value);
      if (!Number.isFinite(v) || v < 0) {
        purge.result = { text: "Not purged: the age must be a number of seconds ≥ 0", error: true };
        purge.open = false;
        renderPanelOps(true);
        return;
      }
      runPurge(v);
    }, () => { purge.open = false; renderPanelOps(true); }, extra);
    if (purge.busy) for (const b of ask.querySelectorAll("button")) b.disabled = true;
    box.appendChild(ask);
  }
  if (purge.result) box.appendChild(resultLine(purge.result));
}

function preview(older) {
  if (!Number.isFinite(older) || older < 0) return "Enter a number of seconds.";
  const names = wouldPurge(older);
  return names.length ? `Would forget ${names.length}: ${names.join(", ")}` : "Nothing to purge.";
}
