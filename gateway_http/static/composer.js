/* The composer: sender name, message box, pasted/dropped/attached uploads, posting, and
 * the read-only mode for tokens that may not write; its error line serves the whole page. */
import { api } from "./api.js";
import { $, clip, el, fmtSize } from "./dom.js";
import { fillFrom } from "./feed.js";
import { renderMessages } from "./messages.js";
import { KEY, state } from "./state.js";

// The read-only line: index.html's, or upstream.js's while following another hub.
const readOnlyHint = () => $("composer-hint").textContent;
const COMPOSER_CONTROLS = ["sender-name", "message-input", "attach", "send", "file-input"];
const ERROR_SHOWN_MS = 6000;

export function myName() { return ($("sender-name").value || "").trim(); }

export function showComposerError(text) {
  $("composer-error").textContent = text || "";
  if (text) setTimeout(() => { if ($("composer-error").textContent === text) $("composer-error").textContent = ""; }, ERROR_SHOWN_MS);
}

/** Posting and uploads need the admin token: otherwise the composer is disabled. */
export function setReadOnly(readOnly) {
  state.readOnly = readOnly;
  for (const id of COMPOSER_CONTROLS) $(id).disabled = readOnly;
  $("composer").classList.toggle("read-only", readOnly);
  $("composer-hint").hidden = !readOnly;
  setComposerPlaceholder();
}

const NARROW = matchMedia("(max-width: 700px)");

export function setComposerPlaceholder() {
  const ch = state.current || "#general";
  $("message-input").placeholder = state.readOnly ? readOnlyHint().split(";")[0]
    : NARROW.matches ? `Message ${ch}` : `Message ${ch} — @mention an agent`;
}

function renderPending() {
  const box = $("pending");
  box.textContent = "";
  state.pending.forEach((p, i) => {
    const chip = el("span", "file-chip" + (p.meta ? "" : " uploading"));
    chip.append(p.meta ? clip() : el("span", "spinner"), el("span", null, p.name),
                el("small", null, fmtSize(p.size)));
    const x = el("button", null, "×");
    x.type = "button";
    x.title = "Remove";
    x.addEventListener("click", () => { state.pending.splice(i, 1); renderPending(); });
    chip.appendChild(x);
    box.appendChild(chip);
  });
}

async function uploadFiles(files) {
  if (state.readOnly) { showComposerError(readOnlyHint()); return; }
  for (const file of files) {
    if (state.config && file.size > state.config.media_max_size) {
      showComposerError(`${file.name} is over the ${fmtSize(state.config.media_max_size)} limit`);
      continue;
    }
    const item = { name: file.name || "pasted", size: file.size, meta: null };
    state.pending.push(item);
    renderPending();
    const form = new FormData();
    form.append("file", file, file.name || "pasted.png");
    try {
      item.meta = await api("/api/upload", { method: "POST", body: form });
    } catch (err) {
      state.pending.splice(state.pending.indexOf(item), 1);
      showComposerError(`Upload failed: ${err.message}`);
    }
    renderPending();
  }
}

async function send(event) {
  event.preventDefault();
  if (state.readOnly) { showComposerError(readOnlyHint()); return; }
  const input = $("message-input");
  const content = input.value.trim();
  const sender = myName();
  if (!sender) { showComposerError("Enter your name first."); $("sender-name").focus(); return; }
  if (state.pending.some((p) => !p.meta)) { showComposerError("Wait for uploads to finish."); return; }
  const attachments = state.pending.map((p) => p.meta);
  if (!content && !attachments.length) return;
  localStorage.setItem(KEY.name, sender);
  $("send").disabled = true;
  try {
    await api("/api/messages", { method: "POST", json: {
      sender, payload: { channel: state.current, content, attachments, metadata: { source: "dashboard" } } } });
    input.value = "";
    state.pending = [];
    renderPending();
    autosize();
    showComposerError("");
    // The message arrives on the live feed; fetch it too in case the feed is down.
    fillFrom(state.current);
  } catch (err) {
    showComposerError(`Not sent: ${err.message}`);
  } finally {
    $("send").disabled = state.readOnly;
    if (!state.readOnly) input.focus();
  }
}

function autosize() {
  const t = $("message-input");
  t.style.height = "auto";
  t.style.height = `${Math.min(180, t.scrollHeight + 2)}px`;
}

export function wireComposer() {
  NARROW.addEventListener("change", setComposerPlaceholder);
  $("composer").addEventListener("submit", send);
  $("message-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("message-input").addEventListener("input", autosize);
  $("message-input").addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length) { e.preventDefault(); uploadFiles(files); }
  });
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (e) => { uploadFiles([...e.target.files]); e.target.value = ""; });
  $("sender-name").addEventListener("change", () => {
    localStorage.setItem(KEY.name, myName());
    renderMessages(false);
  });
  const chat = $("chat");
  chat.addEventListener("dragover", (e) => { e.preventDefault(); $("drop-hint").hidden = false; });
  chat.addEventListener("dragleave", (e) => { if (e.target === chat) $("drop-hint").hidden = true; });
  chat.addEventListener("drop", (e) => {
    e.preventDefault();
    $("drop-hint").hidden = true;
    uploadFiles([...e.dataTransfer.files]);
  });
}
