/* The PWA side of the page: registers the service worker (/sw.js, scope /) and
 * watches the build id (GET /build, every BUILD_POLL_MS and when the tab comes back):
 * when it changes, the page asks the worker to update and reloads, so an open
 * dashboard runs a new build within 20 s without a hard refresh. A reload waits
 * while the composer holds unsent text (checked again on the next poll). */
const BUILD_POLL_MS = 10000;
let loadedBuild = null;
let registration = null;

export async function registerWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" });
  } catch (_) { registration = null; }
  if (navigator.serviceWorker.controller) warmCache();
  else navigator.serviceWorker.addEventListener("controllerchange", warmCache, { once: true });
  return registration;
}

/** What this load fetched before a worker controlled it (the first visit), fetched
 * again through the worker so it is cached for offline use. */
function warmCache() {
  const urls = new Set(["/"]);
  for (const entry of performance.getEntriesByType("resource")) {
    const url = new URL(entry.name);
    if (url.origin === location.origin && url.pathname.startsWith("/static/")) urls.add(url.pathname);
  }
  for (const url of urls) fetch(url).catch(() => {});
}

/** The worker's registration once it is active (push subscribes through it). */
export async function workerReady() {
  if (!("serviceWorker" in navigator)) return null;
  return navigator.serviceWorker.ready;
}

function busy() {
  const input = document.getElementById("message-input");
  return !!(input && input.value.trim());
}

async function checkBuild() {
  let build;
  try {
    const resp = await fetch("/build", { cache: "no-store" });
    if (!resp.ok) return;
    build = (await resp.json()).build;
  } catch (_) { return; }  // offline: try again later
  if (!build) return;
  if (loadedBuild === null) { loadedBuild = build; document.documentElement.dataset.build = build; return; }
  if (build === loadedBuild || busy()) return;
  try { if (registration) await registration.update(); } catch (_) { /* reload anyway */ }
  location.reload();
}

export function watchBuild() {
  checkBuild();
  setInterval(checkBuild, BUILD_POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) checkBuild(); });
}
