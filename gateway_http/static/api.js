/* The REST client: JSON over fetch, the token in the Authorization header, never in the URL. */
import { state } from "./state.js";
import { restUrl } from "./upstream.js";

export async function api(path, opts = {}) {
  const url = restUrl(path);  // this hub, or the one it follows (upstream.js)
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
