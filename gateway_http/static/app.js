/* Orochi dashboard: live view of a workspace over the observer WebSocket, REST for the rest.
 *
 * - Sign-in: /?token=<token> (kept in localStorage, removed from the URL) or the form.
 *   The token never goes into a URL the page requests: REST and media are fetched with
 *   an Authorization header, and the live socket opens with a single-use ticket.
 * - Live: POST /api/ws-ticket, then /ws?ticket=...; messages, presence_change and
 *   status_update.
 * - Media (/media/...) is fetched with the header and shown through blob: URLs; images
 *   load when they scroll into view, other files on click.
 * - Resume without gaps: after a reconnect, and whenever a channel's seq jumps, fetch
 *   /api/history/{ch}?after_seq=<last seq seen>; messages are deduplicated by id.
 * - Scroll-back: /api/history/{ch}?before_seq=<oldest seq shown>.
 * - Writes (posting, uploads) need the admin token: /api/whoami tells; with any other
 *   token the composer is disabled and says so.
 */
(() => {
  "use strict";

  const KEY = { token: "orochi.token", name: "orochi.name", ws: "orochi.workspace",
                channel: "orochi.channel", read: "orochi.read" };
  const AGENT_POLL_MS = 5000;
  const PAGE = 50;
  const RESUME_PAGE = 500;
  const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 10000];
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const IMAGE_RE = /\.(png|jpe?g|gif|webp|bmp|avif)$/i;
  const READ_ONLY_HINT = "Read-only: sign in with the admin token to post";
  const COMPOSER_CONTROLS = ["sender-name", "message-input", "attach", "send", "file-input"];
  const MEDIA_CACHE_MAX = 200;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null, config: null, readOnly: true, workspace: null, channels: new Map(), current: null,
    agents: [], ws: null, wsOpenedOnce: false, attempt: 0, reconnectTimer: null,
    pollTimer: null, pending: [], generation: 0, loadingOlder: false, agentsTimer: null,
  };

  // ---- small helpers -------------------------------------------------------------
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function hue(name) {
    let h = 0;
    for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }
  function avatar(name, human) {
    const a = el("div", "avatar" + (human ? " human" : ""));
    const parts = String(name || "?").split(/[\s_\-@.]+/).filter(Boolean);
    a.textContent = ((parts[0] || "?")[0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
    a.style.background = `hsl(${hue(name)} 70% 68%)`;
    return a;
  }
  function fmtTime(ts) {
    const d = new Date(ts);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function fmtDay(ts) {
    const d = new Date(ts);
    if (isNaN(d)) return "";
    const today = new Date();
    const yesterday = new Date(Date.now() - 864e5);
    if (d.toDateString() === today.toDateString()) return "Today";
    if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
    return d.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" });
  }
  function fmtSize(n) {
    if (!n && n !== 0) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1048576).toFixed(1)} MB`;
  }
  function ago(s) {
    if (s === null || s === undefined) return "never";
    if (s < 5) return "just now";
    if (s < 60) return `${Math.round(s)}s ago`;
    if (s < 3600) return `${Math.round(s / 60)}m ago`;
    return `${Math.round(s / 3600)}h ago`;
  }
  function clip() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    svg.appendChild(path);
    return svg;
  }
  function myName() { return ($("sender-name").value || "").trim(); }
  function readKey(ch) { return `${KEY.read}.${state.workspace}.${ch}`; }

  // ---- REST ----------------------------------------------------------------------
  async function api(path, opts = {}) {
    const url = new URL(path, location.origin);
    if (state.config && state.config.is_admin && state.workspace && !opts.noWorkspace) {
      url.searchParams.set("workspace", state.workspace);
    }
    const headers = Object.assign({}, opts.headers || {});
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const resp = await fetch(url, { method: opts.method || "GET", headers, body });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      const err = new Error((data && data.error) || `HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // ---- media: fetched with the token in a header, shown through blob: URLs -------------
  const mediaCache = new Map();  // /media/... -> Promise of an object URL, oldest first

  function mediaUrl(url) {
    let pending = mediaCache.get(url);
    if (!pending) {
      pending = fetch(url, { headers: { Authorization: `Bearer ${state.token}` } })
        .then(async (resp) => {
          if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
          return URL.createObjectURL(await resp.blob());
        });
      pending.catch(() => mediaCache.delete(url));
      mediaCache.set(url, pending);
      while (mediaCache.size > MEDIA_CACHE_MAX) {
        const [oldest, old] = mediaCache.entries().next().value;
        mediaCache.delete(oldest);
        old.then((blobUrl) => URL.revokeObjectURL(blobUrl), () => {});
      }
    }
    return pending;
  }

  function forgetMedia() {
    for (const pending of mediaCache.values()) pending.then((u) => URL.revokeObjectURL(u), () => {});
    mediaCache.clear();
  }

  function loadThumb(img) {
    const link = img.parentElement;
    mediaUrl(img.dataset.media).then((blobUrl) => {
      img.src = blobUrl;
      if (link) link.href = blobUrl;
    }, () => { img.alt = `${img.alt} (not available)`; img.classList.add("missing"); });
  }

  const thumbObserver = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) { thumbObserver.unobserve(entry.target); loadThumb(entry.target); }
      }
    }, { rootMargin: "300px" })
    : null;

  async function download(url, name) {
    try {
      const blobUrl = await mediaUrl(url);
      const a = el("a");
      a.href = blobUrl;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (err) {
      showComposerError(`Could not fetch ${name}: ${err.message}`);
    }
  }

  // ---- sign in -------------------------------------------------------------------
  function showSignin(message) {
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("signin-token").focus();
  }

  async function signIn(token) {
    forgetMedia();
    state.token = token;
    try {
      state.config = await api("/api/config", { noWorkspace: true });
      const who = await api("/api/whoami", { noWorkspace: true });
      setReadOnly(!who.admin);
    } catch (err) {
      state.token = null;
      localStorage.removeItem(KEY.token);
      showSignin(err.status === 401 ? "That token was not accepted." : `Cannot reach the hub: ${err.message}`);
      return;
    }
    localStorage.setItem(KEY.token, token);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("whoami").textContent = state.config.is_admin ? "admin" : `workspace ${state.config.workspace}`;
    $("sender-name").value = localStorage.getItem(KEY.name) || "";
    await loadWorkspaces();
    await openWorkspace(localStorage.getItem(KEY.ws) || state.config.default_workspace);
  }

  /** Posting and uploads need the admin token: otherwise the composer is disabled. */
  function setReadOnly(readOnly) {
    state.readOnly = readOnly;
    for (const id of COMPOSER_CONTROLS) $(id).disabled = readOnly;
    $("composer").classList.toggle("read-only", readOnly);
    $("composer-hint").hidden = !readOnly;
    setComposerPlaceholder();
  }

  function setComposerPlaceholder() {
    $("message-input").placeholder = state.readOnly ? READ_ONLY_HINT
      : `Message ${state.current || "#general"} — @mention an agent`;
  }

  async function loadWorkspaces() {
    const select = $("workspace");
    select.textContent = "";
    let rows = [];
    try { rows = (await api("/api/workspaces", { noWorkspace: true })).workspaces || []; } catch (_) { rows = []; }
    if (!rows.length) rows = [{ id: state.config.default_workspace, name: state.config.default_workspace }];
    for (const ws of rows) {
      const opt = el("option", null, ws.name === ws.id ? ws.id : `${ws.name} (${ws.id})`);
      opt.value = ws.id;
      select.appendChild(opt);
    }
    select.disabled = !state.config.is_admin || rows.length < 2;
  }

  async function openWorkspace(id) {
    const select = $("workspace");
    if (![...select.options].some((o) => o.value === id)) id = select.options[0].value;
    select.value = id;
    state.workspace = id;
    localStorage.setItem(KEY.ws, id);
    state.generation += 1;
    state.channels = new Map();
    state.current = null;
    closeSocket();
    connect();
    await loadChannels();
    const wanted = localStorage.getItem(`${KEY.channel}.${id}`);
    const first = state.channels.has(wanted) ? wanted
      : state.channels.has("#general") ? "#general" : [...state.channels.keys()][0] || "#general";
    await selectChannel(first);
    refreshAgents();
    clearInterval(state.pollTimer);
    state.pollTimer = setInterval(refreshAgents, AGENT_POLL_MS);
  }

  // ---- channels and messages -----------------------------------------------------
  function channel(name) {
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

  function normalize(m) {
    if (m.payload) {  // a live frame
      const p = m.payload;
      return { id: m.id, seq: p.seq, ts: m.ts, sender: m.sender, channel: p.channel,
               content: p.content || "", mentions: p.mentions || [], attachments: p.attachments || [],
               metadata: p.metadata || {}, sender_type: p.sender_type || null };
    }
    return { id: m.msg_id, seq: m.seq, ts: m.ts, sender: m.sender, channel: m.channel,
             content: m.content || "", mentions: m.mentions || [], attachments: m.attachments || [],
             metadata: m.metadata || {}, sender_type: m.sender_type || null };
  }

  /** Adds messages to a channel; returns those that were new. */
  function addMessages(name, rows) {
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

  async function loadChannels() {
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
  }

  function unread(ch) { return Math.max(0, ch.lastSeq - (ch.readSeq || 0)); }

  function markRead(ch, seq) {
    ch.readSeq = Math.max(ch.readSeq || 0, seq);
    ch.mentionUnread = 0;
    localStorage.setItem(readKey(ch.name), String(ch.readSeq));
  }

  function renderChannels() {
    const ul = $("channels");
    ul.textContent = "";
    let total = 0;
    const names = [...state.channels.keys()].sort();
    for (const name of names) {
      const ch = state.channels.get(name);
      const n = name === state.current ? 0 : unread(ch);
      total += n;
      const li = el("li", "channel" + (name === state.current ? " active" : "") + (n ? " unread" : ""));
      li.dataset.channel = name;
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
  }

  async function selectChannel(name) {
    const ch = channel(name);
    state.current = name;
    localStorage.setItem(`${KEY.channel}.${state.workspace}`, name);
    $("channel-title").textContent = name;
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

  function renderChannelMeta() {
    const ch = state.channels.get(state.current);
    const members = ch ? ch.members.length : 0;
    $("channel-meta").textContent = members ? `${members} agent${members === 1 ? "" : "s"} here` : "no agents here yet";
  }

  function renderMessages(toBottom) {
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

  function renderContent(text, mine) {
    const frag = document.createDocumentFragment();
    const re = /(`[^`\n]+`)|(https?:\/\/[^\s<>"]+)|(^|[^\w@.])@([\w-]+)/g;
    let last = 0;
    let match;
    while ((match = re.exec(text)) !== null) {
      let start = match.index;
      if (match[4] !== undefined) start += match[3].length;
      frag.append(text.slice(last, start));
      if (match[1]) {
        frag.appendChild(el("code", null, match[1].slice(1, -1)));
      } else if (match[2]) {
        const a = el("a", null, match[2]);
        a.href = match[2];
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        frag.appendChild(a);
      } else {
        const name = match[4];
        frag.appendChild(el("span", "mention" + (mine && name === mine ? " me" : ""), `@${name}`));
      }
      last = re.lastIndex;
    }
    frag.append(text.slice(last));
    return frag;
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
      if (thumbObserver) thumbObserver.observe(img); else loadThumb(img);
      return a;
    }
    const chip = el("a", "file-chip");
    chip.href = "#";
    chip.append(clip(), el("span", null, name), el("small", null, fmtSize(size)));
    chip.addEventListener("click", (e) => { e.preventDefault(); download(url, name); });
    return chip;
  }

  function renderMessage(m, prev, fresh) {
    const frag = document.createDocumentFragment();
    if (!prev || fmtDay(prev.ts) !== fmtDay(m.ts)) frag.appendChild(el("div", "day-sep", fmtDay(m.ts)));
    const cont = prev && prev.sender === m.sender && fmtDay(prev.ts) === fmtDay(m.ts)
      && new Date(m.ts) - new Date(prev.ts) < GROUP_WITHIN_MS;
    const me = myName();
    const mentionsMe = me && (m.mentions || []).includes(me);
    const row = el("div", "msg" + (cont ? " cont" : "") + (mentionsMe ? " mentions-me" : "") + (fresh ? " fresh" : ""));
    row.dataset.id = m.id;
    row.dataset.seq = m.seq;
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
    const body = el("div", "msg-body");
    body.appendChild(renderContent(m.content, me));
    row.appendChild(body);
    if (m.attachments && m.attachments.length) {
      const box = el("div", "attachments");
      for (const att of m.attachments) if (att && typeof att === "object") box.appendChild(renderAttachment(att));
      row.appendChild(box);
    }
    frag.appendChild(row);
    return frag;
  }

  function atBottom() {
    const box = $("messages");
    return box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  }

  function onMessagesAdded(name, added, live) {
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

  /** Fetch everything after the last seq seen: no gaps after a reconnect or a bus drop. */
  async function fillFrom(name) {
    const ch = channel(name);
    if (ch.filling) return;
    ch.filling = true;
    const gen = state.generation;
    try {
      for (;;) {
        const rows = await api(`/api/history/${encodeURIComponent(name)}?after_seq=${ch.lastSeq}&limit=${RESUME_PAGE}`);
        if (gen !== state.generation) return;
        onMessagesAdded(name, addMessages(name, rows), true);
        if (rows.length < RESUME_PAGE) break;
      }
    } catch (_) { /* retried on the next reconnect */ } finally {
      ch.filling = false;
    }
  }

  // ---- live socket ---------------------------------------------------------------
  function setConn(kind, text) {
    const c = $("conn");
    c.className = `conn conn-${kind}`;
    c.textContent = text;
    c.title = text;
  }

  function closeSocket() {
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
    setConn("offline", `offline — retrying in ${Math.round(delay / 1000)}s`);
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  /** The live socket, opened with a single-use ticket so the token stays out of its URL. */
  async function connect() {
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
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = new URL(`${proto}//${location.host}/ws`);
    url.searchParams.set("ticket", ticket);
    if (state.config.is_admin && state.workspace) url.searchParams.set("workspace", state.workspace);
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => {
      const resumed = state.wsOpenedOnce;
      state.wsOpenedOnce = true;
      state.attempt = 0;
      setConn("live", "live");
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

  function onFrame(frame) {
    if (frame.type === "message" && frame.payload && frame.payload.channel) {
      const name = frame.payload.channel;
      const isNew = !state.channels.has(name);
      const ch = channel(name);
      const seq = frame.payload.seq;
      const gap = ch.loaded && typeof seq === "number" && ch.lastSeq && seq > ch.lastSeq + 1;
      if (isNew && typeof seq === "number") markRead(ch, seq - 1);
      onMessagesAdded(name, addMessages(name, [frame]), true);
      if (gap) fillFrom(name);
      if (isNew) renderChannels();
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

  // ---- agents --------------------------------------------------------------------
  function scheduleAgentRefresh() {
    clearTimeout(state.agentsTimer);
    state.agentsTimer = setTimeout(refreshAgents, 150);
  }

  async function refreshAgents() {
    const gen = state.generation;
    let rows;
    try { rows = await api("/api/agents/registry"); } catch (_) { return; }
    if (gen !== state.generation) return;
    state.agents = rows;
    const members = new Map();
    for (const a of rows) {
      if (!a.online) continue;
      for (const c of a.channels || []) {
        if (c.startsWith(INTERNAL_CHANNEL_PREFIX)) continue;  // #.doctor: never listed
        if (!members.has(c)) members.set(c, []);
        members.get(c).push(a.name);
      }
    }
    let changed = false;
    for (const [name, list] of members) {
      const ch = channel(name);
      if (ch.members.join() !== list.join()) { ch.members = list; changed = true; }
    }
    for (const ch of state.channels.values()) {
      if (!members.has(ch.name) && ch.members.length) { ch.members = []; changed = true; }
    }
    if (changed) { renderChannels(); renderChannelMeta(); }
    renderAgents();
  }

  const HEALTH_ORDER = { healthy: 0, idle: 1, stale: 2, dead: 3 };
  const INTERNAL_CHANNEL_PREFIX = "#.";
  let showOffline = false;  // disconnected agents are collapsed under "N offline"

  function gauge(label, pct, detail) {
    const g = el("div", "gauge");
    const top = el("div", "gauge-label");
    top.append(el("span", null, label), el("span", null, pct === null ? "–" : `${Math.round(pct)}%`));
    const bar = el("div", "gauge-bar");
    const fill = el("div", "gauge-fill" + (pct >= 90 ? " hot" : pct >= 70 ? " warn" : ""));
    fill.style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
    bar.appendChild(fill);
    g.append(top, bar);
    if (detail) g.title = detail;
    return g;
  }

  function agentCard(a) {
    const li = el("li", "agent" + (a.online ? "" : " offline"));
    li.dataset.name = a.name;
    const top = el("div", "agent-top");
    const av = avatar(a.name, false);
    av.appendChild(el("span", "presence-dot" + (a.online ? " on" : "")));
    const id = el("div", "agent-id");
    id.append(el("div", "agent-name", a.name),
              el("div", "agent-sub", [a.machine, a.role, a.model].filter(Boolean).join(" · ") || a.agent_id || ""));
    // A disconnected agent is dead whatever its last status said ("online", "busy"...).
    const health = a.online ? a.health : "dead";
    top.append(av, id, el("span", `pill ${health}`, health));
    li.appendChild(top);
    const task = el("div", "agent-task");
    task.append(el("span", "status", a.online ? (a.status || "online") : "offline"),
                el("span", "task", a.current_task || "no current task"));
    li.appendChild(task);
    const r = a.resources || {};
    const cpu = r.cpu_count && r.load_avg_1m !== undefined ? (100 * r.load_avg_1m) / r.cpu_count : null;
    const mem = r.mem_used_percent !== undefined ? r.mem_used_percent : null;
    const disk = r.disk_used_percent !== undefined ? r.disk_used_percent : null;
    const gauges = el("div", "gauges");
    gauges.append(
      gauge("CPU", cpu, r.cpu_model ? `${r.cpu_model}, load ${r.load_avg_1m}` : null),
      gauge("MEM", mem, r.mem_total_mb ? `${r.mem_total_mb} MB total` : null),
      gauge("DISK", disk, null));
    li.appendChild(gauges);
    const foot = el("div", "agent-foot");
    foot.append(el("span", "tags", (a.channels || []).join(" ")), el("span", null, a.online ? ago(a.last_seen_s_ago) : "offline"));
    li.appendChild(foot);
    return li;
  }

  function renderAgents() {
    const ul = $("agents");
    ul.textContent = "";
    const rows = [...state.agents].sort((a, b) => (b.online - a.online)
      || (HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health]) || a.name.localeCompare(b.name));
    const online = rows.filter((a) => a.online);
    const offline = rows.filter((a) => !a.online);
    const counts = { healthy: 0, idle: 0, stale: 0, dead: 0 };
    for (const a of online) counts[a.health] = (counts[a.health] || 0) + 1;
    counts.dead += offline.length;
    const summary = $("health-summary");
    summary.textContent = "";
    for (const k of Object.keys(counts)) if (counts[k]) summary.appendChild(el("span", `pill ${k}`, `${counts[k]} ${k}`));
    if (!online.length) {
      ul.appendChild(el("li", "no-agents", offline.length ? "No agents online."
        : "No agents connected yet. Point one at the agent port with a workspace token."));
    }
    for (const a of online) ul.appendChild(agentCard(a));
    if (offline.length) {
      const toggle = el("li", "offline-toggle");
      const button = el("button", null, `${showOffline ? "▾" : "▸"} ${offline.length} offline`);
      button.type = "button";
      button.setAttribute("aria-expanded", String(showOffline));
      button.addEventListener("click", () => { showOffline = !showOffline; renderAgents(); });
      toggle.appendChild(button);
      ul.appendChild(toggle);
      if (showOffline) for (const a of offline) ul.appendChild(agentCard(a));
    }
    const stats = $("hub-stats");
    stats.textContent = "";
    stats.append(el("b", null, String(online.length)), ` agent${online.length === 1 ? "" : "s"} online · `,
                 el("b", null, String(state.channels.size)), " channels");
  }

  // ---- composing and uploads -----------------------------------------------------
  function showComposerError(text) {
    $("composer-error").textContent = text || "";
    if (text) setTimeout(() => { if ($("composer-error").textContent === text) $("composer-error").textContent = ""; }, 6000);
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
    if (state.readOnly) { showComposerError(READ_ONLY_HINT); return; }
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
    if (state.readOnly) { showComposerError(READ_ONLY_HINT); return; }
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

  // ---- wiring --------------------------------------------------------------------
  function wire() {
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("signin-token").value.trim();
      if (token) signIn(token);
    });
    $("invite-redeem").addEventListener("click", () => redeem($("invite-code").value.trim()));
    $("signout").addEventListener("click", () => {
      localStorage.removeItem(KEY.token);
      closeSocket();
      clearInterval(state.pollTimer);
      state.token = null;
      forgetMedia();
      showSignin("Signed out.");
    });
    $("workspace").addEventListener("change", (e) => openWorkspace(e.target.value));
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
    setInterval(() => { if (state.agents.length) renderAgents(); }, 15000);
  }

  async function redeem(code) {
    if (!code) return;
    try {
      const resp = await fetch("/api/invites/redeem", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ invite: code, label: "dashboard" }) });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
      await signIn(data.token);
    } catch (err) {
      showSignin(`Invite not accepted: ${err.message}`);
    }
  }

  function start() {
    wire();
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get("token");
    const invite = params.get("invite");
    if (fromUrl || invite) history.replaceState(null, "", location.pathname);
    if (invite) { redeem(invite); return; }
    const token = fromUrl || localStorage.getItem(KEY.token);
    if (token) signIn(token); else showSignin("");
  }

  start();
})();
