/* The page's state, the localStorage keys it persists and the history page size. */

export const KEY = { token: "orochi.token", name: "orochi.name", ws: "orochi.workspace",
                     channel: "orochi.channel", read: "orochi.read" };
export const PAGE = 50;

export const state = {
  token: null, config: null, readOnly: true, admin: false, workspace: null, channels: new Map(), current: null,
  agents: [], ws: null, wsOpenedOnce: false, attempt: 0, reconnectTimer: null,
  pollTimer: null, pending: [], generation: 0, loadingOlder: false, agentsTimer: null,
  permalink: null, upstream: null,
};

/** Where a channel's last read seq is kept, per workspace. */
export function readKey(ch) { return `${KEY.read}.${state.workspace}.${ch}`; }
