"""Telegram <-> hub mapping as pure functions (no I/O).

Inbound: a Bot API `Update` from the configured chat becomes a hub message
envelope (PROTOCOL.md §8 metadata) plus the files to fetch. Its id is derived
from (chat_id, message_id), so posting the same update twice stores it once.
Outbound: a hub message becomes the Bot API calls that carry it: text split at
Telegram's 4096-character limit, then one sendPhoto / sendDocument per attachment.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

TEXT_LIMIT = 4096  # Telegram counts UTF-16 code units
CAPTION_LIMIT = 1024
SOURCE = "telegram"
# Fixed namespaces: ids must be the same in every process and after every restart.
FILE_NAMESPACE = uuid.UUID("9b8e7d6c-5a4b-4c3d-8e2f-1a0b9c8d7e6f")
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")


@dataclass(frozen=True)
class FileRef:
    """A file of an inbound message to fetch with getFile."""

    kind: str  # photo | document | voice
    file_id: str
    file_unique_id: str
    filename: str
    mime_type: str
    size: int | None


@dataclass
class ParsedUpdate:
    """What one Telegram update posts: the hub envelope, and the files to fetch first."""

    update_id: int
    envelope: dict[str, Any]
    files: list[FileRef] = field(default_factory=list)
    date: int = 0


@dataclass(frozen=True)
class OutCall:
    """One Bot API call: `file_field` names the parameter carrying `attachment`, if any."""

    method: str
    params: dict[str, Any]
    file_field: str | None = None
    attachment: dict[str, Any] | None = None


def hub_message_id(chat_id: int | str, message_id: int | str, key: bytes) -> str:
    """The hub id of a Telegram message: the same on every retry and restart (so a
    redelivered update is stored once), keyed with the hub's secret bridge key so no
    agent can predict it and take it first."""
    digest = hmac.new(key, f"telegram:{chat_id}:{message_id}".encode(), hashlib.sha256)
    return "tg-" + digest.hexdigest()[:32]


def clean_text(value: Any) -> Any:
    """Strings the hub can carry: Telegram's JSON may hold lone surrogates, which would
    be refused at the edge; a bridge replaces them rather than lose the message."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {clean_text(k): clean_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_text(v) for v in value]
    return value


def sender_name(user: dict[str, Any] | None, chat: dict[str, Any] | None = None) -> str:
    """`first_name(@username)`, or the first name alone, or the chat title for channel posts."""
    user = user or {}
    first = user.get("first_name") or (chat or {}).get("title") or "telegram"
    username = user.get("username")
    return f"{first}(@{username})" if username else str(first)


