"""`HEAD`/`POST /api/media/by-hash/<sha256>`: does this hub hold a file with that content?

The fleet sidecar asks before uploading (docs/fleet.md §5): 200 with the file's
upload answer (`file_id, url, mime_type, filename, size`) when a file of the asker's
workspace has that SHA-256, else 404 and the sidecar uploads. The index is built
from the media sidecars (`<file>.meta.json`, which record `sha256`), lazily, and a
month folder is read again only when its modification time changed (a new file
changes it), so a lookup after an upload sees it and a repeated lookup reads nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from scitex_orochi.hub.media_meta import SIDECAR_SUFFIX

from .auth import authenticate
from .errors import bad_request, not_found
from .media import MEDIA

_SHA_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class HashIndex:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folders: dict[str, tuple[float, dict[str, list[dict[str, Any]]]]] = {}
        self.lock = threading.Lock()

    def _scan(self, folder: Path) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for meta_path in folder.glob("*" + SIDECAR_SUFFIX):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            name = meta_path.name[: -len(SIDECAR_SUFFIX)]
            if isinstance(meta, dict) and isinstance(meta.get("sha256"), str):
                entry = {**meta, "url": f"/media/{folder.name}/{name}", "name": name}
                found.setdefault(meta["sha256"].lower(), []).append(entry)
        return found

    def lookup(self, sha256: str) -> list[dict[str, Any]]:
        """Every stored file with that content (blocking: run it in the executor)."""
        with self.lock:
            try:
                months = sorted(p for p in self.root.iterdir() if p.is_dir())
            except OSError:
                return []
            out: list[dict[str, Any]] = []
            for folder in months:
                try:
                    mtime = os.stat(folder).st_mtime
                except OSError:
                    continue
                cached = self.folders.get(folder.name)
                if cached is None or cached[0] != mtime:
                    cached = (mtime, self._scan(folder))
                    self.folders[folder.name] = cached
                out += cached[1].get(sha256.lower(), [])
            return out


HASH_INDEX = web.AppKey("media_hash_index", HashIndex)


async def by_hash(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    sha = request.match_info["sha256"]
    if not _SHA_RE.match(sha):
        raise bad_request("sha256 must be 64 hexadecimal digits", "sha256")
    entries = await asyncio.to_thread(request.app[HASH_INDEX].lookup, sha)
    for entry in entries:
        if scope.is_admin or entry.get("workspace") == scope.workspace:
            if request.method == "HEAD":
                return web.Response(status=200)
            return web.json_response(
                {
                    "file_id": entry["name"].split(".")[0],
                    "url": entry["url"],
                    "mime_type": entry.get("mime_type"),
                    "filename": entry.get("filename"),
                    "size": entry.get("size"),
                    "sha256": sha.lower(),
                }
            )
    if request.method == "HEAD":
        return web.Response(status=404)
    raise not_found("no file with that sha256 in this workspace")


def setup(app: web.Application) -> None:
    app[HASH_INDEX] = HashIndex(app[MEDIA].root)
    for path in ("/api/media/by-hash/{sha256}", "/api/media/by-hash/{sha256}/"):
        app.router.add_route("HEAD", path, by_hash)
        app.router.add_route("POST", path, by_hash)
