"""The media store: uploaded files under the media root by month, each with its sidecar.

Stored names are generated here (`<uuid hex><ext>` in `YYYY-MM/`), so a client's
file name never reaches the file system; `find` accepts only that shape and
checks the resolved path stays inside the root. Each stored file gets a sidecar
(`scitex_orochi.hub.media_meta`) naming its workspace. Every file system call
(folders, writes, renames, sidecars, lookups) runs in the default executor, so a
slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from scitex_orochi.hub import media_meta

from .errors import ApiError, too_large

CHUNK_BYTES = 256 * 1024
UPLOAD_SOURCE = "upload"
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_NAME_RE = re.compile(r"^[0-9a-f]{32}(\.[A-Za-z0-9]{1,10})?$")

ReadChunk = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    url: str
    size: int


def file_too_large(max_size: int) -> ApiError:
    return too_large(f"file over the upload limit of {max_size} bytes", max_size)


class MediaStore:
    def __init__(self, root: Path, max_size: int) -> None:
        self.root = Path(root)
        self.max_size = max_size

    # ---- blocking pieces, each run in the executor by the coroutines below ----------
    def new_path(self, ext: str) -> tuple[str, Path]:
        month = datetime.now(UTC).strftime("%Y-%m")
        file_id = uuid.uuid4().hex
        folder = self.root / month
        folder.mkdir(parents=True, exist_ok=True)
        return file_id, folder / f"{file_id}{ext}"

    def url_of(self, path: Path) -> str:
        return f"/media/{path.parent.name}/{path.name}"

    def resolve(self, month: str, name: str) -> Path | None:
        if not _MONTH_RE.match(month) or not _NAME_RE.match(name):
            return None
        root = self.root.resolve()
        path = (root / month / name).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    def _lookup(self, month: str, name: str) -> tuple[Path, dict[str, Any] | None] | None:
        path = self.resolve(month, name)
        return None if path is None else (path, media_meta.read_sidecar(path))

    # ---- the store's API ------------------------------------------------------------
    async def save_stream(
        self, read_chunk: ReadChunk, ext: str, *, workspace: str, mime_type: str, filename: str
    ) -> StoredFile:
        """Stream chunks to a hidden partial file, then rename it into place; 413 (and
        nothing left behind) once the upload passes the size limit."""
        file_id, path = await asyncio.to_thread(self.new_path, ext)
        partial = path.with_name(f".{path.name}.part")  # never a /media name while incomplete
        out: IO[bytes] = await asyncio.to_thread(open, partial, "wb")
        size = 0
        digest = hashlib.sha256()
        try:
            while chunk := await read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_size:
                    raise file_too_large(self.max_size)
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(os.replace, partial, path)
        except BaseException:  # cancelled (the client went away) included
            out.close()
            partial.unlink(missing_ok=True)
            raise
        await asyncio.to_thread(
            self._sidecar, path, workspace, mime_type, filename, size, digest.hexdigest()
        )
        return StoredFile(file_id, self.url_of(path), size)

    async def save_bytes(
        self, data: bytes, ext: str, *, workspace: str, mime_type: str, filename: str
    ) -> StoredFile:
        def store() -> tuple[str, Path]:
            file_id, path = self.new_path(ext)
            media_meta.write_atomic(path, data)
            self._sidecar(
                path, workspace, mime_type, filename, len(data), hashlib.sha256(data).hexdigest()
            )
            return file_id, path

        file_id, path = await asyncio.to_thread(store)
        return StoredFile(file_id, self.url_of(path), len(data))

    async def find(self, month: str, name: str) -> tuple[Path, dict[str, Any] | None] | None:
        """(path, sidecar or None) of a stored file, or None for any other name."""
        return await asyncio.to_thread(self._lookup, month, name)

    @staticmethod
    def _sidecar(
        path: Path, workspace: str, mime_type: str, filename: str, size: int, sha256: str
    ) -> None:
        media_meta.write_sidecar(
            path,
            workspace=workspace,
            mime_type=mime_type,
            filename=filename,
            size=size,
            sha256=sha256,
            source=UPLOAD_SOURCE,
        )


MEDIA = web.AppKey("media", MediaStore)
