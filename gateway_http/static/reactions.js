/* Reactions: chips under a message (emoji, count, who reacted in the title), toggled by a
 * click (POST/DELETE /api/reactions/), an emoji picker from the react action (a fixed set
 * plus a field for any emoji, 1..32 characters), and live reaction_update events. Each
 * change rebuilds only that message's row. */
import { api } from "./api.js";
import { canWrite } from "./actions.js";
import { myName } from "./composer.js";
import { $, el } from "./dom.js";
import { ensureNum, findMessages, refreshMessage } from "./messages.js";
import { notice } from "./notice.js";

export const EMOJI = ["👍", "👎", "❤️", "🎉", "😄", "😮", "😢", "🙏",
                      "🚀", "👀", "✅", "❌", "🔥", "💯", "🤔", "⚠️"];
const MAX_EMOJI_CHARS = 32;
const BAD_EMOJI_RE = /[\s\p{Cc}]/u;

let picker = null;  // { box, m } while the picker is open

/** The chips of a message's reactions, or null when it has none. */
export function renderReactions(m) {
  const entries = Object.entries(m.reactions || {}).filter(([, who]) => who.length);
  if (!entries.length) return null;
  const me = myName();
  const box = el("div", "reactions");
  for (const [emoji, who] of entries) {
    const chip = el("button", "reaction" + (me && who.includes(me) ? " mine" : ""));
    chip.type = "button";
    chip.dataset.emoji = emoji;
    chip.title = `${who.join(", ")} reacted with ${emoji}`;
    chip.setAttribute("aria-pressed", me && who.includes(me) ? "true" : "false");
    chip.append(el("span", "reaction-emoji", emoji), el("span", "reaction-count", String(who.length)));
    chip.disabled = !canWrite();
    chip.addEventListener("click", (e) => { e.stopPropagation(); toggleReaction(m, emoji); });
    box.appendChild(chip);
  }
  if (canWrite()) {
    const add = el("button", "reaction add-reaction", "+");
    add.type = "button";
    add.title = "Add reaction";
    add.setAttribute("aria-label", "Add reaction");
    add.addEventListener("click", (e) => { e.stopPropagation(); pickReaction(m, add); });
    box.appendChild(add);
  }
  return box;
}

/** Applies one reaction change to `m` unless a later one for the same (emoji, reactor) was
 * applied already (the REST answer and the live event may arrive in either order). */
function apply(m, emoji, reactor, action, seq) {
  m.reactSeq = m.reactSeq || {};
  const key = `${emoji}\n${reactor}`;
  if (typeof seq === "number") {
    if ((m.reactSeq[key] || 0) >= seq) return false;
    m.reactSeq[key] = seq;
  }
  const reactions = { ...(m.reactions || {}) };
  const who = (reactions[emoji] || []).filter((r) => r !== reactor);
  if (action === "add") who.push(reactor);
  if (who.length) reactions[emoji] = who; else delete reactions[emoji];
  m.reactions = reactions;
  return true;
}

/** A live `reaction_update` event. */
export function onReactionUpdate(p) {
  for (const m of findMessages(p.channel, p.message)) {
    if (apply(m, p.emoji, p.reactor, p.action, p.seq)) refreshMessage(m);
  }
}

export async function toggleReaction(m, emoji) {
  const me = myName();
  if (!me) { notice("Enter your name first: reactions are made under it."); $("sender-name").focus(); return; }
  const mine = (m.reactions[emoji] || []).includes(me);
  try {
    const num = await ensureNum(m);
    const body = { message_id: num, emoji, reactor: me };
    const res = await api("/api/reactions/", { method: mine ? "DELETE" : "POST", json: body });
    if (apply(m, emoji, me, mine ? "remove" : "add", res.seq)) refreshMessage(m);
  } catch (err) {
    notice(`Reaction not ${mine ? "removed" : "added"}: ${err.message}`, err.status);
  }
}

/** Whether `text` is an emoji the hub takes: 1..32 characters, no spaces or controls. */
export function validEmoji(text) {
  const n = [...text].length;
  return n >= 1 && n <= MAX_EMOJI_CHARS && !BAD_EMOJI_RE.test(text);
}

export function closePicker() {
  if (!picker) return false;
  picker.box.remove();
  picker = null;
  return true;
}

export function pickerOpen() { return !!picker; }

/** The emoji picker next to `anchor`; a choice toggles the viewer's reaction on `m`. */
export function pickReaction(m, anchor) {
  closePicker();
  const box = el("div", "emoji-picker");
  box.id = "emoji-picker";
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-label", "Pick a reaction");
  const grid = el("div", "emoji-grid");
  for (const emoji of EMOJI) {
    const b = el("button", "emoji", emoji);
    b.type = "button";
    b.title = emoji;
    b.dataset.emoji = emoji;
    b.addEventListener("click", () => { closePicker(); toggleReaction(m, emoji); });
    grid.appendChild(b);
  }
  const form = el("form", "emoji-other");
  const input = el("input");
  input.id = "emoji-input";
  input.placeholder = "any emoji";
  input.maxLength = 64;
  input.setAttribute("aria-label", "Any emoji");
  const ok = el("button", "primary", "Add");
  ok.type = "submit";
  const err = el("p", "error emoji-error");
  form.append(input, ok);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!validEmoji(text)) { err.textContent = "1 to 32 characters, no spaces"; return; }
    closePicker();
    toggleReaction(m, text);
  });
  box.append(grid, form, err);
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); closePicker(); }
  });
  document.body.appendChild(box);
  picker = { box, m };
  place(box, anchor);
  grid.firstChild.focus({ preventScroll: true });
}

function place(box, anchor) {
  if (matchMedia("(max-width: 700px)").matches) return;  // a bottom sheet on phones (CSS)
  const r = anchor.getBoundingClientRect();
  const w = box.offsetWidth, h = box.offsetHeight;
  const left = Math.max(8, Math.min(r.right - w, innerWidth - w - 8));
  const top = r.bottom + 6 + h < innerHeight ? r.bottom + 6 : Math.max(8, r.top - h - 6);
  box.style.left = `${left}px`;
  box.style.top = `${top}px`;
}

export function wireReactions() {
  document.addEventListener("click", (e) => {
    if (picker && !e.target.closest("#emoji-picker")) closePicker();
  });
}
