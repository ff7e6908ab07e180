"""A Telegram Bot API server for tests, faithful to the parts the bridge uses.

`POST|GET /bot<token>/<method>` with JSON, form or multipart parameters;
answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description"
[, "parameters": {"retry_after"}]}` with the same HTTP status. getUpdates has the
real offset semantics (an offset confirms every earlier update), long-polls up to
`timeout` seconds, and a second concurrent getUpdates ends the first with 409, as
does getUpdates while a webhook is set. setWebhook makes the server push updates
to the URL with the secret header until it answers 200. Faults are injected per
method with `fail()`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from support.fake_threaded import ThreadedServer

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "OrochiBot", "username": "orochi_bot"}
DEFAULT_USER = {
    "id": 4242,
    "is_bot": False,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada",
    "language_code": "en",
}


@dataclass
class Fault:
    status: int
    description: str
    retry_after: int | None = None
    disconnect: bool = False
    hold: Any = None  # a predicate on the params: such a call waits for release(), then 502s


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram(ThreadedServer):
    def __init__(self, token: str = "123456:TEST-token-abcdef", chat_id: int = -100123) -> None:
        super().__init__()
        self.token = token
        self.chat_id = chat_id
        self.chat = {"id": chat_id, "title": "Orochi test", "type": "supergroup"}
        self.updates: list[dict[str, Any]] = []  # not yet confirmed
        self._update_ids = itertools.count(5000)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self.known_messages: set[int] = set()
        self.files: dict[str, dict[str, Any]] = {}  # file_id -> {path, data, unique}
        self.sent: list[dict[str, Any]] = []  # successful send* calls
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[Fault]] = {}
        self.conflicts_sent = 0
        self.offsets: list[int] = []
        self.webhook: dict[str, Any] | None = None
        self.webhook_posts: list[int] = []
        self._poller: object | None = None
        self._changed = asyncio.Event()
        self._pusher: asyncio.Task | None = None
        self._released = asyncio.Event()
        self.held = 0

    # ---- test side (call from any thread) -----------------------------------
    def user_message(
        self,
        text: str | None = None,
        *,
        caption: str | None = None,
        photo: bytes | None = None,
        document: tuple[str, bytes, str] | None = None,
        voice: bytes | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        user: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user's message arrives in a chat: queued as an update."""
        return self.call(
            lambda: self._user_message(
                text, caption, photo, document, voice, chat_id, reply_to, user
            )
        )

    def add_update(self, update_body: dict[str, Any]) -> dict[str, Any]:
        def add() -> dict[str, Any]:
            update = {"update_id": next(self._update_ids), **update_body}
            self.updates.append(update)
            self._notify()
            return update

        return self.call(add)

    def fail(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        disconnect: bool = False,
    ) -> None:
        text = description or {
            429: f"Too Many Requests: retry after {retry_after}",
            409: "Conflict: terminated by other getUpdates request; make "
            "sure that only one bot instance is running",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Bad Request")
        fault = Fault(status, text, retry_after, disconnect)
        self.call(lambda: self.faults.setdefault(method, []).extend([fault] * times))

    def stop(self) -> None:
        async def cancel_pusher() -> None:
            self.webhook = None
            if self._pusher is not None:
                self._pusher.cancel()
                await asyncio.gather(self._pusher, return_exceptions=True)

        self.run(cancel_pusher())
        super().stop()

    def hold(self, method: str, predicate: Any = None) -> None:
        """The next call of `method` matching `predicate` hangs until release(), then 502s
        unprocessed: a request that was in flight when its client died never took effect."""
        fault = Fault(502, "Bad Gateway", hold=predicate or (lambda params: True))
        self.call(lambda: self.faults.setdefault(method, []).append(fault))

    def release(self) -> None:
        self.call(self._released.set)

    def set_webhook(self, url: str, secret: str) -> None:
        """What an operator does by hand: point the bot's webhook somewhere."""

        async def do() -> None:
            await self._m_setWebhook({"url": url, "secret_token": secret}, {})

        self.run(do())

    def sent_texts(self) -> list[str]:
        return [
            s["params"].get("text") or s["params"].get("caption") or "" for s in list(self.sent)
        ]

    def method_calls(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in list(self.calls) if name == method]

    # ---- state ---------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _add_file(self, data: bytes, path_prefix: str, ext: str) -> dict[str, Any]:
        n = next(self._file_ids)
        file_id = f"AgAC-{n:04d}-{len(data)}"
        unique = f"AQAD{n:04d}"
        self.files[file_id] = {
            "path": f"{path_prefix}/file_{n}{ext}",
            "data": data,
            "unique": unique,
        }
        return {"file_id": file_id, "file_unique_id": unique, "file_size": len(data)}

    def _user_message(
        self, text, caption, photo, document, voice, chat_id, reply_to, user
    ) -> dict[str, Any]:
        message_id = next(self._message_ids)
        self.known_messages.add(message_id)
        chat = (
            dict(self.chat)
            if chat_id is None
            else {"id": chat_id, "type": "private", "first_name": "Other"}
        )
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user or DEFAULT_USER,
            "chat": chat,
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
        if caption is not None:
            message["caption"] = caption
        if photo is not None:
            big = self._add_file(photo, "photos", ".jpg")
            small = self._add_file(photo[: max(1, len(photo) // 4)], "photos", ".jpg")
            message["photo"] = [
                {**small, "width": 90, "height": 67},
                {**big, "width": 1280, "height": 960},
            ]
        if document is not None:
            name, data, mime = document
            message["document"] = {
                **self._add_file(data, "documents", ""),
                "file_name": name,
                "mime_type": mime,
            }
        if voice is not None:
            message["voice"] = {
                **self._add_file(voice, "voice", ".oga"),
                "duration": 2,
                "mime_type": "audio/ogg",
            }
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to,
                "chat": self.chat,
                "date": int(time.time()),
            }
        update = {"update_id": next(self._update_ids), "message": message}
        self.updates.append(update)
        self._notify()
        return message

    # ---- HTTP ----------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        return app

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _err(status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, Any] = {}
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if part.filename:
                    files[part.name] = (
                        part.filename,
                        await part.read(),
                        part.headers.get("Content-Type", ""),
                    )
                else:
                    params[part.name] = await part.text()
        elif request.can_read_body:
            params.update(await request.post())
        for key in ("allowed_updates",):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._err(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await self._params(request)
        self.calls.append((method, params))
        faults = self.faults.get(method)
        if faults and (faults[0].hold is None or faults[0].hold(params)):
            fault = faults.pop(0)
            if fault.hold is not None:
                self.held += 1
                await self._released.wait()
                return self._err(502, "Bad Gateway")
            if fault.disconnect:
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
            return self._err(fault.status, fault.description, fault.retry_after)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._err(404, "Not Found")
        return await handler(params, files)

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._err(401, "Unauthorized")
        for info in self.files.values():
            if info["path"] == request.match_info["path"]:
                return web.Response(body=info["data"], content_type="application/octet-stream")
        return self._err(404, "Not Found")

    # ---- methods -------------------------------------------------------------
    async def _m_getMe(self, params, files) -> web.Response:
        return self._ok(BOT_USER)

    async def _m_getUpdates(self, params, files) -> web.Response:
        if self.webhook is not None:
            return self._err(
                409,
                "Conflict: can't use getUpdates method while webhook is "
                "active; use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        me = object()
        if self._poller is not None:
            self._notify()  # wakes the older request, which then answers 409
        self._poller = me
        if offset > 0:
            self.offsets.append(offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            if self._poller is not me:
                self.conflicts_sent += 1
                return self._err(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            ready = [u for u in self.updates if u["update_id"] >= offset][:limit]
            left = deadline - time.monotonic()
            if ready or left <= 0:
                self._poller = None
                return self._ok(ready)
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def _check_chat(self, params: dict[str, Any]) -> web.Response | None:
        if str(params.get("chat_id")) != str(self.chat_id):
            return self._err(400, "Bad Request: chat not found")
        reply = params.get("reply_to_message_id")
        allow = str(params.get("allow_sending_without_reply")).lower() == "true"
        if reply is not None and int(reply) not in self.known_messages and not allow:
            return self._err(400, "Bad Request: message to be replied not found")
        return None

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        message_id = next(self._message_ids)
        self.known_messages.add(message_id)
        message = {
            "message_id": message_id,
            "from": BOT_USER,
            "chat": self.chat,
            "date": int(time.time()),
            **content,
        }
        reply = params.get("reply_to_message_id")
        if reply is not None and int(reply) in self.known_messages:
            message["reply_to_message"] = {
                "message_id": int(reply),
                "chat": self.chat,
                "date": int(time.time()),
            }
        return message

    async def _m_sendMessage(self, params, files) -> web.Response:
        bad = self._check_chat(params)
        if bad is not None:
            return bad
        text = params.get("text") or ""
        if not text.strip():
            return self._err(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            return self._err(400, "Bad Request: message is too long")
        message = self._message(params, text=text)
        self.sent.append(
            {"method": "sendMessage", "params": params, "file": None, "message": message}
        )
        return self._ok(message)

    async def _send_file(self, method: str, field: str, params, files) -> web.Response:
        bad = self._check_chat(params)
        if bad is not None:
            return bad
        caption = params.get("caption") or ""
        if _utf16_len(caption) > 1024:
            return self._err(400, "Bad Request: message caption is too long")
        upload = files.get(field)
        if upload is None and not params.get(field):
            return self._err(400, f"Bad Request: there is no {field} in the request")
        data = upload[1] if upload else b""
        meta = self._add_file(data, field + "s", "")
        content: dict[str, Any]
        if field == "photo":
            content = {"photo": [{**meta, "width": 800, "height": 600}]}
        else:
            content = {
                "document": {
                    **meta,
                    "file_name": upload[0] if upload else "file",
                    "mime_type": upload[2] if upload else "",
                }
            }
        if caption:
            content["caption"] = caption
        message = self._message(params, **content)
        self.sent.append({"method": method, "params": params, "file": upload, "message": message})
        return self._ok(message)

    async def _m_sendPhoto(self, params, files) -> web.Response:
        return await self._send_file("sendPhoto", "photo", params, files)

    async def _m_sendDocument(self, params, files) -> web.Response:
        return await self._send_file("sendDocument", "document", params, files)

    async def _m_getFile(self, params, files) -> web.Response:
        info = self.files.get(str(params.get("file_id")))
        if info is None:
            return self._err(400, "Bad Request: invalid file_id")
        return self._ok(
            {
                "file_id": params["file_id"],
                "file_unique_id": info["unique"],
                "file_size": len(info["data"]),
                "file_path": info["path"],
            }
        )

    async def _m_setWebhook(self, params, files) -> web.Response:
        url = params.get("url") or ""
        if not url:
            return await self._m_deleteWebhook(params, files)
        if not url.startswith(("http://", "https://")):
            return self._err(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
        }
        self._notify()
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self._push())
        return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})

    async def _m_deleteWebhook(self, params, files) -> web.Response:
        self.webhook = None
        return web.json_response({"ok": True, "result": True, "description": "Webhook was deleted"})

    async def _m_getWebhookInfo(self, params, files) -> web.Response:
        return self._ok(
            {
                "url": (self.webhook or {}).get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
            }
        )

    async def _push(self) -> None:
        """Deliver updates to the webhook in order, each until it is answered 200."""
        async with aiohttp.ClientSession() as session:
            while self.webhook is not None:
                if not self.updates:
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.5)
                    except TimeoutError:
                        pass
                    continue
                update = self.updates[0]
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                try:
                    async with session.post(
                        self.webhook["url"], json=update, headers=headers
                    ) as resp:
                        self.webhook_posts.append(resp.status)
                        delivered = resp.status == 200
                except aiohttp.ClientError:
                    delivered = False
                if delivered:
                    if self.updates and self.updates[0] is update:
                        self.updates.pop(0)
                else:
                    await asyncio.sleep(0.1)
