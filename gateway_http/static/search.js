/* Search (GET /api/search?q=&channel=) with its results in the side panel (sender, channel,
 * snippet, time), jumps to a message (its channel opened, older pages loaded down to it,
 * scrolled to and highlighted a moment), and permalinks: /m/<num> redirects to /?m=<num>,
 * which opens at that message (GET /api/messages/<num>/ names its channel). */
import { api } from "./api.js";
import { addMessages, selectChannel } from "./channels.js";
import { dmLabel, isDm } from "./dms.js";
import { $, el, fmtDay, fmtTime, hue } from "./dom.js";
import { closeDrawer } from "./layout.js";
import { renderMessages } from "./messages.js";
import { notice } from "./notice.js";
import { closePanel, openPanel } from "./panel.js";
import { state } from "./state.js";

const SNIPPET_CHARS = 180;
const PAGE_BACK = 500;
const HIGHLIGHT_MS = 2500;
const NARROW = matchMedia("(max-width: 1100px)");

function snippet(text, words) {
  let s = String(text || "").replace(/\s+/g, " ").trim();
  const lower = s.toLowerCase();
  const at = words.map((w) => lower.indexOf(w)).filter((i) => i >= 0).sort((a, b) => a - b)[0] || 0;
  const start = Math.max(0, at - 60);
  s = (start ? "…" : "") + s.slice(start, start + SNIPPET_CHARS) + (s.length > start + SNIPPET_CHARS ? "…" : "");
  // The words found, marked with <mark> nodes: text nodes only, never HTML.
  const frag = document.createDocumentFragment();
  const re = words.length ? new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi") : null;
  let last = 0;
  if (re) {
    for (const m of s.matchAll(re)) {
      if (!m[0]) continue;
      frag.append(s.slice(last, m.index), el("mark", null, m[0]));
      last = m.index + m[0].length;
    }
  }
  frag.append(s.slice(last));
  return frag;
}

export async function runSearch(q, channelName = null) {
  q = q.trim();
  if (!q) return;
  const body = openPanel("search", `Search: ${q}`);
  const status = el("p", "muted search-status", "Searching…");
  body.appendChild(status);
  const params = new URLSearchParams({ q });
  if (channelName) params.set("channel", channelName);
  let data;
  try {
    data = await api(`/api/search?${params}`);
  } catch (err) {
    status.textContent = `Search failed: ${err.message}`;
    status.className = "error search-status";
    return;
  }
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  const results = data.results || [];
  status.textContent = results.length ? `${results.length} result${results.length === 1 ? "" : "s"}` : "No messages found";
  const ul = el("ul", "search-results");
  for (const r of results) {
    const li = el("li", "search-result");
    li.dataset.num = r.num;
    li.tabIndex = 0;
    li.setAttribute("role", "button");
    const head = el("div", "result-head");
    const who = el("span", "sender", r.sender);
    who.style.color = `hsl(${hue(r.sender)} 75% 72%)`;
    const time = el("span", "time", `${fmtDay(r.ts)} ${fmtTime(r.ts)}`);
    time.title = r.ts;
    head.append(who, el("span", "result-channel", isDm(r.channel) ? dmLabel(r.channel) : r.channel), time);
    const text = el("div", "result-snippet");
    text.appendChild(snippet(r.content, words));
    li.append(head, text);
    const go = () => { if (NARROW.matches) closePanel(); jumpTo(r.channel, r); };
    li.addEventListener("click", go);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    ul.appendChild(li);
  }
  body.appendChild(ul);
}

/** Opens `channelName` at the message `target` ({msg_id|id, seq}), loading older pages
 * down to it, then scrolls to it and highlights it. */
export async function jumpTo(channelName, target) {
  const id = target.msg_id || target.id;
  closeDrawer(false);
  await selectChannel(channelName);
  const ch = state.channels.get(channelName);
  if (!ch || state.current !== channelName) return;
  if (!ch.byId.has(id)) {
    try {
      while (!ch.byId.has(id) && !ch.complete && ch.oldestSeq && ch.oldestSeq > (target.seq || 0)) {
        const rows = await api(`/api/history/${encodeURIComponent(channelName)}?before_seq=${ch.oldestSeq}&limit=${PAGE_BACK}`);
        addMessages(channelName, rows);
        if (rows.length < PAGE_BACK) ch.complete = true;
      }
    } catch (err) {
      notice(`Could not load the message: ${err.message}`, err.status);
    }
    if (state.current !== channelName) return;
    renderMessages(false);
  }
  const row = document.querySelector(`#message-list .msg[data-id="${CSS.escape(id)}"]`);
  if (!row) { notice("That message is not in this channel any more.", 404); return; }
  highlight(row);
}

function highlight(row) {
  for (const r of document.querySelectorAll("#message-list .msg.highlight")) r.classList.remove("highlight");
  row.scrollIntoView({ block: "center" });
  row.classList.add("highlight");
  setTimeout(() => row.classList.remove("highlight"), HIGHLIGHT_MS);
}

/** /?m=<num>: opens the channel of that message at it. */
export async function openPermalink(num) {
  let row;
  try {
    row = await api(`/api/messages/${encodeURIComponent(num)}/`);
  } catch (err) {
    notice(`Message #${num} could not be opened: ${err.message}`, err.status);
    return;
  }
  await jumpTo(row.channel, row);
}

export function wireSearch() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runSearch($("search-input").value);
  });
}
