/* Media (/media/...): fetched with the token in a header, shown through blob: URLs;
 * images load when they scroll into view, other files on click. */
import { showComposerError } from "./composer.js";
import { el } from "./dom.js";
import { state } from "./state.js";
import { restUrl } from "./upstream.js";

const MEDIA_CACHE_MAX = 200;
const mediaCache = new Map();  // /media/... -> Promise of an object URL, oldest first

function mediaUrl(url) {
  let pending = mediaCache.get(url);
  if (!pending) {
    pending = fetch(restUrl(url), { headers: { Authorization: `Bearer ${state.token}` } })
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

export function forgetMedia() {
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

/** Loads an image's media once it is near the viewport. */
export function showThumb(img) {
  if (thumbObserver) thumbObserver.observe(img); else loadThumb(img);
}

export async function download(url, name) {
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
