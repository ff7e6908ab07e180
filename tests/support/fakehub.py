"""A small single-process hub that speaks PROTOCOL.md, for testing agents and the client.

It is not the real hub (no bus, no persister, memory only), but it keeps the same
wire rules: replies before acks, `ref` on acks/replies/errors, `payload.seq` on
delivered messages, `after_seq` queries oldest first, AUTH_FAILED + 4001, 4000 on
a second register of a name. Knobs let a test drop connections or hold acks.
Conversations (docs/conversations.md), simply: `num` on acks and rows, react / edit /
delete acked with `outcome` and an event `seq`, the events sent to members that
registered `capabilities: ["events"]`, replies carrying `payload.thread` (a reply to no
known message is a plain message, as the hub stores it), `query`
with `search` (every word, newest first) and errors with the contract's codes.

    async with FakeHub(token="t") as hub:
        client = OrochiClient("a", port=hub.port, token="t")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from scitex_orochi.client.core import build_frame, now_iso
from scitex_orochi.protocol.mentions import extract_mentions

SERVER = "orochi-server"


class FakeHub:
    def __init__(self, token: str | None = "secret", refs_on_replies: bool = True) -> None:
        self.token = token
        self.refs_on_replies = refs_on_replies
        self.port = 0
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ids: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = defaultdict(set)
        self.conns: dict[str, ServerConnection] = {}
        self.capabilities: dict[str, set[str]] = {}
        self.by_num: dict[int, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.frames: list[dict[str, Any]] = []  # every frame received, for assertions
        self.hold_acks = False  # store messages but send no ack (as if the ack was lost)
        self.registered = asyncio.Condition()
        self.registrations = 0
        self.stored = asyncio.Condition()
        self._server: Server | None = None

    async def __aenter__(self) -> FakeHub:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # ---- test controls -----------------------------------------------------
    async def drop_all(self, code: int = 1011) -> None:
        """Close every agent connection, as a crashing gateway would."""
        for ws in list(self.conns.values()):
            await ws.close(code, "test drop")

    async def wait_registrations(self, count: int, timeout: float = 5.0) -> None:
        async with self.registered:
            await asyncio.wait_for(
                self.registered.wait_for(lambda: self.registrations >= count), timeout
            )

    async def wait_stored(self, channel: str, count: int, timeout: float = 5.0) -> None:
        async with self.stored:
            await asyncio.wait_for(
                self.stored.wait_for(lambda: len(self.rows[channel]) >= count), timeout
            )

    def post(self, sender: str, channel: str, content: str) -> dict[str, Any]:
        """Store a message without delivering it (as if posted while we were away)."""
        frame = build_frame("message", sender, {"channel": channel, "content": content})
        return self._store(frame, sender)

    async def deliver(self, sender: str, channel: str, content: str) -> dict[str, Any]:
        """Store and deliver a message, as if another agent or REST posted it."""
        row = self.post(sender, channel, content)
        await self._fan_out(row["_frame"], sender)
        return row

    # ---- protocol ------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        token = parse_qs(urlparse(ws.request.path).query).get("token", [None])[0]
        if self.token is not None and token != self.token:
            await ws.send(
                json.dumps(
                    {
                        "type": "error",
                        "sender": SERVER,
                        "payload": {"code": "AUTH_FAILED", "detail": "Invalid or missing token"},
                    }
                )
            )
            await ws.close(4001, "Authentication failed")
            return
        name: str | None = None
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                name = await self._on_frame(ws, frame, name)
        except ConnectionClosed:
            pass
        finally:
            if name is not None and self.conns.get(name) is ws:
                del self.conns[name]

    async def _reply(
        self, ws: ServerConnection, type_: str, payload: dict[str, Any], ref: str
    ) -> None:
        if self.refs_on_replies:
            payload = {**payload, "ref": ref}
        await ws.send(
            json.dumps(
                {
                    "type": type_,
                    "sender": SERVER,
                    "payload": payload,
                    "id": "r-" + ref,
                    "ts": now_iso(),
                }
            )
        )

    async def _ack(self, ws: ServerConnection, ref: str, **extra: Any) -> None:
        await ws.send(
            json.dumps(
                {"type": "ack", "sender": SERVER, "payload": {"status": "ok", "ref": ref, **extra}}
            )
        )

    async def _on_frame(
        self, ws: ServerConnection, frame: dict[str, Any], name: str | None
    ) -> str | None:
        type_, fid = frame.get("type"), frame.get("id", "")
        payload = frame.get("payload") or {}
        if type_ == "register":
            name = frame["sender"]
            old = self.conns.get(name)
            self.conns[name] = ws
            if old is not None and old is not ws:
                await old.close(4000, "Replaced by new connection")
            for channel in payload.get("channels", []):
                self.members[channel].add(name)
            self.capabilities[name] = set(payload.get("capabilities") or ())
            await self._ack(ws, fid)
            async with self.registered:
                self.registrations += 1
                self.registered.notify_all()
        elif type_ == "message" and name is not None:
            frame["sender"] = name
            row = self.ids.get(fid)
            dup = row is not None
            if row is None:
                reply_to = (payload.get("metadata") or {}).get("reply_to")
                root = self._find(reply_to) if reply_to is not None else None
                if root is not None and root["channel"] != payload["channel"]:
                    root = None  # a reply names a message of its own channel, else none
                row = self._store(frame, name, root)
                async with self.stored:
                    self.stored.notify_all()
                await self._fan_out(row["_frame"], name)
            if not self.hold_acks:
                await self._ack(
                    ws, fid, seq=row["seq"], channel=row["channel"], dup=dup, num=row["num"]
                )
        elif type_ in ("react", "edit", "delete") and name is not None:
            await self._change(ws, type_, fid, name, payload)
        elif type_ in ("subscribe", "unsubscribe") and name is not None:
            members = self.members[payload.get("channel", "")]
            (members.add if type_ == "subscribe" else members.discard)(name)
            await self._ack(ws, fid)
        elif type_ == "query" and "search" in payload:
            await self._reply(
                ws,
                "message",
                {"content": "", "search": payload["search"], "history": self._search(payload)},
                fid,
            )
            await self._ack(ws, fid)
        elif type_ == "query":
            await self._reply(
                ws,
                "message",
                {
                    "channel": payload.get("channel", "#general"),
                    "content": "",
                    "history": self._query(payload),
                },
                fid,
            )
            await self._ack(ws, fid)
        elif type_ == "presence":
            agents = {n: sorted(c for c, m in self.members.items() if n in m) for n in self.conns}
            await self._reply(ws, "presence", {"agents": agents}, fid)
            await self._ack(ws, fid)
        elif type_ in ("heartbeat", "status_update"):
            await self._ack(ws, fid)
        else:
            await self._reply(
                ws,
                "error",
                {"code": "UNKNOWN_TYPE", "detail": f"Unknown message type: {type_}"},
                fid,
            )
            await self._ack(ws, fid)
        return name

    def _store(
        self, frame: dict[str, Any], sender: str, root: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        payload = frame["payload"]
        channel = payload["channel"]
        seq = self._next_seq(channel)
        num = len(self.by_num) + 1
        mentions = extract_mentions(payload.get("content", ""))
        extra: dict[str, Any] = {"seq": seq, "mentions": mentions, "num": num}
        if root is not None:
            extra["thread"] = {"root": root["msg_id"], "num": root["num"]}
        delivered = {**frame, "payload": {**payload, **extra}}
        row = {
            "msg_id": frame["id"],
            "ts": frame["ts"],
            "channel": channel,
            "sender": sender,
            "content": payload.get("content", ""),
            "mentions": mentions,
            "metadata": payload.get("metadata", {}),
            "sender_type": "agent",
            "attachments": payload.get("attachments", []),
            "seq": seq,
            "num": num,
            "_frame": json.dumps(delivered),
        }
        if root is not None:
            row["thread"] = extra["thread"]
        self.rows[channel].append(row)
        self.ids[frame["id"]] = row
        self.by_num[num] = row
        return row

    def _next_seq(self, channel: str) -> int:
        """Messages and events share the channel's seq stream."""
        return len(self.rows[channel]) + len(self.events[channel]) + 1

    def _find(self, ref: Any) -> dict[str, Any] | None:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self.by_num.get(int(ref))
        return self.ids.get(ref) if isinstance(ref, str) else None

    async def _refuse(self, ws: ServerConnection, ref: str, code: str, detail: str) -> None:
        await self._reply(ws, "error", {"code": code, "detail": detail}, ref)
        await ws.send(
            json.dumps(
                {
                    "type": "ack",
                    "sender": SERVER,
                    "payload": {"status": "error", "ref": ref, "code": code},
                }
            )
        )

    async def _change(
        self, ws: ServerConnection, type_: str, fid: str, name: str, payload: dict[str, Any]
    ) -> None:
        row = self._find(payload.get("message"))
        if row is None:
            return await self._refuse(
                ws, fid, "UNKNOWN_MESSAGE", f"no message {payload.get('message')!r}"
            )
        if type_ != "react" and row["sender"] != name:
            return await self._refuse(ws, fid, "FORBIDDEN", "only the sender may change a message")
        if row.get("deleted"):
            return await self._refuse(ws, fid, "MESSAGE_DELETED", "the message was deleted")
        channel = row["channel"]
        base = {"channel": channel, "message": row["msg_id"], "num": row["num"]}
        if type_ == "react":
            who = row.setdefault("reactions", {}).setdefault(payload["emoji"], [])
            add = payload.get("action", "add") == "add"
            if add:
                outcome = "existed" if name in who else "added"
                if name not in who:
                    who.append(name)
            else:
                outcome = "removed" if name in who else "not_found"
                if name in who:
                    who.remove(name)
            if not who:
                del row["reactions"][payload["emoji"]]
            event = {
                **base,
                "emoji": payload["emoji"],
                "reactor": name,
                "action": "add" if add else "remove",
            }
            changed = outcome in ("added", "removed")
            kind = "reaction_update"
        elif type_ == "edit":
            row["content"] = payload["content"]
            row["edited_at"] = now_iso()
            event = {
                **base,
                "content": payload["content"],
                "editor": name,
                "edited_at": row["edited_at"],
            }
            outcome, changed, kind = "edited", True, "message_edit"
        else:
            row["deleted"], row["content"] = True, ""
            event = {**base, "deleted_by": name}
            outcome, changed, kind = "deleted", True, "message_delete"
        seq = None
        if changed:
            seq = self._next_seq(channel)
            event = {**event, "seq": seq}
            self.events[channel].append({"event": kind, **event})
            frame = json.dumps(
                {
                    "type": kind,
                    "sender": SERVER,
                    "payload": event,
                    "id": "e-" + fid,
                    "ts": now_iso(),
                }
            )
            for target in self.members[channel] - {name}:
                conn = self.conns.get(target)
                if conn is not None and "events" in self.capabilities.get(target, ()):
                    with contextlib.suppress(ConnectionClosed):
                        await conn.send(frame)
        await self._ack(ws, fid, seq=seq, num=row["num"], outcome=outcome)

    def _search(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        words = str(payload["search"]).lower().split()
        rows = [
            {k: v for k, v in r.items() if k != "_frame"}
            for channel, chan_rows in self.rows.items()
            if payload.get("channel") in (None, channel)
            for r in chan_rows
        ]
        found = [
            r
            for r in rows
            if not r.get("deleted")
            and all(w in r["content"].lower() for w in words)
            and payload.get("sender") in (None, r["sender"])
        ]
        found.sort(key=lambda r: r["num"], reverse=True)
        return found[: int(payload.get("limit") or 50)]

    async def _fan_out(self, text: str, sender: str) -> None:
        frame = json.loads(text)
        channel = frame["payload"]["channel"]
        targets = (self.members[channel] | set(frame["payload"]["mentions"])) - {sender}
        for target in targets:
            ws = self.conns.get(target)
            if ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(text)

    def _query(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        rows = [
            {k: v for k, v in r.items() if k != "_frame"}
            for r in self.rows.get(payload.get("channel", "#general"), [])
        ]
        limit = int(payload.get("limit", 50))
        if "after_seq" in payload:
            return [r for r in rows if r["seq"] > int(payload["after_seq"])][:limit]
        return list(reversed(rows))[:limit]


class ThreadsApi:
    """`GET /api/threads/<num>/` over HTTP, answered from a FakeHub's rows (what
    `OrochiClient.thread` and `show-thread` read), on port 0 in a thread of its own."""

    def __init__(self, hub: FakeHub, token: str | None = None) -> None:
        self.hub, self.token = hub, token
        self.seen: list[str] = []

    def __enter__(self) -> ThreadsApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                api.seen.append(self.path)
                status, body = api.answer(self.path, self.headers.get("Authorization"))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, auth: str | None) -> tuple[int, Any]:
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        parsed = urlparse(path)
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:2] != ["api", "threads"] or len(parts) != 3:
            return 404, {"error": "not found"}
        if not parts[2].isdigit():  # the hub's routes take message numbers only
            return 400, {"detail": "num must be a message number"}
        root = self.hub._find(int(parts[2]))
        if root is None:
            return 404, {"detail": f"no message {parts[2]}"}
        replies = [
            {k: v for k, v in r.items() if k != "_frame"}
            for r in self.hub.rows[root["channel"]]
            if (r.get("thread") or {}).get("num") == root["num"]
        ]
        limit = parse_qs(parsed.query).get("limit")
        if limit:
            replies = replies[: int(limit[0])]
        root_row = {k: v for k, v in root.items() if k != "_frame"}
        return 200, {"root": {**root_row, "reply_count": len(replies)}, "replies": replies}


@contextlib.contextmanager
def hub_in_thread(**kwargs: Any) -> Any:
    """A FakeHub on an event loop of its own thread, for blocking callers (the CLI through
    click.testing, SyncOrochiClient)."""
    ready, box = threading.Event(), {}

    def serve() -> None:
        async def main() -> None:
            async with FakeHub(**kwargs) as hub:
                loop = asyncio.get_running_loop()
                box.update(hub=hub, loop=loop, stop=loop.create_future())
                ready.set()
                await box["stop"]

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise TimeoutError("the fake hub did not start")
    try:
        yield box["hub"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
        thread.join(10)
