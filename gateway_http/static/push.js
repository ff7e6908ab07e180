/* Web push in the dashboard: where the browser has PushManager and Notification, a
 * service worker is registered and the hub offers push (/api/config `push`), the footer
 * shows "Enable notifications". On: ask permission, subscribe through the worker with the
 * hub's VAPID key (GET /api/push/vapid-public-key) and POST the subscription for the name
 * this person posts as (admin token: people post with it). Off: DELETE it and unsubscribe.
 * Where any of that is missing, nothing is shown. The worker (sw.js) shows the pushes. */
import { api } from "./api.js";
import { $ } from "./dom.js";
import { notice } from "./notice.js";
import { workerReady } from "./pwa.js";
import { KEY, state } from "./state.js";

const OFF_LABEL = "Enable notifications";
const ON_LABEL = "Notifications on (turn off)";
let busy = false;

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function current() {
  const reg = await workerReady();
  return reg ? reg.pushManager.getSubscription() : null;
}

function show(on) {
  const button = $("push-toggle");
  button.textContent = on ? ON_LABEL : OFF_LABEL;
  button.dataset.state = on ? "on" : "off";
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.hidden = false;
}

/** After sign-in: offer push, or hide the button (unsupported, push off, read-only). */
export async function refreshPush() {
  const button = $("push-toggle");
  const root = document.documentElement;
  button.hidden = true;
  if (!pushSupported()) { root.dataset.push = "unsupported"; return; }
  if (!state.config || !state.config.push || !state.admin) { root.dataset.push = "off"; return; }
  const reg = await workerReady();
  if (!reg) { root.dataset.push = "unsupported"; return; }
  show(!!(await reg.pushManager.getSubscription()));
  root.dataset.push = "offered";  // what was decided (the tests wait for it)
}

async function enable() {
  const person = ($("sender-name").value || localStorage.getItem(KEY.name) || "").trim();
  if (!person) { notice("Set the name you post as first: notifications are for that name.", "error"); return; }
  if ((await Notification.requestPermission()) !== "granted") {
    notice("Notifications are blocked for this site (the browser's site settings).", "error");
    return;
  }
  const reg = await workerReady();
  const { public_key: key } = await api("/api/push/vapid-public-key");
  const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlBytes(key) });
  try {
    await api("/api/push/subscriptions", { method: "POST", json: { ...sub.toJSON(), person } });
  } catch (err) {
    await sub.unsubscribe().catch(() => {});
    throw err;
  }
  notice(`Notifications on for ${person} in this browser.`);
}

async function disable() {
  const sub = await current();
  if (!sub) return;
  await api("/api/push/subscriptions", { method: "DELETE", json: { endpoint: sub.endpoint } });
  await sub.unsubscribe();
  notice("Notifications off in this browser.");
}

export function wirePush() {
  $("push-toggle").addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    try {
      if (await current()) await disable(); else await enable();
    } catch (err) {
      notice(`Notifications: ${err.message || err}`, "error");
    } finally {
      busy = false;
      await refreshPush().catch(() => {});
    }
  });
}