def iso_from_epoch(epoch: int | float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _ext(filename: str, mime_type: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix and len(suffix) <= 10 and suffix[1:].isalnum():
        return suffix
    return mimetypes.guess_extension(mime_type or "") or ""


def _files(message: dict[str, Any]) -> list[FileRef]:
    out: list[FileRef] = []
    msg_id = message.get("message_id")
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        best = max(
            photos, key=lambda p: (p.get("width", 0) * p.get("height", 0), p.get("file_size") or 0)
        )
        out.append(
            FileRef(
                "photo",
                best["file_id"],
                best.get("file_unique_id") or best["file_id"],
                f"photo_{msg_id}.jpg",
                "image/jpeg",
                best.get("file_size"),
            )
        )
    doc = message.get("document")
    if isinstance(doc, dict) and doc.get("file_id"):
        mime = doc.get("mime_type") or "application/octet-stream"
        name = doc.get("file_name") or f"document_{msg_id}{_ext('', mime)}"
        out.append(
            FileRef(
                "document",
                doc["file_id"],
                doc.get("file_unique_id") or doc["file_id"],
                name,
                mime,
                doc.get("file_size"),
            )
        )
    voice = message.get("voice")
    if isinstance(voice, dict) and voice.get("file_id"):
        mime = voice.get("mime_type") or "audio/ogg"
        out.append(
            FileRef(
                "voice",
                voice["file_id"],
                voice.get("file_unique_id") or voice["file_id"],
                f"voice_{msg_id}{_ext('', mime) or '.ogg'}",
                mime,
                voice.get("file_size"),
            )
        )
    return out


def parse_update(update: Any, chat_id: str, channel: str, key: bytes) -> ParsedUpdate | None:
    """The hub message of one update, or None (not a message, or not the configured chat)."""
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    message_id = message.get("message_id")
    if str(chat.get("id")) != str(chat_id) or not isinstance(message_id, int):
        return None  # another chat, or not a message (every Bot API message has an id)
    user = message.get("from") or {}
    content = message.get("text")
    if content is None:
        content = message.get("caption") or ""
    files = _files(message)
    if not content and not files:
        return None  # service messages (joins, pins...) carry nothing to post
    metadata: dict[str, Any] = {
        "source": SOURCE,
        "telegram_user": " ".join(x for x in (user.get("first_name"), user.get("last_name")) if x)
        or None,
        "telegram_user_id": user.get("id"),
        "telegram_chat_id": chat.get("id"),
        "telegram_message_id": message_id,
        "telegram_username": user.get("username"),
    }
    reply = message.get("reply_to_message")
    if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
        metadata["telegram_reply_to"] = reply["message_id"]
    date = message.get("date")
    if not isinstance(date, int):
        date = 0
    envelope = {
        "type": "message",
        "sender": sender_name(user, chat),
        "id": hub_message_id(chat_id, message_id, key),
        "ts": iso_from_epoch(date) if date else datetime.now(UTC).isoformat(),
        "payload": {
            "channel": channel,
            "content": content,
            "metadata": metadata,
            "attachments": [],
        },
    }
    return ParsedUpdate(update["update_id"], clean_text(envelope), files, date)


def media_relpath(ref: FileRef, date: int) -> str:
    """Where a fetched file lives under the media root: the same path on every retry."""
    month = datetime.fromtimestamp(date or 0, UTC).strftime("%Y-%m")
    name = uuid.uuid5(FILE_NAMESPACE, ref.file_unique_id).hex
    return f"{month}/{name}{_ext(ref.filename, ref.mime_type)}"


def attachment(ref: FileRef, relpath: str, size: int) -> dict[str, Any]:
    """The attachment record, shaped like an upload's (PROTOCOL.md §6)."""
    return {
        "file_id": PurePosixPath(relpath).stem,
        "url": f"/media/{relpath}",
        "mime_type": ref.mime_type,
        "filename": ref.filename,
        "size": size,
        "kind": ref.kind,
    }


def is_from_telegram(metadata: Any) -> bool:
    return isinstance(metadata, dict) and metadata.get("source") == SOURCE


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at a newline or space when one is near."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _fit(rest, limit)
        window = rest[:cut]
        soft = max(window.rfind("\n"), window.rfind(" "))
        if soft >= cut // 2:
            cut = soft + 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The longest prefix length (in code points) of at most `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _truncate(text: str, limit: int) -> str:
    return text if utf16_len(text) <= limit else text[: _fit(text, limit - 1)] + "…"


def reply_target(metadata: Any) -> int | None:
    """A Telegram message id this message answers, from its metadata, if given directly."""
    if not isinstance(metadata, dict):
        return None
    for key in ("telegram_reply_to", "reply_to_message_id"):
        value = metadata.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def is_photo(att: dict[str, Any]) -> bool:
    return str(att.get("mime_type") or "").lower() in PHOTO_TYPES


def outbound_calls(
    sender: str, content: str, attachments: list[Any], chat_id: str, reply_to: int | None = None
) -> list[OutCall]:
    """The Bot API calls that carry one hub message to the chat, in order."""
    calls: list[OutCall] = []
    base: dict[str, Any] = {"chat_id": chat_id}
    if content:
        for piece in split_text(f"[{sender}] {content}"):
            calls.append(OutCall("sendMessage", {**base, "text": piece}))
    for att in attachments:
        if not isinstance(att, dict) or not att.get("url"):
            continue
        label = att.get("filename") or ""
        caption = _truncate(f"[{sender}] {label}".rstrip(), CAPTION_LIMIT)
        field = "photo" if is_photo(att) else "document"
        method = "sendPhoto" if field == "photo" else "sendDocument"
        calls.append(OutCall(method, {**base, "caption": caption}, field, att))
    if not calls:
        calls.append(OutCall("sendMessage", {**base, "text": f"[{sender}]"}))
    if reply_to:  # the first piece answers the message; the rest follow it
        first = calls[0]
        calls[0] = OutCall(
            first.method,
            {**first.params, "reply_to_message_id": reply_to, "allow_sending_without_reply": True},
            first.file_field,
            first.attachment,
        )
    return calls
