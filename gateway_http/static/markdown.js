/* Safe markdown for message content: DOM nodes built with createElement and text nodes,
 * never HTML from a message (no innerHTML anywhere), so `<script>` or `<img onerror>`
 * is shown as the text it is. Links go only to http:, https: and mailto: URLs, open in a
 * new tab with rel="noopener noreferrer"; `[x](javascript:...)` stays literal text.
 *
 * Blocks: fenced code (``` or ~~~, with a language), paragraphs (lines kept: the body is
 * pre-wrap), bullet and numbered lists (nested by indentation), "> " quotes and "# "
 * headings. Inline: `code`, **bold** / __bold__, *italic* / _italic_ (not inside
 * snake_case words), [text](url), bare http(s) URLs and @mentions.
 *
 * Linear in the text: a closing delimiter not found once is not searched for again, link
 * texts and URLs have bounded lengths, and nesting is capped. Plain text (most messages)
 * takes a fast path that builds one text node. */
import { el } from "./dom.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const MAX_DEPTH = 6;
const FAST_RE = /[`*_[@:\n~]/;
const FAST_START_RE = /^\s*(?:[-+>#]|\d+[.)])\s/;
const FENCE_RE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$/;
const LANG_RE = /^[\w+#.-]{1,24}$/;
const ITEM_RE = /^([ \t]*)(?:([-*+•])|(\d{1,9})[.)])[ \t]+(.*)$/;
const HEADING_RE = /^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/;
const QUOTE_RE = /^ {0,3}>[ \t]?(.*)$/;
const INLINE_RE = /[`*_[@]|https?:\/\//gi;
const LINK_RE = /\[([^\]\n]{1,300})\]\([ \t]*([^\s()]{1,2000}(?:\([^\s()]{0,200}\)[^\s()]{0,200})?)[ \t]*\)/y;
const URL_RE = /https?:\/\/[^\s<>"'`]{1,2000}/iy;
const MENTION_RE = /@([\w-]{1,64})/y;
const WORD_RE = /[\p{L}\p{N}_]/u;
const SPACE_RE = /\s/;

/** The href of a URL the page may link to (http, https, mailto), else null. */
export function safeHref(url) {
  let parsed;
  try { parsed = new URL(url); } catch (_) { return null; }
  return SAFE_PROTOCOLS.has(parsed.protocol) ? parsed.href : null;
}

/** A DocumentFragment of the message text; `me` is the viewer's name (its mentions stand out). */
export function renderMarkdown(text, me) {
  const src = String(text ?? "").replace(/\r\n?/g, "\n");
  const frag = document.createDocumentFragment();
  if (!FAST_RE.test(src) && !FAST_START_RE.test(src)) {
    frag.append(src);
    return frag;
  }
  const ctx = { me: me || "" };
  const lines = src.split("\n");
  // One paragraph (the usual message): inline nodes straight into the body, no <p>.
  if (!lines.some((l) => !l.trim() || FENCE_RE.test(l) || ITEM_RE.test(l) || HEADING_RE.test(l)
                          || QUOTE_RE.test(l))) {
    inline(src, frag, ctx, 0, false);
    return frag;
  }
  blocks(lines, frag, ctx, 0);
  return frag;
}

function blocks(lines, parent, ctx, depth) {
  let para = [];
  const flush = () => {
    if (!para.length) return;
    const p = el("p");
    inline(para.join("\n"), p, ctx, depth, false);
    parent.appendChild(p);
    para = [];
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m = FENCE_RE.exec(line);
    if (m) {
      flush();
      const close = new RegExp(`^ {0,3}${m[1][0] === "`" ? "`" : "~"}{${m[1].length},}[ \\t]*$`);
      const body = [];
      i += 1;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i += 1;  // the closing fence (an unclosed block runs to the end)
      parent.appendChild(codeBlock(body.join("\n"), m[2]));
      continue;
    }
    if (!line.trim()) { flush(); i += 1; continue; }
    if (depth < MAX_DEPTH) {
      if ((m = HEADING_RE.exec(line))) {
        flush();
        const h = el("div", `md-h md-h${m[1].length}`);
        h.setAttribute("role", "heading");
        h.setAttribute("aria-level", String(Math.min(6, m[1].length + 2)));
        inline(m[2], h, ctx, depth, false);
        parent.appendChild(h);
        i += 1;
        continue;
      }
      if (QUOTE_RE.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && (m = QUOTE_RE.exec(lines[i]))) { quoted.push(m[1]); i += 1; }
        const q = el("blockquote");
        blocks(quoted, q, ctx, depth + 1);
        parent.appendChild(q);
        continue;
      }
      if (ITEM_RE.test(line)) {
        flush();
        i = list(lines, i, parent, ctx, depth);
        continue;
      }
    }
    para.push(line);
    i += 1;
  }
  flush();
}

