/* Channels: each channel's messages (deduplicated by id) and read state, the channel list
 * with unread and mention badges, and switching channels. */
import { api } from "./api.js";
import { setComposerPlaceholder, showComposerError } from "./composer.js";
import { dmLabel, isDm, loadDms, renderDms } from "./dms.js";
import { $, el } from "./dom.js";
import { renderMessages } from "./messages.js";
import { KEY, PAGE, readKey, state } from "./state.js";

export function channel(name) {
  let ch = state.channels.get(name);
  if (!ch) {
    ch = { name, byId: new Map(), list: [], lastSeq: 0, oldestSeq: null, loaded: false,
           members: [], readSeq: null, mentionUnread: 0, filling: false };
    const stored = localStorage.getItem(readKey(name));
    ch.readSeq = stored === null ? null : Number(stored);
    state.channels.set(name, ch);
  }
  return ch;
}

/** A message as the page keeps it, from a live frame or a (folded) history row: beside
 * the envelope, `num`, `edited_at`, `deleted`, `reactions` {emoji: [reactor]}, `thread`
 * {root, num} on a reply and `reply_count` on a root (docs/conversations.md). */
export function normalize(m) {
  const r = m.payload ? { ...m.payload, msg_id: m.id, ts: m.ts, sender: m.sender } : m;
  return { id: r.msg_id, num: r.num ?? null, seq: r.seq, ts: r.ts, sender: r.sender, channel: r.channel,
           content: r.content || "", mentions: r.mentions || [], attachments: r.attachments || [],
           metadata: r.metadata || {}, sender_type: r.sender_type || null,
           edited_at: r.edited_at || null, deleted: !!r.deleted, reactions: r.reactions || {},
           thread: r.thread || null, reply_count: r.reply_count || 0 };
}

/** Adds messages to a channel; returns those that were new. */
export function addMessages(name, rows) {
  const ch = channel(name);
  const added = [];
  for (const row of rows) {
    const m = normalize(row);
    if (!m.id || ch.byId.has(m.id)) continue;
    ch.byId.set(m.id, m);
    added.push(m);
    if (typeof m.seq === "number") {
      ch.lastSeq = Math.max(ch.lastSeq, m.seq);
      ch.oldestSeq = ch.oldestSeq === null ? m.seq : Math.min(ch.oldestSeq, m.seq);
    }
  }
  if (added.length) ch.list = [...ch.byId.values()].sort((a, b) => (a.seq || 0) - (b.seq || 0));
  return added;
}

export async function loadChannels() {
  const gen = state.generation;
  let summary = { channels: [] };
  try { summary = await api("/api/channels/summary"); } catch (_) { /* shown as empty */ }
  if (gen !== state.generation) return;
  for (const row of summary.channels) {
    const ch = channel(row.name);
    ch.members = row.members;
    ch.lastSeq = Math.max(ch.lastSeq, row.last_seq);
    if (ch.readSeq === null) markRead(ch, row.last_seq);  // first visit: start from now
  }
  renderChannels();
  await loadDms();
}

export function unread(ch) { return Math.max(0, ch.lastSeq - (ch.readSeq || 0)); }

export function markRead(ch, seq) {
  ch.readSeq = Math.max(ch.readSeq || 0, seq);
  ch.mentionUnread = 0;
  localStorage.setItem(readKey(ch.name), String(ch.readSeq));
}

export function renderChannels() {
  const ul = $("channels");
  ul.textContent = "";
  let total = 0;
  const names = [...state.channels.keys()].sort();
  for (const name of names) {
    const ch = state.channels.get(name);
    const n = name === state.current ? 0 : unread(ch);
    total += n;
    if (isDm(name)) continue;  // in the DM list (dms.js)
    const li = el("li", "channel" + (name === state.current ? " active" : "") + (n ? " unread" : ""));
    li.dataset.channel = name;
    li.tabIndex = 0;
    li.appendChild(el("span", "channel-name", name));
    if (ch.members.length) {
      const m = el("span", "members", String(ch.members.length));
      m.title = ch.members.join(", ");
      li.appendChild(m);
    }
    if (n) li.appendChild(el("span", "badge" + (ch.mentionUnread ? " mention" : ""), n > 99 ? "99+" : String(n)));
    li.addEventListener("click", () => selectChannel(name));
    ul.appendChild(li);
  }
  document.title = total ? `(${total}) Orochi` : "Orochi";
  renderDms();
}

/** Opens a channel (or DM); resolves once its history is shown. */
export async function selectChannel(name) {
  const ch = channel(name);
  state.current = name;
  localStorage.setItem(`${KEY.channel}.${state.workspace}`, name);
  $("channel-title").textContent = isDm(name) ? dmLabel(name) : name;
  setComposerPlaceholder();
  renderChannelMeta();
  renderChannels();
  if (!ch.loaded) {
    const gen = state.generation;
    try {
      const rows = await api(`/api/history/${encodeURIComponent(name)}?limit=${PAGE}`);
      if (gen !== state.generation) return;
      addMessages(name, rows);
      ch.loaded = true;
      ch.complete = rows.length < PAGE;
    } catch (err) {
      showComposerError(`Could not load history: ${err.message}`);
    }
  }
  if (state.current !== name) return;
  markRead(ch, ch.lastSeq);
  renderMessages(true);
  renderChannels();
}

export function renderChannelMeta() {
  const ch = state.channels.get(state.current);
  const members = ch ? ch.members.length : 0;
  $("channel-meta").textContent = members ? `${members} agent${members === 1 ? "" : "s"} here` : "no agents here yet";
}
