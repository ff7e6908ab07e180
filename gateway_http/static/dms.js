/* The DM list of the channel panel: GET /api/workspace/<slug>/dms/ for the admin token
 * (every DM of the workspace); a workspace token's DMs (those of the name it is pinned to)
 * come with /api/channels/summary, which lists what the token may read, so the page never
 * asks the route that would refuse an unpinned token. Plus DMs met on the live feed.
 * A DM opens like a channel, its history by the history route. */
import { api } from "./api.js";
import { channel, selectChannel, unread } from "./channels.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

export const isDm = (name) => typeof name === "string" && name.startsWith("dm:");

/** "alice ↔ bob" for dm:agent:alice|agent:bob (a person's name marked with a dot). */
export function dmLabel(name) {
  return name.slice(3).split("|").map((p) => {
    const [kind, ...rest] = p.split(":");
    return kind === "human" ? `${rest.join(":")} ·` : rest.join(":");
  }).join(" ↔ ");
}

export async function loadDms() {
  const gen = state.generation;
  let rows = [];
  if (!state.admin) { renderDms(); return; }
  try {
    rows = (await api(`/api/workspace/${encodeURIComponent(state.workspace)}/dms/`)).dms || [];
  } catch (_) { rows = []; }  // a token without a name has no DMs
  if (gen !== state.generation) return;
  for (const row of rows) {
    const ch = channel(row.name);
    ch.lastSeq = Math.max(ch.lastSeq, row.last_seq || 0);
    if (ch.readSeq === null) ch.readSeq = ch.lastSeq;
  }
  renderDms();
}

export function renderDms() {
  const ul = $("dms");
  ul.textContent = "";
  const names = [...state.channels.keys()].filter(isDm).sort();
  $("dms-head").hidden = !names.length;
  for (const name of names) {
    const ch = state.channels.get(name);
    const n = name === state.current ? 0 : unread(ch);
    const li = el("li", "channel dm" + (name === state.current ? " active" : "") + (n ? " unread" : ""));
    li.dataset.channel = name;
    li.tabIndex = 0;
    li.title = name;
    li.appendChild(el("span", "channel-name", dmLabel(name)));
    if (n) li.appendChild(el("span", "badge", n > 99 ? "99+" : String(n)));
    li.addEventListener("click", () => selectChannel(name));
    ul.appendChild(li);
  }
}
