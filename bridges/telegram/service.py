"""The Telegram bridge's I/O: Bot API on one side, the hub bus on the other.

On the bus it is a `BusPeer` (`scitex_orochi.hub.peer`): the peer owns the
Ingest, serves the webhook requests and keeps every task.

Inbound (Telegram -> hub): long polling with getUpdates, or, in webhook mode,
updates forwarded by the HTTP gateway as `rpc.telegram|` requests. Each update
of the configured chat is posted through `Ingest` with an id derived from
(chat_id, message_id); the polling offset advances only after the persister's
durable ack, and a re-post after a restart is deduped by the persister.

Outbound (hub -> Telegram): deliveries on `dlv.<workspace>.<channel>|` are sent in seq
order; progress is saved after every successful Bot API call (`state.py`), and
on start the bridge catches up from the database, so a restart neither skips
nor repeats a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from scitex_orochi.hub import media_meta
from scitex_orochi.hub.bus_bodies import Delivery, DeliveryBody, ErrorBody, TelegramRpc
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.errors import IngestTimeout
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.peer import BusPeer
from scitex_orochi.protocol import topics
from scitex_orochi.protocol.errors import ErrorCode

from . import mapping
from .api import BACKOFF_MAX_S, BotApi, TelegramError
from .state import OutboundState

log = logging.getLogger("orochi.telegram")

STATE_FILE = "telegram-bridge.json"
BRIDGE_KEY_FILE = "bridge.key"
BUS_BURST = 1000
INGEST_WAIT_S = 10.0
CATCH_UP_BATCH = 200
POLL_HTTP_MARGIN_S = 15.0
WEBHOOK_PATH = "/webhook/telegram"
SERVICE = "telegram"
MEDIA_SOURCE = "telegram"
WEBHOOK_FAILED = ErrorBody(
    code=str(ErrorCode.TELEGRAM_BRIDGE_ERROR), detail="the update could not be stored"
)


@dataclass(frozen=True)
class OutMessage:
    seq: int
    id: str
    sender: str
    content: str
    metadata: dict[str, Any]
    attachments: list[Any]


def message_from_delivery(body: Delivery) -> OutMessage:
    frame = json.loads(body["frame"]) if isinstance(body["frame"], str | bytes) else body["frame"]
    payload = frame.get("payload") or {}
    return OutMessage(
        int(body["seq"]),
        str(body.get("id") or frame.get("id")),
        str(frame.get("sender") or body.get("sender") or ""),
        payload.get("content") or "",
        payload.get("metadata") or {},
        payload.get("attachments") or [],
    )


def message_from_row(row: dict[str, Any]) -> OutMessage:
    return OutMessage(
        int(row["seq"]),
        row["msg_id"],
        row["sender"],
        row["content"] or "",
        row.get("metadata") or {},
        row.get("attachments") or [],
    )


class TelegramBridge:
    def __init__(self, cfg: Config, store: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.workspace = cfg.telegram.workspace
        self.channel = cfg.telegram.channel
        self.chat_id = str(cfg.telegram.chat_id)
        self.webhook_mode = bool(cfg.telegram.webhook_secret)
        self.peer = BusPeer(cfg, "telegram", ingest=True, burst=BUS_BURST)
        self.peer.route(
            topics.DELIVER,
            self._on_deliveries,
            subscribe=topics.deliver(self.workspace, self.channel),
        )
        if self.webhook_mode:  # answered once the dispatch loop runs, after getMe
            self.peer.serve(SERVICE, self._on_webhook_update, crash_error=WEBHOOK_FAILED)
        self.state = OutboundState(cfg.data_dir / STATE_FILE, f"{self.workspace}/{self.channel}")
        self.id_key = bridge_key(cfg.data_dir / BRIDGE_KEY_FILE)
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.api: BotApi | None = None
        self.offset: int | None = None
        self.posted = 0
        self.sent = 0

    @property
    def ingest(self) -> Ingest:
        assert self.peer.ingest is not None
        return self.peer.ingest

    # ---- lifecycle -------------------------------------------------------
    async def run(self) -> int:
        self.peer.stop_on_signals()
        main = self.peer.spawn(self._main(), "main")
        stop = self.peer.spawn(self.peer.stopping.wait(), "stop")
        try:
            await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
            code = main.result() if main.done() else 0
        finally:
            await self.peer.stop()
        log.info(
            "telegram bridge stopped: %d posted to the hub, %d sent to telegram",
            self.posted,
            self.sent,
        )
        return code

    async def _main(self) -> int:
        async with aiohttp.ClientSession() as session:
            self.api = BotApi(
                session, self.cfg.telegram.api_base, self.cfg.telegram.bot_token or ""
            )
            try:
                me = await self.api.call("getMe")
            except TelegramError as exc:
                log.error(
                    "telegram refused the bot token (%s %s): check "
                    "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN",
                    exc.error_code,
                    exc.description,
                )
                return 2
            await self.peer.start()
            log.info(
                "telegram bridge for @%s: chat %s <-> %s %s (%s)",
                (me or {}).get("username"),
                self.chat_id,
                self.workspace,
                self.channel,
                "webhook" if self.webhook_mode else "long polling",
            )
            loops = [self._outbound_loop()]
            if self.webhook_mode:
                await self._set_webhook()
            else:
                loops.append(self._poll_loop())
            await asyncio.gather(*loops)
        return 0

    async def _set_webhook(self) -> None:
        url = self.cfg.telegram.webhook_url
        if not url:
            log.info(
                "webhook mode: SCITEX_OROCHI_TELEGRAM_WEBHOOK_URL unset, so setWebhook "
                "is left to the operator (POST %s on the HTTP gateway)",
                WEBHOOK_PATH,
            )
            return
        url = url.rstrip("/")
        if not url.endswith(WEBHOOK_PATH):
            url += WEBHOOK_PATH
        assert self.api is not None
        await self.api.call(
            "setWebhook",
            {
                "url": url,
                "secret_token": self.cfg.telegram.webhook_secret,
                "allowed_updates": ["message"],
            },
        )
        log.info("webhook set to %s", url)

    def _on_deliveries(self, body: DeliveryBody) -> None:
        for item in body.get("items") or ():
            if item.get("ws") == self.workspace and item.get("channel") == self.channel:
                self.deliveries.put_nowait(item)

    # ---- inbound -----------------------------------------------------------
    async def _poll_loop(self) -> None:
        assert self.api is not None
        timeout = self.cfg.telegram.poll_timeout_s
        while True:
            params: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message"]}
            if self.offset is not None:
                params["offset"] = self.offset
            try:
                updates = await self.api.call(
                    "getUpdates", params, timeout_s=timeout + POLL_HTTP_MARGIN_S
                )
            except TelegramError as exc:
                log.error(
                    "getUpdates refused: %s %s; retrying in %.0fs",
                    exc.error_code,
                    exc.description,
                    BACKOFF_MAX_S,
                )
                await asyncio.sleep(BACKOFF_MAX_S)
                continue
            for update in updates or []:
                await self.accept_update(update)
                # Only now, with the message durable, may Telegram forget this update.
                self.offset = int(update["update_id"]) + 1

    async def _on_webhook_update(self, request: TelegramRpc) -> dict[str, Any]:
        """A webhook update forwarded by the HTTP gateway, answered once it is durable."""
        await self.accept_update(request.get("update"))
        return {"ok": True}

    async def accept_update(self, update: Any) -> None:
        """Post one update's message to the hub and return once it is durable (or ignored)."""
        inbound = mapping.parse_update(update, self.chat_id, self.channel, self.id_key)
        if inbound is None:
            log.info(
                "ignored update %s: not a message of chat %s",
                update.get("update_id") if isinstance(update, dict) else "?",
                self.chat_id,
            )
            return
        payload = inbound.envelope["payload"]
        for ref in inbound.files:
            att = await self._fetch(ref, inbound.date)
            if att is not None:
                payload["attachments"].append(att)
            else:
                payload["metadata"].setdefault("telegram_missing_files", []).append(ref.filename)
        await self._post_durable(inbound.envelope)

    async def _post_durable(self, envelope: dict[str, Any]) -> None:
        while True:
            try:
                ack = await self.ingest.post(self.workspace, envelope, "human", INGEST_WAIT_S)
                break
            except IngestTimeout:
                log.warning(
                    "message %s not durable after %.0fs; still waiting",
                    envelope["id"],
                    INGEST_WAIT_S,
                )
        if ack.get("error"):
            log.error("the hub refused telegram message %s: %s", envelope["id"], ack["error"])
        elif not ack.get("dup"):
            self.posted += 1

    async def _fetch(self, ref: mapping.FileRef, date: int) -> dict[str, Any] | None:
        rel = mapping.media_relpath(ref, date)
        path = self.cfg.http.media_root / rel
        loop = asyncio.get_running_loop()
        if path.is_file():  # fetched before (a redelivered update)
            if media_meta.read_sidecar(path) is None:
                await loop.run_in_executor(None, _record_owner, path, ref, self.workspace, None)
            return mapping.attachment(ref, rel, path.stat().st_size)
        if ref.size is not None and ref.size > self.cfg.http.media_max_bytes:
            log.warning(
                "telegram file %s is %d bytes, over the media limit; not fetched",
                ref.filename,
                ref.size,
            )
            return None
        assert self.api is not None
        try:
            info = await self.api.call("getFile", {"file_id": ref.file_id})
            data = await self.api.download(info["file_path"])
        except (TelegramError, KeyError, TypeError) as exc:
            log.warning("could not fetch telegram file %s: %s", ref.filename, exc)
            return None
        await loop.run_in_executor(None, _store_media, path, ref, self.workspace, data)
        return mapping.attachment(ref, rel, len(data))

    # ---- outbound ----------------------------------------------------------
    async def _outbound_loop(self) -> None:
        await self._init_outbound()
        while True:
            body = await self.deliveries.get()
            seq = int(body["seq"])
            assert self.state.seq is not None
            if seq <= self.state.seq:
                continue
            if seq == self.state.seq + 1:
                await self.send_out(message_from_delivery(body))
            else:  # a gap: the missing messages are in the database already
                await self._catch_up()

    async def _init_outbound(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.state.load)
        if self.state.seq is None:
            # First run: start at the channel's current end rather than replaying history.
            self.state.seq = await loop.run_in_executor(
                None, self.store.max_seq, self.workspace, self.channel
            )
            await loop.run_in_executor(None, self.state.save)
            log.info("outbound starts after seq %d of %s", self.state.seq, self.channel)
        await self._catch_up()

    async def _catch_up(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            rows = await loop.run_in_executor(
                None,
                lambda: self.store.history(
                    self.workspace, self.channel, after_seq=self.state.seq, limit=CATCH_UP_BATCH
                ),
            )
            if not rows:
                return
            for row in rows:
                await self.send_out(message_from_row(row))

    async def send_out(self, msg: OutMessage) -> None:
        """Send one hub message to the chat, resuming after the calls a previous run made."""
        if mapping.is_from_telegram(msg.metadata):
            self.state.message_done(msg.seq)
            return
        reply_to = mapping.reply_target(msg.metadata) or await self._reply_target(msg.metadata)
        calls = mapping.outbound_calls(
            msg.sender, msg.content, msg.attachments, self.chat_id, reply_to
        )
        for index in range(self.state.part, len(calls)):
            result = await self._execute(calls[index], msg)
            if (
                index == 0
                and isinstance(result, dict)
                and isinstance(result.get("message_id"), int)
            ):
                self.state.remember(msg.id, result["message_id"])
            if index + 1 < len(calls):
                self.state.part_done(index + 1)
        self.state.message_done(msg.seq)
        self.sent += 1

    async def _execute(self, call: mapping.OutCall, msg: OutMessage) -> Any:
        assert self.api is not None
        params = dict(call.params)
        files = None
        if call.file_field and call.attachment is not None:
            source = await self._attachment_source(call.attachment)
            if source is None:
                log.error(
                    "attachment %s of message %s is not readable; skipped",
                    call.attachment.get("url"),
                    msg.id,
                )
                return None
            if isinstance(source, str):
                params[call.file_field] = source
            else:
                files = {call.file_field: source}
        try:
            return await self.api.call(call.method, params, files=files)
        except TelegramError as exc:
            # A permanent refusal (400, 403...): retrying cannot help, and blocking
            # the channel behind it would stop every later message.
            log.error(
                "telegram refused %s for message %s (seq %d): %s %s; skipped",
                call.method,
                msg.id,
                msg.seq,
                exc.error_code,
                exc.description,
            )
            return None

    async def _attachment_source(self, att: dict[str, Any]) -> str | tuple[str, bytes, str] | None:
        url = str(att.get("url") or "")
        if url.startswith(("http://", "https://")):
            return url  # Telegram fetches it itself
        if not url.startswith("/media/"):
            return None
        root = self.cfg.http.media_root.resolve()
        path = (root / url[len("/media/") :]).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        data = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
        mime = att.get("mime_type") or "application/octet-stream"
        return (att.get("filename") or path.name, data, mime)

    async def _reply_target(self, metadata: dict[str, Any]) -> int | None:
        """The Telegram message id of the hub message this one replies to (`reply_to`)."""
        hub_id = metadata.get("reply_to") if isinstance(metadata, dict) else None
        if not isinstance(hub_id, str) or not hub_id:
            return None
        if hub_id in self.state.sent:
            return self.state.sent[hub_id]
        found = await asyncio.get_running_loop().run_in_executor(
            None, self.store.find_messages, [(self.workspace, hub_id)]
        )
        row = found.get((self.workspace, hub_id))
        if row and mapping.is_from_telegram(row.get("metadata")):
            value = row["metadata"].get("telegram_message_id")
            return value if isinstance(value, int) else None
        return None


def bridge_key(path: Path) -> bytes:
    """The hub's secret for deriving bridge message ids: created once (0600), then kept."""
    from scitex_orochi.hub.store import read_admin_token, write_new_secret

    existing = read_admin_token(path)
    if existing is None:
        existing = write_new_secret(path, secrets.token_hex(32))
    return existing.encode()


def _store_media(path: Path, ref: mapping.FileRef, workspace: str, data: bytes) -> None:
    media_meta.write_atomic(path, data)
    _record_owner(path, ref, workspace, data)


def _record_owner(path: Path, ref: mapping.FileRef, workspace: str, data: bytes | None) -> None:
    """The sidecar that lets /media serve the file to the bridge's workspace."""
    digest = hashlib.sha256(data).hexdigest() if data is not None else media_meta.sha256_of(path)
    size = len(data) if data is not None else path.stat().st_size
    media_meta.write_sidecar(
        path,
        workspace=workspace,
        mime_type=ref.mime_type,
        filename=ref.filename,
        size=size,
        sha256=digest,
        source=MEDIA_SOURCE,
    )
