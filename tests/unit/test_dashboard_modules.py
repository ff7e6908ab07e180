"""The dashboard's files: one module entry in index.html, small modules, every import local.

No browser and no hub: these read gateway_http/static/ (the browser tests load it).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from gateway_http.dashboard import STATIC_DIR

MAX_MODULE_LINES = 400
ENTRY = "/static/main.js"
# Classic worker scripts, not modules: registered by pwa.js, served at /sw.js.
WORKERS = {"sw.js"}
IMPORT_RE = re.compile(
    r'^\s*(?:import|export)\b[^"\';]*?from\s*["\']([^"\']+)["\']'
    r'|^\s*import\s*["\']([^"\']+)["\']|\bimport\s*\(',
    re.M,
)


class _Scripts(HTMLParser):
    """The page's <script> tags (attributes and inline text) and any on* handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append({**dict(attrs), "text": ""})
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1]["text"] += data


def _modules() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(STATIC_DIR.glob("*.js"))}


def test_index_loads_one_module_entry_and_nothing_else():
    page = _Scripts()
    page.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    assert page.scripts == [{"type": "module", "src": ENTRY, "text": ""}], page.scripts
    assert page.handlers == []  # the CSP (script-src 'self') would block them anyway
    assert (STATIC_DIR / ENTRY.rsplit("/", 1)[1]).is_file()


def test_every_module_is_under_the_line_limit():
    sizes = {name: len(text.splitlines()) for name, text in _modules().items()}
    too_long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert sizes and too_long == {}, too_long


def test_modules_import_only_local_files_and_all_are_reached_from_main():
    modules = _modules()
    reached, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        for match in IMPORT_RE.finditer(modules[name]):
            spec = match.group(1) or match.group(2)
            assert spec, f"{name}: dynamic import() (no build step: keep imports static)"
            # No CDN, no bare specifiers (there is no import map): a sibling file only.
            assert re.fullmatch(r"\./[\w-]+\.js", spec), f"{name} imports {spec!r}"
            assert spec[2:] in modules, f"{name} imports {spec}, which is missing"
            todo.append(spec[2:])
    assert reached == set(modules) - WORKERS, f"never imported: {sorted(set(modules) - reached)}"
    for worker in WORKERS:
        assert not IMPORT_RE.search(modules[worker]), f"{worker} is a classic worker: no imports"


def test_no_module_evaluates_strings_as_code():
    for name, text in _modules().items():  # the CSP has no 'unsafe-eval'
        assert not re.search(r"\beval\s*\(|\bnew\s+Function\s*\(", text), name
