"""Sidecar files that say whose a media file is: `<name>.meta.json` next to `<name>`.

Written by every writer of the media root (the HTTP gateway's uploads, the
Telegram bridge's fetched files) and read by `/media`, which serves a file only
to a token of the workspace named here (or the admin token). The sidecar is
written atomically after the file itself, so a reader sees either no sidecar
or a whole one. `/media` never serves sidecars: it accepts `<32 hex><ext>` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".meta.json"
HASH_CHUNK_BYTES = 1024 * 1024


def sidecar_path(media_path: Path) -> Path:
    return media_path.with_name(media_path.name + SIDECAR_SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary name in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_sidecar(
    media_path: Path,
    *,
    workspace: str,
    mime_type: str,
    filename: str,
    size: int,
    sha256: str,
    source: str,
) -> dict[str, Any]:
    """Record who a stored media file belongs to; returns what was written."""
    meta = {
        "workspace": workspace,
        "mime_type": mime_type,
        "filename": filename,
        "size": size,
        "sha256": sha256,
        "source": source,
        "stored_at": time.time(),
    }
    write_atomic(sidecar_path(media_path), json.dumps(meta, ensure_ascii=False).encode())
    return meta


def read_sidecar(media_path: Path) -> dict[str, Any] | None:
    """The sidecar of a media file; None when it is missing or unreadable (older uploads)."""
    try:
        meta = json.loads(sidecar_path(media_path).read_bytes())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("workspace"), str) else None
