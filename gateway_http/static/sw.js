/* The dashboard's service worker, served at /sw.js (scope /, no-cache).
 *
 * Network-first for the page (`/`) and `/static/`: every load gets the newest build
 * while the hub is reachable; the cached copy answers only when the network fails
 * (offline). The page is cached under "/" alone, never under a URL with ?token=.
 * The API, the live socket and /media are never touched (they need the token).
 * A new sw.js takes over at once (skipWaiting, clients.claim); the page itself
 * notices a new build through /build (pwa.js) and reloads.
 * Push: a `push` event (push.js subscribed) shows its notification, titled by sender and
 * channel; a click takes an open dashboard (or a new one) to the message's permalink. */
const CACHE = "orochi-static-v1";

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function cached(url) {
  if (url.origin !== self.location.origin) return null;
  if (url.pathname === "/") return "/";
  if (url.pathname === "/manifest.webmanifest") return url.pathname;
  if (url.pathname.startsWith("/static/")) return url.pathname;
  return null;
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) await cache.put(key, response.clone());
    return response;
  } catch (err) {
    const hit = await cache.match(key);
    if (hit) return hit;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const key = cached(new URL(request.url));
  if (key) event.respondWith(networkFirst(request, key));
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (_) { data = {}; }
  const title = data.sender ? `${data.sender} in ${data.channel || "Orochi"}` : "Orochi";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.text || "", icon: "/static/orochi-icon-192.png", tag: data.url || undefined,
    data: { url: data.url || "/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil((async () => {  // an open dashboard goes to the message; else a new one
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin !== url.origin) continue;
      try { await client.navigate(url.href); } catch (_) { /* still focus it */ }
      return client.focus();
    }
    return self.clients.openWindow(url.href);
  })());
});