function codeBlock(text, lang) {
  const pre = el("pre", "md-code");
  const code = el("code", null, text);
  if (lang && LANG_RE.test(lang)) pre.dataset.lang = lang;
  pre.appendChild(code);
  return pre;
}

function indentOf(s) { return s.replace(/\t/g, "    ").length; }

/** A list starting at lines[i]; returns the index of the first line after it. */
function list(lines, i, parent, ctx, depth) {
  const first = ITEM_RE.exec(lines[i]);
  const indent = indentOf(first[1]);
  const ordered = first[3] !== undefined;
  const ul = el(ordered ? "ol" : "ul");
  if (ordered && Number(first[3]) !== 1) ul.start = Number(first[3]);
  let item = null;
  const finish = () => { if (item) listItem(item, ul, ctx, depth); };
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      // A blank line inside a list: it goes on if an item of this list comes next.
      let j = i + 1;
      while (j < lines.length && !lines[j].trim()) j += 1;
      const next = j < lines.length ? ITEM_RE.exec(lines[j]) : null;
      if (next && indentOf(next[1]) <= indent + 1 && (next[3] !== undefined) === ordered) { i = j; continue; }
      if (item && next && indentOf(next[1]) > indent + 1) { i = j; continue; }
      break;
    }
    const m = ITEM_RE.exec(line);
    if (m && indentOf(m[1]) <= indent + 1) {
      if ((m[3] !== undefined) !== ordered) break;  // the other kind: a new list
      finish();
      item = [m[4]];
      i += 1;
      continue;
    }
    if (!item || !/^[ \t]/.test(line)) break;  // not indented: the list has ended
    item.push(line);
    i += 1;
  }
  finish();
  parent.appendChild(ul);
  return i;
}

function listItem(lines, ul, ctx, depth) {
  const li = el("li");
  inline(lines[0], li, ctx, depth, false);
  if (lines.length > 1) {
    const rest = lines.slice(1);
    const cut = Math.min(...rest.filter((l) => l.trim()).map((l) => indentOf(l.match(/^[ \t]*/)[0])));
    blocks(rest.map((l) => l.replace(/\t/g, "    ").slice(cut)), li, ctx, depth + 1);
  }
  ul.appendChild(li);
}

function isWord(ch) { return ch !== undefined && ch !== "" && WORD_RE.test(ch); }
function isSpace(ch) { return ch === undefined || ch === "" || SPACE_RE.test(ch); }

function runLength(text, at) {
  let n = 1;
  while (text[at + n] === text[at]) n += 1;
  return n;
}

/** Where the next run of exactly n backticks from `from` starts, or -1. */
function codeCloser(text, n, from) {
  let idx = text.indexOf("`", from);
  while (idx !== -1) {
    const len = runLength(text, idx);
    if (len === n) return idx;
    idx = text.indexOf("`", idx + len);
  }
  return -1;
}

