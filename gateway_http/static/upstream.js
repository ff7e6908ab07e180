/* Following another hub (stable and dev dashboards, gateway_http/upstream.py): with
 * SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM set, /upstream names the hub this page shows.
 * Then the token is one of that hub (kept apart from this hub's, as are the read state
 * and last channel), REST goes to its origin and the live feed to its /ws, a banner says
 * whose traffic this is, and the page only reads: posting, reactions, edits and uploads
 * are off (they belong on that hub's own dashboard). Without an upstream nothing changes. */
import { $ } from "./dom.js";
import { KEY, state } from "./state.js";

/** Asks this hub whether its dashboard follows another; before sign-in. */
export async function loadUpstream() {
  let found = null;
  try {
    const resp = await fetch("/upstream", { cache: "no-store" });
    if (resp.ok) found = (await resp.json()).upstream || null;
  } catch (_) { found = null; }  // an older hub without the route: its own traffic
  state.upstream = found;
  if (!found) return;
  for (const name of Object.keys(KEY)) KEY[name] = `${KEY[name]}@${found.origin}`;
  const text = `Showing live traffic of ${found.host}`;
  for (const id of ["upstream-banner", "signin-upstream"]) {
    const box = $(id);
    box.textContent = id === "upstream-banner" ? text
      : `This dashboard shows the live traffic of ${found.host}: sign in with a token of that hub.`;
    box.title = `This dashboard follows ${found.origin} (SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM); it only reads.`;
    box.hidden = false;
  }
  $("composer-hint").textContent = `Read-only: this dashboard shows ${found.host}; post on its own dashboard`;
}

/** A REST path's URL: on the upstream when following, else on this page's origin. */
export function restUrl(path) {
  return new URL(path, state.upstream ? state.upstream.origin : location.origin);
}

/** The observer socket's URL (the ticket and workspace are added by feed.js). */
export function socketUrl() {
  if (state.upstream) return new URL(state.upstream.ws);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return new URL(`${proto}//${location.host}/ws`);
}

/** Why a request failed, for people: a fetch that never got an answer, when following,
 * is most often the upstream refusing this origin (CORS), so the fix is named. */
export function unreachable(err) {
  if (!state.upstream || err.status) return `Cannot reach the hub: ${err.message}`;
  return `Cannot reach ${state.upstream.host}: it is down, or it does not let this dashboard's `
    + `origin (${location.origin}) in; on ${state.upstream.host}, list it in SCITEX_OROCHI_CORS_ORIGINS.`;
}

/** The banner turns into the error when the upstream's live feed cannot be opened. */
export function noteFeed(ok) {
  if (!state.upstream) return;
  const box = $("upstream-banner");
  box.classList.toggle("upstream-error", !ok);
  box.textContent = ok ? `Showing live traffic of ${state.upstream.host}`
    : `No live traffic from ${state.upstream.host}: its live feed refused this origin `
      + `(${location.origin}) or is down; is it in that hub's SCITEX_OROCHI_CORS_ORIGINS?`;
}

/** Writes are off while following. */
export function following() { return !!state.upstream; }
