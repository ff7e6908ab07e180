"""Messages posted by people (REST and the observer socket): validate, then wait until durable.

`build_envelope` is pure: it turns a REST body or an observer frame into the
envelope an agent would have sent, validated by the same codec rules.
`post_envelope` hands it to the persister and raises what it refused as a
`MessageRefused` with the persister's code (409 for DUPLICATE_ID, 400 otherwise).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scitex_orochi.hub.errors import IngestTimeout, as_code
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.constants import new_id, now_iso
from scitex_orochi.protocol.errors import ErrorCode

from .errors import ApiError, bad_request
from .keys import BUS, CONFIG, Poster

DEFAULT_SENDER = "api"


class MessageRefused(ApiError):
    """The persister refused a posted message (INVALID_MESSAGE, DUPLICATE_ID, ...)."""

    code_in_body = True  # the same code an agent gets in its error frame

    def __init__(self, code: ErrorCode, detail: str, msg_id: str) -> None:
        super().__init__(code, detail, id=msg_id)


def normalize_channel(name: str) -> str:
    """`general` and `#general` name the same channel (the `#` is optional in URLs)."""
    return name if name.startswith("#") else "#" + name


def check_sender(value: object, field: str = "sender") -> str:
    """A person's posting name: the rules of agent names, except that the names agents
    may not take (api, dashboard, ...) are allowed; the server's never are."""
    if isinstance(value, str):
        value = value.strip()
    try:
        return codec.check_name(value, field, agent=False)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, field) from None


def build_envelope(data: dict[str, Any]) -> dict[str, Any]:
    """A message envelope from `{sender, payload:{channel, content, metadata, attachments}}`.

    The top-level form `{sender, channel, content, ...}` is accepted too. Raises
    an INVALID_FIELD ApiError naming the offending field.
    """
    sender = check_sender(data.get("sender", DEFAULT_SENDER))
    payload = data.get("payload")
    if payload is None:
        payload = {
            k: data[k] for k in ("channel", "content", "metadata", "attachments") if k in data
        }
    if not isinstance(payload, dict):
        raise bad_request("payload must be an object", "payload")
    payload = dict(payload)
    channel = payload.get("channel")
    if isinstance(channel, str) and channel and not conv.is_dm(channel):
        payload["channel"] = normalize_channel(channel)
    msg_id = data.get("id")
    if msg_id is not None and (
        not isinstance(msg_id, str) or not msg_id or len(msg_id) > codec.MAX_ID_CHARS
    ):
        raise bad_request(f"id must be a string of 1..{codec.MAX_ID_CHARS} characters", "id")
    frame = {
        "type": "message",
        "sender": sender,
        "id": msg_id or new_id(),
        "ts": now_iso(),
        "payload": payload,
    }
    try:
        parsed = codec.parse_frame(codec.dumps(frame))
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, exc.field) from None
    return parsed.to_dict()


def item_envelope(kind: str, sender: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The frame of an in-item that is not a message (`forget`, `diagnosis`, ...): the
    persister parses it (persister/rows.py), the id names its ack."""
    return {"type": kind, "sender": sender, "id": new_id(), "ts": now_iso(), "payload": payload}


async def post_item(
    app: web.Application, workspace: str, envelope: dict[str, Any], *, admin: bool
) -> dict[str, Any]:
    """`post_envelope` with the app's bus and REST timeout: the answer once on disk."""
    return await post_envelope(
        app[BUS], workspace, envelope, app[CONFIG].http.post_timeout_s, admin=admin
    )


async def post_envelope(
    poster: Poster,
    workspace: str,
    envelope: dict[str, Any],
    timeout_s: float,
    *,
    sender_type: str = "human",
    admin: bool = False,
) -> dict[str, Any]:
    """Post and wait for the durable ack: `{"status","id","seq","channel","num"}`.

    503 if the persister does not confirm in time (the message stays queued and
    is stored once the persister is back; re-posting the same `id` is safe).
    """
    try:
        ack = await poster.post(
            workspace, envelope, timeout_s, sender_type=sender_type, admin=admin
        )
    except IngestTimeout:
        raise ApiError(
            ErrorCode.PERSIST_TIMEOUT,
            f"the persister did not confirm message {envelope['id']} within "
            f"{timeout_s:.0f}s; it stays queued and will be stored when the "
            "persister is back (re-posting the same id is safe)",
            id=envelope["id"],
        ) from None
    if ack.get("error"):
        err = ack["error"]
        raise MessageRefused(
            as_code(err.get("code"), ErrorCode.INVALID_MESSAGE),
            str(err.get("detail") or "message refused"),
            envelope["id"],
        )
    result = {
        "status": "ok",
        "id": envelope["id"],
        "seq": ack.get("seq"),
        "channel": ack.get("channel") or envelope["payload"].get("channel"),
        "workspace": workspace,
        "duplicate": bool(ack.get("dup")),
    }
    if ack.get("num") is not None:
        result["num"] = ack["num"]
    if ack.get("outcome"):
        result["outcome"] = ack["outcome"]
    if ack.get("count") is not None:  # a forget: the registry entries it removed
        result["count"] = ack["count"]
    return result
