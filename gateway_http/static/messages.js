/* The message list of the open channel: rendering (markdown.js: mentions, code, links,
 * lists), attachments, live appends with the "new messages" jump, and scroll-back by
 * before_seq. The actions of a message (actions.js) hang on its row. */
import { retarget } from "./actions.js";
import { api } from "./api.js";
import { addMessages, channel, markRead, renderChannels, unread } from "./channels.js";
import { myName, showComposerError } from "./composer.js";
import { $, avatar, clip, el, fmtDay, fmtSize, fmtTime, hue } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { download, showThumb } from "./media.js";
import { renderReactions } from "./reactions.js";
import { PAGE, state } from "./state.js";
import { openThread, threadMessage } from "./threads.js";

const GROUP_WITHIN_MS = 5 * 60 * 1000;
const IMAGE_RE = /\.(png|jpe?g|gif|webp|bmp|avif)$/i;

export function renderMessages(toBottom) {
  const box = $("messages");
  const list = $("message-list");
  const ch = state.channels.get(state.current);
  list.textContent = "";
  renderOlder(ch);
  if (!ch || !ch.list.length) {
    const empty = el("div", "empty");
    empty.append("No messages in ", el("b", null, state.current || ""), " yet. Say hello.");
    list.appendChild(empty);
    return;
  }
  let prev = null;
  for (const m of ch.list) {
    list.appendChild(renderMessage(m, prev, false));
    prev = m;
  }
  if (toBottom) box.scrollTop = box.scrollHeight;
}

function renderOlder(ch) {
  const older = $("older");
  older.textContent = "";
  if (!ch || !ch.loaded) { older.textContent = "Loading…"; return; }
  if (ch.complete || (ch.oldestSeq !== null && ch.oldestSeq <= 1)) {
    if (ch.list.length) older.textContent = `Beginning of ${ch.name}`;
    return;
  }
  const btn = el("button", "link", "Load older messages");
  btn.addEventListener("click", loadOlder);
  older.appendChild(btn);
}

function isHuman(m) {
  if (m.sender_type) return m.sender_type === "human";
  return !state.agents.some((a) => a.name === m.sender);
}

function renderAttachment(att) {
  const url = att.url || att.href || "";
  const name = att.filename || att.name || url.split("/").pop() || "file";
  const mime = att.mime_type || att.type || "";
  if (url.startsWith("/media/")) return renderMedia(url, name, mime, att.size);
  const safeUrl = /^https?:\/\//.test(url) ? url : "#";
  if (mime.startsWith("image/") || IMAGE_RE.test(url)) {
    const a = el("a");
    a.href = safeUrl;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    const img = el("img", "thumb");
    img.src = safeUrl;
    img.alt = name;
    img.loading = "lazy";
    a.appendChild(img);
    return a;
  }
  const chip = el("a", "file-chip");
  chip.href = safeUrl;
  chip.target = "_blank";
  chip.rel = "noopener noreferrer";
  chip.append(clip(), el("span", null, name), el("small", null, fmtSize(att.size)));
  return chip;
}

/** Our own media needs the token: fetched with the header, never linked directly. */
function renderMedia(url, name, mime, size) {
  if (mime.startsWith("image/") || IMAGE_RE.test(url)) {
    const a = el("a");
    a.href = "#";
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    const img = el("img", "thumb");
    img.alt = name;
    img.dataset.media = url;
    a.appendChild(img);
    showThumb(img);
    return a;
  }
  const chip = el("a", "file-chip");
  chip.href = "#";
  chip.append(clip(), el("span", null, name), el("small", null, fmtSize(size)));
  chip.addEventListener("click", (e) => { e.preventDefault(); download(url, name); });
  return chip;
}

/** The row of a message (with its day separator when the day changes): `inThread` for the
 * thread panel, which leaves out the thread links. */
export function renderMessage(m, prev, fresh, inThread = false) {
  const frag = document.createDocumentFragment();
  if (!prev || fmtDay(prev.ts) !== fmtDay(m.ts)) frag.appendChild(el("div", "day-sep", fmtDay(m.ts)));
  const cont = prev && prev.sender === m.sender && fmtDay(prev.ts) === fmtDay(m.ts)
    && new Date(m.ts) - new Date(prev.ts) < GROUP_WITHIN_MS;
  const me = myName();
  const mentionsMe = me && (m.mentions || []).includes(me);
  const row = el("div", "msg" + (cont ? " cont" : "") + (mentionsMe ? " mentions-me" : "") + (fresh ? " fresh" : ""));
  row.dataset.id = m.id;
  row.dataset.seq = m.seq;
  if (m.num !== undefined && m.num !== null) row.dataset.num = m.num;
  row.tabIndex = 0;  // focus shows its actions, like hover
  const human = isHuman(m);
  row.appendChild(avatar(m.sender, human));
  const head = el("div", "msg-head");
  head.appendChild(el("span", "sender", m.sender));
  head.lastChild.style.color = `hsl(${hue(m.sender)} 75% 72%)`;
  head.appendChild(el("span", "kind", human ? "human" : "agent"));
  const time = el("span", "time", fmtTime(m.ts));
  time.title = `${m.ts}  ·  seq ${m.seq}`;
  head.appendChild(time);
  row.appendChild(head);
  row.appendChild(renderBody(m, me));
  if (m.deleted) {
    row.classList.add("deleted");
    frag.appendChild(row);
    return frag;
  }
  if (m.attachments && m.attachments.length) {
    const box = el("div", "attachments");
    for (const att of m.attachments) if (att && typeof att === "object") box.appendChild(renderAttachment(att));
    row.appendChild(box);
  }
  const meta = inThread ? null : threadMeta(m);
  if (meta) row.appendChild(meta);
  const reactions = renderReactions(m);
  if (reactions) row.appendChild(reactions);
  frag.appendChild(row);
  return frag;
}

