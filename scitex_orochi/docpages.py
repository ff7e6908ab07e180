"""The project's documentation pages (README and docs/*.md), found in the installed
package or, when running from a checkout, in the repository beside it.

The files live once, in the repository; the wheel gets a copy under
`scitex_orochi/_docs/` (hatch force-include, see pyproject.toml).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGED_DIR = "_docs"

# Page name -> file name, in the order `docs list` shows them. README.md is at the
# repository's root, the others in docs/; in the wheel they all sit in _docs/.
PAGES: dict[str, str] = {
    "readme": "README.md",
    "protocol": "protocol.md",
    "fleet": "fleet.md",
    "conversations": "conversations.md",
    "operations": "operations.md",
    "security": "security.md",
    "configuration": "configuration.md",
    "internals": "internals.md",
    "http-gateway": "http-gateway.md",
    "bus-curve": "bus-curve.md",
    "benchmarks": "benchmarks.md",
}

_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


class UnknownPage(LookupError):
    """No page of that name; the message lists the pages (and the closest name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        close = difflib.get_close_matches(name, list(PAGES), n=1)
        self.suggestion = close[0] if close else None
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        super().__init__(f"unknown page '{name}'{hint}; pages: {', '.join(PAGES)}")


@dataclass(frozen=True)
class Page:
    name: str
    file: str
    title: str
    size: int  # bytes of the UTF-8 text
    text: str


def _packaged(file: str) -> Traversable:
    return resources.files("scitex_orochi") / PACKAGED_DIR / file


def _checkout(file: str) -> Path:
    repo = Path(__file__).resolve().parent.parent
    return repo / file if file == "README.md" else repo / "docs" / file


def page_text(name: str) -> str:
    """The page's markdown, as written. Raises UnknownPage, or FileNotFoundError when
    neither the package nor a checkout holds it."""
    if name not in PAGES:
        raise UnknownPage(name)
    file = PAGES[name]
    packaged = _packaged(file)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _checkout(file).read_text(encoding="utf-8")


def title_of(text: str) -> str:
    """The first markdown heading's text, or '' when there is none."""
    match = _HEADING.search(text)
    return match.group(1) if match else ""


def page(name: str) -> Page:
    text = page_text(name)
    return Page(name, PAGES[name], title_of(text), len(text.encode("utf-8")), text)


def pages() -> list[Page]:
    return [page(name) for name in PAGES]


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, text) of every heading outside code fences."""
    out: list[tuple[int, int, str]] = []
    fence = False
    for i, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fence = not fence
        elif not fence and (match := _HEADING.match(line)):
            out.append((i, len(line) - len(line.lstrip("#")), match.group(1)))
    return out


def headings(text: str) -> list[str]:
    """Every heading's text outside code fences, in order."""
    return [label for _, _, label in _headings(text)]


def section(text: str, heading: str) -> str | None:
    """The part of `text` from the heading whose text is `heading` (case-insensitive,
    leading #s optional) down to the next heading of the same or a higher level; None
    when there is no such heading."""
    wanted = heading.strip().lstrip("#").strip().casefold()
    found = _headings(text)
    for n, (start, level, label) in enumerate(found):
        if label.casefold() == wanted:
            end = next((i for i, lv, _ in found[n + 1 :] if lv <= level), None)
            lines = text.splitlines(keepends=True)
            return "".join(lines[start:end])
    return None
