"""A small single-process hub that speaks PROTOCOL.md, for testing agents and the client.

It is not the real hub (no bus, no persister, memory only), but it keeps the same
wire rules: replies before acks, `ref` on acks/replies/errors, `payload.seq` on
delivered messages, `after_seq` queries oldest first, AUTH_FAILED + 4001, 4000 on
a second register of a name. Knobs let a test drop connections or hold acks.

    async with FakeHub(token="t") as hub:
        client = OrochiClient("a", port=hub.port, token="t")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
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
            await self._ack(ws, fid)
            async with self.registered:
                self.registrations += 1
                self.registered.notify_all()
        elif type_ == "message" and name is not None:
            frame["sender"] = name
            row = self.ids.get(fid)
            dup = row is not None
            if row is None:
                row = self._store(frame, name)
                async with self.stored:
                    self.stored.notify_all()
                await self._fan_out(row["_frame"], name)
            if not self.hold_acks:
                await self._ack(ws, fid, seq=row["seq"], channel=row["channel"], dup=dup)
        elif type_ in ("subscribe", "unsubscribe") and name is not None:
            members = self.members[payload.get("channel", "")]
            (members.add if type_ == "subscribe" else members.discard)(name)
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

    def _store(self, frame: dict[str, Any], sender: str) -> dict[str, Any]:
        payload = frame["payload"]
        channel = payload["channel"]
        seq = len(self.rows[channel]) + 1
        mentions = extract_mentions(payload.get("content", ""))
        delivered = {**frame, "payload": {**payload, "seq": seq, "mentions": mentions}}
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
            "_frame": json.dumps(delivered),
        }
        self.rows[channel].append(row)
        self.ids[frame["id"]] = row
        return row

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
