/* Sign-in: /?token= (kept in localStorage, removed from the URL at once), the form, or
 * /?invite=; sign-out; and opening a workspace (admins may switch between them). */
import { AGENT_POLL_MS, refreshAgents } from "./agents.js";
import { api } from "./api.js";
import { loadChannels, selectChannel } from "./channels.js";
import { setReadOnly } from "./composer.js";
import { $, el } from "./dom.js";
import { closeSocket, connect } from "./feed.js";
import { forgetMedia } from "./media.js";
import { refreshPush } from "./push.js";
import { openPermalink } from "./search.js";
import { KEY, state } from "./state.js";
import { following, loadUpstream, restUrl, unreachable } from "./upstream.js";

export function showSignin(message) {
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
    state.admin = !!who.admin;
    setReadOnly(!who.admin || following());
  } catch (err) {
    state.token = null;
    state.admin = false;
    localStorage.removeItem(KEY.token);
    showSignin(err.status === 401 ? "That token was not accepted." : unreachable(err));
    return;
  }
  localStorage.setItem(KEY.token, token);
  $("signin").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = state.config.is_admin ? "admin" : `workspace ${state.config.workspace}`;
  $("sender-name").value = localStorage.getItem(KEY.name) || "";
  refreshPush().catch(() => {});
  await loadWorkspaces();
  // On <workspace>.<base host> the subdomain names the workspace (and the selector is fixed).
  await openWorkspace(state.config.host_workspace || localStorage.getItem(KEY.ws) || state.config.default_workspace);
  const permalink = state.permalink;
  state.permalink = null;
  if (permalink) await openPermalink(permalink);
}

async function loadWorkspaces() {
  const select = $("workspace");
  select.textContent = "";
  let rows = [];
  try { rows = (await api("/api/workspaces", { noWorkspace: true })).workspaces || []; } catch (_) { rows = []; }
  if (!rows.length) rows = [{ id: state.config.default_workspace, name: state.config.default_workspace }];
  const fixed = state.config.host_workspace;
  if (fixed) rows = rows.filter((ws) => ws.id === fixed).concat(rows.some((ws) => ws.id === fixed) ? [] : [{ id: fixed, name: fixed }]);
  for (const ws of rows) {
    const opt = el("option", null, ws.name === ws.id ? ws.id : `${ws.name} (${ws.id})`);
    opt.value = ws.id;
    select.appendChild(opt);
  }
  select.disabled = !state.config.is_admin || rows.length < 2 || !!fixed;
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

async function redeem(code) {
  if (!code) return;
  try {
    const resp = await fetch(restUrl("/api/invites/redeem"), { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ invite: code, label: "dashboard" }) });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
    await signIn(data.token);
  } catch (err) {
    showSignin(`Invite not accepted: ${err.message}`);
  }
}

export function wireSignin() {
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
    state.admin = false;
    forgetMedia();
    showSignin("Signed out.");
  });
  $("workspace").addEventListener("change", (e) => openWorkspace(e.target.value));
}

/** Signs in from the URL (?token= or ?invite=, both removed from the address bar) or storage;
 * `?m=<num>` (where /m/<num> redirects) then opens that message. */
export async function start() {
  await loadUpstream();  // a dashboard following another hub signs in there (upstream.js)
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  const invite = params.get("invite");
  state.permalink = /^\d{1,19}$/.test(params.get("m") || "") ? params.get("m") : null;  // /m/<num>
  if (fromUrl || invite || params.has("m")) history.replaceState(null, "", location.pathname);
  if (invite) { redeem(invite); return; }
  const token = fromUrl || localStorage.getItem(KEY.token);
  if (token) signIn(token); else showSignin("");
}