function renderBody(m, me) {
  if (m.deleted) return el("div", "msg-body tombstone", "message deleted");
  const body = el("div", "msg-body");
  body.appendChild(renderMarkdown(m.content, me));
  if (m.edited_at) {
    const mark = el("span", "edited", "(edited)");
    mark.title = `edited ${m.edited_at}`;
    body.append(" ", mark);
  }
  return body;
}

/** "N replies" under a thread's root, "in thread" under a reply (both open the panel). */
function threadMeta(m) {
  if (!m.reply_count && !m.thread) return null;
  const box = el("div", "msg-meta");
  const b = el("button", "link thread-link",
    m.reply_count ? `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}` : "in thread");
  b.type = "button";
  b.dataset.thread = m.reply_count ? "root" : "reply";
  b.addEventListener("click", (e) => { e.stopPropagation(); openThread(m); });
  box.appendChild(b);
  return box;
}

/** The objects of a message the page holds (the feed's and the thread panel's copy). */
export function findMessages(channelName, id) {
  const out = [];
  const ch = state.channels.get(channelName);
  const a = ch && ch.byId.get(id);
  if (a) out.push(a);
  const b = threadMessage(id);
  if (b && b !== a) out.push(b);
  return out;
}

/** Rebuilds the rows of one message in place (feed and thread panel): nothing else is
 * re-rendered, so a change costs the same in a feed of any length. */
export function refreshMessage(m) {
  const me = myName();
  for (const old of document.querySelectorAll(`.msg[data-id="${CSS.escape(m.id)}"]`)) {
    const inThread = !!old.closest("#side-panel");
    const fresh = renderMessage(m, null, false, inThread).lastChild;
    for (const cls of ["cont", "acting", "highlight"]) if (old.classList.contains(cls)) fresh.classList.add(cls);
    if (!me || !(m.mentions || []).includes(me)) fresh.classList.remove("mentions-me");
    const bar = old.querySelector("#msg-actions");
    if (bar) { fresh.appendChild(bar); retarget(old, fresh); }  // the toolbar stays on its row
    old.replaceWith(fresh);
  }
}

/** The hub number of a message: live frames carry none, so it is read back from history. */
export async function ensureNum(m) {
  if (m.num !== null && m.num !== undefined) return m.num;
  const rows = await api(`/api/history/${encodeURIComponent(m.channel)}?after_seq=${Math.max(0, (m.seq || 1) - 1)}&limit=5`);
  const row = rows.find((r) => r.msg_id === m.id);
  if (!row || row.num === undefined || row.num === null) throw new Error("this message has no number yet");
  m.num = row.num;
  return m.num;
}

function atBottom() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 60;
}

export function onMessagesAdded(name, added, live) {
  if (!added.length) return;
  const ch = channel(name);
  const me = myName();
  if (name !== state.current) {
    if (me) ch.mentionUnread += added.filter((m) => (m.mentions || []).includes(me)).length;
    renderChannels();
    return;
  }
  const stick = atBottom();
  const list = ch.list;
  const appendOnly = added.every((m) => list.indexOf(m) >= list.length - added.length);
  if (appendOnly && $("message-list").querySelector(".msg")) {
    for (const m of added) {
      const i = list.indexOf(m);
      $("message-list").appendChild(renderMessage(m, list[i - 1] || null, live));
    }
  } else {
    renderMessages(false);
  }
  if (stick) {
    $("messages").scrollTop = $("messages").scrollHeight;
    markRead(ch, ch.lastSeq);
  } else if (live) {
    $("jump").hidden = false;
  }
  renderChannels();
}

async function loadOlder() {
  const ch = state.channels.get(state.current);
  if (!ch || state.loadingOlder || ch.complete || !ch.oldestSeq || ch.oldestSeq <= 1) return;
  state.loadingOlder = true;
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    const rows = await api(`/api/history/${encodeURIComponent(ch.name)}?before_seq=${ch.oldestSeq}&limit=${PAGE}`);
    addMessages(ch.name, rows);
    if (rows.length < PAGE) ch.complete = true;
    if (state.current === ch.name) {
      renderMessages(false);
      box.scrollTop = box.scrollHeight - fromBottom;
    }
  } catch (err) {
    showComposerError(`Could not load older messages: ${err.message}`);
  } finally {
    state.loadingOlder = false;
  }
}

export function wireMessages() {
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 80) loadOlder();
    if (atBottom()) {
      $("jump").hidden = true;
      const ch = state.channels.get(state.current);
      if (ch && unread(ch)) { markRead(ch, ch.lastSeq); renderChannels(); }
    }
  });
  $("jump").addEventListener("click", () => {
    $("messages").scrollTop = $("messages").scrollHeight;
    $("jump").hidden = true;
  });
}
