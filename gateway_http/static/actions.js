/* The actions of a message: one toolbar for the whole feed, moved to the row under the
 * pointer, the focused row, or the tapped one (phones): reply in thread, react, copy link,
 * edit, delete. Reply and react need a token that may write; edit and delete show on the
 * viewer's own messages (sent under the composer's name), or on any with the admin token.
 * Nothing is built per message: rows only carry data-id. */
import { myName } from "./composer.js";
import { $, el, icon, toast } from "./dom.js";
import { confirmDelete, startEdit } from "./edits.js";
import { ensureNum } from "./messages.js";
import { pickReaction } from "./reactions.js";
import { state } from "./state.js";
import { openThread } from "./threads.js";

const ACTIONS = [
  { name: "reply", label: "Reply in thread", icon: "thread", needs: "write" },
  { name: "react", label: "Add reaction", icon: "smile", needs: "write" },
  { name: "link", label: "Copy link", icon: "link", needs: null },
  { name: "edit", label: "Edit", icon: "edit", needs: "owner" },
  { name: "delete", label: "Delete", icon: "trash", needs: "owner" },
];

let bar = null;    // the toolbar element, built on first use
let row = null;    // the .msg row it is on
let pinned = false;  // opened by a tap: stays until another tap, Escape or a tap outside
let pointer = "mouse";  // the kind of the last pointer down on the feed

/** The message of a row of the open channel. */
export function messageOf(r) {
  const ch = state.channels.get(state.current);
  return (ch && r && ch.byId.get(r.dataset.id)) || null;
}

export function canWrite() { return !state.readOnly; }

/** Edit and delete: the admin token may change any message, others their own. */
export function canModify(m) {
  if (!m || m.deleted) return false;
  if (state.admin && canWrite()) return true;  // not while following another hub
  const me = myName();
  return canWrite() && !!me && m.sender === me;
}

function allowed(action, m) {
  if (action.needs === "write") return canWrite() && !m.deleted;
  if (action.needs === "owner") return canModify(m);
  return true;
}

function build() {
  bar = el("div", "msg-actions");
  bar.id = "msg-actions";
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", "Message actions");
  for (const action of ACTIONS) {
    const b = el("button", `act act-${action.name}`);
    b.type = "button";
    b.dataset.action = action.name;
    b.title = action.label;
    b.setAttribute("aria-label", action.label);
    b.appendChild(icon(action.icon, 16));
    bar.appendChild(b);
  }
  bar.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (!b || !row) return;
    e.stopPropagation();
    const m = messageOf(row);
    if (m) run(b.dataset.action, m, row, b);
  });
}

function run(action, m, r, button) {
  if (action === "reply") openThread(m);
  else if (action === "react") pickReaction(m, button);
  else if (action === "link") copyLink(m);
  else if (action === "edit") startEdit(m, r);
  else if (action === "delete") confirmDelete(m, r);
}

export function showActions(r, pin = false) {
  const m = messageOf(r);
  if (!m) return;
  if (!bar) build();
  if (row !== r || !bar.isConnected) {
    if (row) row.classList.remove("acting");
    row = r;
    for (const b of bar.children) {
      b.hidden = !allowed(ACTIONS.find((a) => a.name === b.dataset.action), m);
    }
    r.appendChild(bar);
    r.classList.add("acting");
  }
  pinned = pin;
}

export function hideActions() {
  if (row) row.classList.remove("acting");
  if (bar) bar.remove();
  row = null;
  pinned = false;
}

export function actionsPinned() { return pinned && !!bar && bar.isConnected; }

// ---- the actions: threads.js, reactions.js, edits.js; the link here ----------------

/** The toolbar's row was rebuilt (messages.js refreshMessage): it now sits on `fresh`. */
export function retarget(old, fresh) { if (row === old) row = fresh; }

/** The permalink of a message: /m/<num> (the hub number), else /?m=<id>. */
export function messageLink(m) {
  if (m.num !== undefined && m.num !== null) return `${location.origin}/m/${m.num}`;
  return `${location.origin}/?m=${encodeURIComponent(m.id)}`;
}

export async function copyLink(m) {
  try { await ensureNum(m); } catch (_) { /* the /?m=<id> form */ }
  const url = messageLink(m);
  if (await copyText(url)) toast("Link copied");
  else toast(url, 8000);  // no clipboard (plain http): shown to copy by hand
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    area.remove();
    return ok;
  }
}

export function wireActions() {
  const list = $("message-list");
  // Hover is a mouse's (or pen's): a finger's taps, and the mouse events a browser makes up
  // after them, must not move the toolbar under the finger.
  list.addEventListener("pointerover", (e) => {
    if (pinned || e.pointerType === "touch") return;
    const r = e.target.closest(".msg");
    if (r) showActions(r);
  });
  $("messages").addEventListener("mouseleave", () => {
    const focused = bar && bar.contains(document.activeElement)
      && document.activeElement.matches(":focus-visible");
    if (!pinned && !focused) hideActions();
  });
  list.addEventListener("focusin", (e) => {
    const r = e.target.closest(".msg");
    if (r && r !== row) showActions(r);
  });
  // A tap on a message pins its actions (a mouse has hover); another tap on it, or one
  // outside, hides them.
  list.addEventListener("pointerdown", (e) => { pointer = e.pointerType || "mouse"; });
  list.addEventListener("click", (e) => {
    if (pointer === "mouse") return;
    if (e.target.closest("a, button, input, textarea, select, img, .msg-actions")) return;
    const r = e.target.closest(".msg");
    if (!r) return;
    if (pinned && row === r) hideActions(); else showActions(r, true);
  });
  document.addEventListener("click", (e) => {
    if (pinned && !e.target.closest("#message-list")) hideActions();
  });
}
