"""Web push: the hub's VAPID key pair and sending one notification (pywebpush).

The key pair is made at first use and kept in `<data_dir>/vapid_private.pem` (0600,
linked into place whole, so two processes starting at once agree on one key). The public
key goes to browsers as the `applicationServerKey` (base64url of the uncompressed
P-256 point). `send()` encrypts with aes128gcm and signs the VAPID JWT (ES256);
the push service's 404/410 means the subscription is gone.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid

from scitex_orochi.hub.store_push import PushSubscription

VAPID_FILE = "vapid_private.pem"
TEXT_MAX_CHARS = 200  # a push carries the start of the message
PUSH_TTL_S = 3600
PUSH_TIMEOUT_S = 10.0
VAPID_SUBJECT = "mailto:orochi@localhost"
GONE = (404, 410)


def vapid_path(data_dir: Path) -> Path:
    return data_dir / VAPID_FILE


def load_or_create(data_dir: Path) -> Vapid:
    """The hub's key pair, made at first use. The new key is written whole to a private
    temporary file and linked into place (fails if the name exists), so a process never
    reads a half-written key and two processes starting at once agree on the first."""
    path = vapid_path(data_dir)
    if not path.exists():
        key = Vapid()
        key.generate_keys()
        fd, tmp = tempfile.mkstemp(prefix=".vapid-", dir=data_dir)  # 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_pem())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
    return Vapid.from_file(str(path))


def public_key_b64(key: Vapid) -> str:
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def payload(channel: str, sender: str, text: str, num: int | None) -> dict[str, Any]:
    if len(text) > TEXT_MAX_CHARS:
        text = text[: TEXT_MAX_CHARS - 1] + "…"
    return {
        "channel": channel,
        "sender": sender,
        "text": text,
        "url": f"/m/{num}" if num is not None else "/",
    }


def send(key: Vapid, sub: PushSubscription, data: dict[str, Any], subject: str) -> int:
    """Send one push; the push service's status (GONE: remove the subscription)."""
    from pywebpush import WebPushException, webpush

    info = {"endpoint": sub["endpoint"], "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}}
    try:
        response = webpush(
            info,
            json.dumps(data),
            vapid_private_key=key,
            vapid_claims={"sub": subject},
            content_encoding="aes128gcm",
            ttl=PUSH_TTL_S,
            timeout=PUSH_TIMEOUT_S,
        )
    except WebPushException as exc:
        if exc.response is not None:
            return int(exc.response.status_code)
        raise
    return int(getattr(response, "status_code", 201))
