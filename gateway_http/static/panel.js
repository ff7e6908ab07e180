/* The side panel: a thread (threads.js) or search results (search.js), one at a time, over
 * the right of the page (the whole width on phones). Closed by its button or Escape. */
import { $ } from "./dom.js";

let kind = null;  // "thread" | "search" | null
let onClose = null;

export function panelKind() { return kind; }

/** Opens the panel for `what` with a title; returns its (emptied) body. */
export function openPanel(what, title, closed = null) {
  if (kind && kind !== what && onClose) onClose();
  kind = what;
  onClose = closed;
  const panel = $("side-panel");
  panel.dataset.kind = what;
  $("side-title").textContent = title;
  const body = $("side-body");
  body.textContent = "";
  panel.hidden = false;
  return body;
}

export function closePanel() {
  if (!kind) return false;
  const done = onClose;
  kind = null;
  onClose = null;
  $("side-panel").hidden = true;
  $("side-body").textContent = "";
  if (done) done();
  return true;
}

export function wirePanel() {
  $("side-close").addEventListener("click", closePanel);
}
