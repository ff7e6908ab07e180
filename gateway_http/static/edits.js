/* Editing (an inline textarea: Enter or Save, Escape cancels; PATCH /api/messages/<num>/)
 * and deleting (an inline confirmation; DELETE /api/messages/<num>/) the viewer's own
 * messages, or any with the admin token; live message_edit / message_delete events.
 * An edited message shows "(edited)", a deleted one the tombstone "message deleted". */
import { hideActions } from "./actions.js";
import { api } from "./api.js";
import { myName } from "./composer.js";
import { el } from "./dom.js";
import { ensureNum, findMessages, refreshMessage } from "./messages.js";
import { notice } from "./notice.js";

function sender() {
  const me = myName();
  return me ? { sender: me } : {};
}

/** Applies an edit or a delete unless a later change of `m` was applied already. */
function newer(m, seq) {
  if (typeof seq !== "number") return true;
  if ((m.changeSeq || 0) >= seq) return false;
  m.changeSeq = seq;
  return true;
}

function applyEdit(m, content, editedAt, seq) {
  if (m.deleted || !newer(m, seq)) return;
  m.content = content;
  m.edited_at = editedAt || new Date().toISOString();
  refreshMessage(m);
}

function applyDelete(m, seq) {
  if (!newer(m, seq) && m.deleted) return;
  m.deleted = true;
  m.content = "";
  m.attachments = [];
  m.reactions = {};
  refreshMessage(m);
}

export function onMessageEdit(p) {
  for (const m of findMessages(p.channel, p.message)) applyEdit(m, p.content, p.edited_at, p.seq);
}

export function onMessageDelete(p) {
  for (const m of findMessages(p.channel, p.message)) applyDelete(m, p.seq);
}

function rowsOf(m) {
  return [...document.querySelectorAll(`.msg[data-id="${CSS.escape(m.id)}"]`)];
}

/** Inline editing of `m` in its row `r`. */
export function startEdit(m, r) {
  hideActions();
  const body = r.querySelector(".msg-body");
  if (!body || r.querySelector(".edit-box")) return;
  const box = el("form", "edit-box");
  const area = el("textarea", "edit-input");
  area.value = m.content;
  area.rows = Math.min(10, Math.max(2, m.content.split("\n").length));
  area.setAttribute("aria-label", "Edit message");
  const save = el("button", "primary", "Save");
  save.type = "submit";
  const cancel = el("button", null, "Cancel");
  cancel.type = "button";
  const hint = el("span", "muted edit-hint", "Enter to save · Escape to cancel");
  const row = el("div", "edit-row");
  row.append(save, cancel, hint);
  box.append(area, row);
  body.hidden = true;
  body.after(box);
  const done = () => { box.remove(); body.hidden = false; };
  cancel.addEventListener("click", done);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); done(); r.focus({ preventScroll: true }); }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); box.requestSubmit(); }
  });
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("submit", async (e) => {
    e.preventDefault();
    const content = area.value;
    if (content === m.content) { done(); return; }
    save.disabled = true;
    try {
      const num = await ensureNum(m);
      const res = await api(`/api/messages/${num}/`, { method: "PATCH", json: { content, ...sender() } });
      done();
      applyEdit(m, content, res.edited_at, res.seq);
    } catch (err) {
      save.disabled = false;
      notice(`Not edited: ${err.message}`, err.status);
    }
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

/** Asks (inline, under the message), then deletes `m`: it stays as a tombstone. */
export function confirmDelete(m, r) {
  hideActions();
  if (r.querySelector(".confirm-delete")) return;
  const box = el("div", "confirm-delete");
  box.setAttribute("role", "alertdialog");
  box.setAttribute("aria-label", "Delete this message?");
  const yes = el("button", "danger", "Delete");
  yes.type = "button";
  const no = el("button", null, "Cancel");
  no.type = "button";
  box.append(el("span", null, "Delete this message?"), yes, no);
  r.appendChild(box);
  const done = () => box.remove();
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); done(); }
  });
  no.addEventListener("click", done);
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      const num = await ensureNum(m);
      const q = myName() ? `?sender=${encodeURIComponent(myName())}` : "";
      const res = await api(`/api/messages/${num}/${q}`, { method: "DELETE" });
      done();
      applyDelete(m, res.seq);
    } catch (err) {
      yes.disabled = false;
      notice(`Not deleted: ${err.message}`, err.status);
    }
  });
  yes.focus();
}

export { rowsOf };