/** Where the closing `delim` of an emphasis opened before `from` is, or -1. */
function findCloser(text, delim, from, noCloser) {
  if (noCloser[delim] !== undefined && from >= noCloser[delim]) return -1;
  const ch = delim[0];
  let idx = text.indexOf(delim, from);
  while (idx !== -1) {
    const before = text[idx - 1];
    const after = text[idx + delim.length];
    const okRun = delim.length === 2 || (before !== ch && after !== ch);
    if (okRun && !isSpace(before) && !(ch === "_" && isWord(after))) return idx;
    idx = text.indexOf(delim, idx + 1);
  }
  noCloser[delim] = from;  // none from here on: none from any later opener either
  return -1;
}

/** Inline nodes of `text` appended to `parent`. */
function inline(text, parent, ctx, depth, inLink) {
  const re = new RegExp(INLINE_RE.source, "gi");
  const noCloser = {};
  let last = 0;
  let i = 0;
  const literalUpTo = (at) => { if (at > last) parent.append(text.slice(last, at)); };
  for (;;) {
    re.lastIndex = i;
    const hit = re.exec(text);
    if (!hit) break;
    const at = hit.index;
    const c = text[at];
    let node = null;
    let end = at + 1;
    if (c === "`") {
      const n = runLength(text, at);
      end = at + n;
      const idx = noCloser[n] !== undefined && end >= noCloser[n] ? -1 : codeCloser(text, n, end);
      if (idx === -1) noCloser[n] = end;
      else {
        let code = text.slice(end, idx);
        if (code.length > 2 && code[0] === " " && code[code.length - 1] === " ") code = code.slice(1, -1);
        node = el("code", null, code);
        end = idx + n;
      }
    } else if (c === "*" || c === "_") {
      const n = runLength(text, at);
      const canOpen = depth < MAX_DEPTH && !isSpace(text[at + n]) && !(c === "_" && isWord(text[at - 1]));
      end = at + n;
      if (canOpen) {
        for (const size of n >= 2 ? [2, 1] : [1]) {
          const delim = c.repeat(size);
          const close = findCloser(text, delim, at + size + 1, noCloser);
          if (close === -1) continue;
          const inner = text.slice(at + size, close);
          node = el(size === 2 ? "strong" : "em");
          inline(inner, node, ctx, depth + 1, inLink);
          end = close + size;
          break;
        }
      }
    } else if (c === "[") {
      LINK_RE.lastIndex = at;
      const m = inLink ? null : LINK_RE.exec(text);
      if (m) {
        const href = safeHref(m[2]);
        end = at + m[0].length;
        if (href) {
          node = link(href);
          inline(m[1], node, ctx, depth + 1, true);
        } else {
          node = document.createTextNode(m[0]);  // an unsafe link: its text, inert
        }
      }
    } else if (c === "@") {
      MENTION_RE.lastIndex = at;
      const m = /[\w@.]/.test(text[at - 1] || "") ? null : MENTION_RE.exec(text);
      if (m) {
        node = el("span", "mention" + (ctx.me && m[1] === ctx.me ? " me" : ""), m[0]);
        end = at + m[0].length;
      }
    } else if (!inLink && !isWord(text[at - 1])) {  // a bare http(s) URL
      URL_RE.lastIndex = at;
      const m = URL_RE.exec(text);
      if (m) {
        const url = trimUrl(m[0]);
        const href = safeHref(url);
        if (href) {
          node = link(href);
          node.textContent = url;
          end = at + url.length;
        }
      }
    }
    if (node) {
      literalUpTo(at);
      parent.appendChild(node);
      last = end;
    }
    i = end;
  }
  literalUpTo(text.length);
}

function link(href) {
  const a = el("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

/** A bare URL without the punctuation that ends its sentence (and unbalanced brackets). */
function trimUrl(url) {
  for (;;) {
    const ch = url[url.length - 1];
    if (".,;:!?*_~'\"]}".includes(ch)) { url = url.slice(0, -1); continue; }
    if (ch === ")" && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) {
      url = url.slice(0, -1);
      continue;
    }
    return url;
  }
}
