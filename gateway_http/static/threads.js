/* Threads in the side panel: a root and its replies (GET /api/threads/<num>/), a composer
 * posting POST /api/threads/ {parent_id, content}, and live replies (message frames with
 * payload.thread) appended while the thread is open. */
import { api } from "./api.js";
import { myName } from "./composer.js";
import { $, el } from "./dom.js";
import { normalize } from "./channels.js";
import { ensureNum, renderMessage } from "./messages.js";
import { notice } from "./notice.js";
import { closePanel, openPanel } from "./panel.js";
import { state } from "./state.js";

let open = null;  // { num, channel, byId: Map, list: Element } while a thread is shown

/** The thread panel's copy of a message, if it shows it. */
export function threadMessage(id) { return open ? open.byId.get(id) || null : null; }

export function openThreadNum() { return open ? open.num : null; }

/** The feed's object of a message when the page has one, so that both show one state. */
function shared(row) {
  const m = normalize(row);
  const ch = state.channels.get(m.channel);
  const known = ch && ch.byId.get(m.id);
  if (known) {
    if (known.num === null) known.num = m.num;
    return known;
  }
  return m;
}

/** Opens the thread of `m` (its root, or the thread a reply belongs to). */
export async function openThread(m) {
  let num;
  try {
    num = m.thread ? m.thread.num : await ensureNum(m);
  } catch (err) {
    notice(`Cannot open the thread: ${err.message}`, err.status);
    return;
  }
  const body = openPanel("thread", "Thread", () => { open = null; });
  const list = el("div", "thread-list");
  list.appendChild(el("div", "thread-loading muted", "Loading…"));
  body.appendChild(list);
  body.appendChild(threadComposer());
  const mine = { num, channel: m.channel, byId: new Map(), list };
  open = mine;
  try {
    const data = await api(`/api/threads/${num}/`);
    if (open !== mine) return;
    list.textContent = "";
    const root = shared(data.root);
    mine.byId.set(root.id, root);
    list.appendChild(renderMessage(root, null, false, true).lastChild);
    list.lastChild.classList.add("thread-root");
    const count = el("div", "thread-count muted");
    count.id = "thread-count";
    list.appendChild(count);
    for (const row of data.replies) append(shared(row), false);
    syncCount();
    $("thread-input").focus({ preventScroll: true });
  } catch (err) {
    if (open !== mine) return;
    list.textContent = "";
    list.appendChild(el("p", "error", `Could not load the thread: ${err.message}`));
  }
}

function append(m, fresh) {
  if (!open || open.byId.has(m.id) && open.list.querySelector(`.msg[data-id="${CSS.escape(m.id)}"]`)) return;
  open.byId.set(m.id, m);
  const row = renderMessage(m, null, fresh, true).lastChild;
  row.classList.add("thread-reply");
  open.list.appendChild(row);
  syncCount();
  const box = $("side-body");
  box.scrollTop = box.scrollHeight;
}

function syncCount() {
  const c = $("thread-count");
  if (!c || !open) return;
  const n = open.list.querySelectorAll(".thread-reply").length;
  c.textContent = n ? `${n} ${n === 1 ? "reply" : "replies"}` : "No replies yet";
}

function threadComposer() {
  const form = el("form", "thread-composer");
  form.id = "thread-composer";
  const input = el("textarea");
  input.id = "thread-input";
  input.rows = 2;
  input.placeholder = state.readOnly ? "Read-only: sign in with the admin token to reply" : "Reply in thread";
  input.disabled = state.readOnly;
  const send = el("button", "primary", "Reply");
  send.type = "submit";
  send.id = "thread-send";
  send.disabled = state.readOnly;
  form.append(input, send);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const content = input.value.trim();
    if (!content || !open) return;
    const sender = myName();
    if (!sender) { notice("Enter your name first."); $("sender-name").focus(); return; }
    const mine = open;
    send.disabled = true;
    try {
      const reply = await api("/api/threads/", { method: "POST", json: { parent_id: mine.num, content, sender } });
      input.value = "";
      if (open === mine) {
        append(shared({ msg_id: reply.id, num: reply.num, seq: reply.seq, ts: reply.ts || new Date().toISOString(),
                        sender, channel: reply.channel, content, thread: reply.thread, sender_type: "human" }), true);
      }
    } catch (err) {
      notice(`Reply not sent: ${err.message}`, err.status);
    } finally {
      send.disabled = state.readOnly;
    }
  });
  return form;
}

/** A live reply (`m` from a message frame with payload.thread): into the open thread, and
 * the root's "N replies" in the feed. */
export function onThreadReply(m, bumpRoot) {
  if (open && m.thread && m.thread.num === open.num) append(m, true);
  const ch = state.channels.get(m.channel);
  const root = ch && ch.byId.get(m.thread.root);
  if (root && bumpRoot) {
    root.reply_count = (root.reply_count || 0) + 1;
    if (root.num === null) root.num = m.thread.num;
    return root;
  }
  return null;
}

export function closeThread() { if (open) closePanel(); }
