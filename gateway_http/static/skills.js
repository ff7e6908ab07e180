/* The skills view: a "Skills" button in the sidebar's foot opens the side panel with the
 * workspace's slash skills (name, usage, description) and, for the admin token, the
 * pending proposals with Approve / Reject (docs/operations.md "Skills"). Text only
 * (textContent), never HTML. */
import { api } from "./api.js";
import { $, el } from "./dom.js";
import { notice } from "./notice.js";
import { closePanel, openPanel, panelKind } from "./panel.js";
import { state } from "./state.js";

function usage(skill) {
  const args = (skill.arguments || []).map((a) => (a.required ? `${a.name}=…` : `[${a.name}=…]`));
  return [`/${skill.name} @agent`, ...args].join(" ");
}

function row(skill, extra, kind) {
  const item = el("div", "skill-row");
  item.dataset.name = skill.name;
  item.dataset.kind = kind;
  item.append(el("code", "skill-usage", usage(skill)));
  if (skill.description) item.append(el("div", "muted", skill.description));
  if (extra) item.append(extra);
  return item;
}

async function decide(name, verb, buttons) {
  for (const b of buttons) b.disabled = true;
  let result;
  try {
    await api(`/api/skills/pending/${encodeURIComponent(name)}/${verb}`, { method: "POST" });
    result = { text: `${verb === "approve" ? "approved" : "rejected"} ${name}`, error: false };
  } catch (err) {
    notice(`${verb} ${name}: ${err.message}`, err.status);
    result = { text: `Not ${verb === "approve" ? "approved" : "rejected"}: ${name}: ${err.message}`, error: true };
  }
  await show(result);
}

function decision(skill) {
  const box = el("div", "skill-actions");
  box.append(el("span", "muted", `proposed by ${skill.proposer || "?"} ${skill.proposed_at || ""}`));
  const buttons = [];
  for (const verb of ["approve", "reject"]) {
    const button = el("button", "link", verb === "approve" ? "Approve" : "Reject");
    button.type = "button";
    button.dataset.verb = verb;
    button.addEventListener("click", () => decide(skill.name, verb, buttons));
    buttons.push(button);
    box.append(button);
  }
  return box;
}

async function show(result = null) {
  const body = openPanel("skills", "Skills");
  if (result) {
    const line = el("p", `op-result${result.error ? " error" : ""}`, result.text);
    line.setAttribute("role", result.error ? "alert" : "status");
    body.append(line);
  }
  try {
    const listed = await api("/api/skills");
    const skills = listed.skills || [];
    body.append(el("h3", null, `Skills (${skills.length})`));
    if (!skills.length) body.append(el("div", "muted", "No skills in this workspace."));
    for (const skill of skills) body.append(row(skill, null, "skill"));
    if (state.config && state.config.is_admin) {
      const pending = (await api("/api/skills/pending")).pending || [];
      body.append(el("h3", null, `Pending proposals (${pending.length})`));
      if (!pending.length) body.append(el("div", "muted", "No proposals waiting."));
      for (const skill of pending) body.append(row(skill, decision(skill), "pending"));
    }
  } catch (err) {
    body.append(el("div", "muted", `Skills could not be loaded: ${err.message}`));
  }
}

export function wireSkills() {
  const foot = $("signout") && $("signout").parentElement;
  if (!foot) return;
  const button = el("button", "link", "Skills");
  button.id = "skills-btn";
  button.type = "button";
  button.addEventListener("click", () => (panelKind() === "skills" ? closePanel() : show()));
  foot.insertBefore(button, $("signout"));
}
