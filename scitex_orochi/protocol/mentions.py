"""@mention extraction, done once at ingest.

The published server matched `@([\\w-]+)` anywhere; we add a left boundary so an
e-mail address (`a@b.com`) is not a mention.
"""

from __future__ import annotations

import re

MENTION_RE = re.compile(r"(?<![\w@.])@([\w-]+)")


def extract_mentions(content: object) -> list[str]:
    """Mentioned names in order of first appearance, each once."""
    if not isinstance(content, str) or "@" not in content:
        return []
    seen: dict[str, None] = {}
    for name in MENTION_RE.findall(content):
        seen.setdefault(name, None)
    return list(seen)


BROADCAST = "all"


def broadcasts(mentions: list[str], channel: str) -> list[str]:
    """The mentions that address a whole channel: `@all` and `@<its name>` (no `#`)."""
    name = channel[1:] if channel.startswith("#") else channel
    return [m for m in mentions if m == BROADCAST or m == name]
