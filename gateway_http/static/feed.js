/* The live feed: the observer socket (/ws), opened with a single-use ticket so the token
 * stays out of its URL, reconnecting with backoff; after a reconnect, and whenever a
 * channel's seq jumps, the gap is filled from /api/history/{ch}?after_seq=. */
import { refreshAgents, renderAgents, scheduleAgentRefresh } from "./agents.js";
import { api } from "./api.js";
import { addMessages, channel, loadChannels, markRead, renderChannels } from "./channels.js";
import { showComposerError } from "./composer.js";
import { $ } from "./dom.js";
import { onMessageDelete, onMessageEdit } from "./edits.js";
import { onMessagesAdded, refreshMessage } from "./messages.js";
import { onReactionUpdate } from "./reactions.js";
import { showSignin } from "./signin.js";
import { state } from "./state.js";
import { onThreadReply } from "./threads.js";
import { noteFeed, socketUrl } from "./upstream.js";

const RESUME_PAGE = 500;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 10000];

/** Fetch everything after the last seq seen: no gaps after a reconnect or a bus drop. */
export async function fillFrom(name) {
  const ch = channel(name);
  if (ch.filling) return;
  ch.filling = true;
  const gen = state.generation;
  try {
    for (;;) {
      const rows = await api(`/api/history/${encodeURIComponent(name)}?after_seq=${ch.lastSeq}&limit=${RESUME_PAGE}&events=1`);
      if (gen !== state.generation) return;
      // The stream after lastSeq: messages, and the edits, deletes and reactions missed
      // while the socket was down (rows with `event`), applied in seq order.
      const messages = rows.filter((r) => !r.event);
      onMessagesAdded(name, addMessages(name, messages), true);
      for (const r of rows) {
        if (!r.event || !EVENTS[r.event]) continue;
        const { event, id, ts, ...payload } = r;
        onEvent({ type: event, sender: "orochi-server", id, ts, payload });
      }
      if (rows.length < RESUME_PAGE) break;
    }
  } catch (_) { /* retried on the next reconnect */ } finally {
    ch.filling = false;
  }
}

function setConn(kind, text) {
  const c = $("conn");
  c.className = `conn conn-${kind}`;
  c.textContent = text;
  c.title = text;
  const dot = $("head-conn");  // the channel header's copy, for phones (the sidebar is a drawer)
  dot.className = `head-conn is-${kind}`;
  dot.title = text;
}

export function closeSocket() {
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close();
    state.ws = null;
  }
  state.wsOpenedOnce = false;
  state.attempt = 0;
}

function scheduleReconnect() {
  const delay = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  state.attempt += 1;
  noteFeed(false);  // following: the banner says the upstream's feed is refused or down
  setConn("offline", `offline — retrying in ${Math.round(delay / 1000)}s`);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, delay);
}

/** The live socket, opened with a single-use ticket so the token stays out of its URL. */
export async function connect() {
  const gen = state.generation;
  const token = state.token;
  setConn("connecting", state.wsOpenedOnce ? "reconnecting…" : "connecting…");
  let ticket;
  try {
    ticket = (await api("/api/ws-ticket", { method: "POST", noWorkspace: true })).ticket;
  } catch (err) {
    if (gen !== state.generation || token !== state.token) return;
    if (err.status === 401) { showSignin("The token was refused by the live feed."); return; }
    scheduleReconnect();
    return;
  }
  if (gen !== state.generation || token !== state.token || state.ws) return;
  const url = socketUrl();
  url.searchParams.set("ticket", ticket);
  if (state.config.is_admin && state.workspace) url.searchParams.set("workspace", state.workspace);
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    const resumed = state.wsOpenedOnce;
    state.wsOpenedOnce = true;
    state.attempt = 0;
    setConn("live", "live");
    noteFeed(true);
    if (resumed) {
      for (const ch of state.channels.values()) if (ch.loaded || ch.lastSeq) fillFrom(ch.name);
      loadChannels();
      refreshAgents();
    }
  };
  ws.onmessage = (event) => {
    if (gen !== state.generation) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    onFrame(frame);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    // Also on 4001: the ticket was refused; a new one is asked for, and a token that is
    // no longer valid then shows the sign-in form.
    scheduleReconnect();
  };
}

const EVENTS = { reaction_update: onReactionUpdate, message_edit: onMessageEdit,
                 message_delete: onMessageDelete };

/** A change event takes a seq of its channel's stream too: a jump past it is a gap; with
 * nothing unread before it, it leaves the channel read (it is no message). */
function onEvent(frame) {
  const p = frame.payload || {};
  if (!p.channel || !state.channels.has(p.channel)) return;
  const ch = channel(p.channel);
  if (typeof p.seq === "number") {
    if (ch.loaded && ch.lastSeq && p.seq > ch.lastSeq + 1) fillFrom(p.channel);
    const caughtUp = (ch.readSeq || 0) >= ch.lastSeq;
    ch.lastSeq = Math.max(ch.lastSeq, p.seq);
    if (caughtUp || p.channel === state.current) markRead(ch, ch.lastSeq);
  }
  EVENTS[frame.type](p);
}

function onFrame(frame) {
  if (frame.type === "message" && frame.payload && frame.payload.channel) {
    const name = frame.payload.channel;
    const isNew = !state.channels.has(name);
    const ch = channel(name);
    const seq = frame.payload.seq;
    const gap = ch.loaded && typeof seq === "number" && ch.lastSeq && seq > ch.lastSeq + 1;
    if (isNew && typeof seq === "number") markRead(ch, seq - 1);
    const added = addMessages(name, [frame]);
    onMessagesAdded(name, added, true);
    if (frame.payload.thread) {
      const m = added[0] || ch.byId.get(frame.id);
      const root = m && onThreadReply(m, added.length > 0);
      if (root) refreshMessage(root);
    }
    if (gap) fillFrom(name);
    if (isNew) renderChannels();
  } else if (EVENTS[frame.type]) {
    onEvent(frame);
  } else if (frame.type === "presence_change" || frame.type === "status_update") {
    const p = frame.payload || {};
    const agent = state.agents.find((a) => a.name === p.agent);
    if (agent && frame.type === "status_update") {
      agent.status = p.status;
      agent.current_task = p.current_task;
      renderAgents();
    }
    scheduleAgentRefresh();
  } else if (frame.type === "error") {
    showComposerError(frame.payload ? frame.payload.detail : "error");
  }
}
