"""Agents that behave like real ones under faults: re-send unacked messages with the same id,
reconnect with backoff, and resume every channel with `after_seq`.

Each agent records what it saw so a checker can prove: acked ⇒ stored once, and
every agent has every message of its channels in seq order, no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets

RESEND_AFTER_S = 1.5
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 1.0
RESUME_PAGE = 1000


@dataclass
class Sent:
    frame: dict[str, Any]
    first_sent: float
    last_sent: float
    acked_at: float | None = None
    seq: int | None = None


@dataclass
class ChannelLog:
    accepted: list[int] = field(default_factory=list)  # seqs in the order accepted
    ids: dict[int, str] = field(default_factory=dict)
    held: dict[int, str] = field(default_factory=dict)  # live frames beyond a gap
    live_dups: int = 0  # the server delivered a seq twice on one connection
    live_out_of_order: int = 0

    @property
    def last(self) -> int:
        return self.accepted[-1] if self.accepted else 0

    def accept(self, seq: int, msg_id: str) -> None:
        if seq <= self.last or seq in self.held:
            return
        self.held[seq] = msg_id
        while self.last + 1 in self.held:
            nxt = self.last + 1
            self.ids[nxt] = self.held.pop(nxt)
            self.accepted.append(nxt)


class LoadAgent:
    def __init__(self, url: str, name: str, channels: list[str]) -> None:
        self.url = url
        self.name = name
        self.channels = channels
        self.logs = {c: ChannelLog() for c in channels}
        self.sent: dict[str, Sent] = {}
        self.connects = 0
        self.close_codes: list[int | None] = []
        self.ws: Any = None
        self.connected = asyncio.Event()
        self._stop = False
        self._live_seen: dict[str, set[int]] = {}
        self._live_last: dict[str, int] = {}
        self._pending_queries: dict[str, asyncio.Future] = {}

    # ---- connection loop ------------------------------------------------------------
    async def run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop:
            try:
                async with websockets.connect(
                    self.url, max_size=None, open_timeout=5, close_timeout=1
                ) as ws:
                    self.ws = ws
                    self._live_seen = {c: set() for c in self.channels}
                    self._live_last = {}
                    reader = asyncio.create_task(self._read(ws))
                    await self._send_json(
                        {
                            "type": "register",
                            "sender": self.name,
                            "payload": {"channels": self.channels},
                        }
                    )
                    self.connects += 1
                    self.connected.set()
                    backoff = BACKOFF_START_S
                    resume = asyncio.create_task(self._resume())
                    for s in list(self.sent.values()):
                        if s.acked_at is None:
                            await self._send_frame(s)
                    await reader
                    resume.cancel()
                    self.close_codes.append(ws.close_code)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            finally:
                self.connected.clear()
                self.ws = None
                for fut in self._pending_queries.values():
                    if not fut.done():
                        fut.cancel()
                self._pending_queries.clear()
            if not self._stop:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _read(self, ws) -> None:
        try:
            async for text in ws:
                self._on_frame(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    def _on_frame(self, f: dict[str, Any]) -> None:
        p = f.get("payload") or {}
        if f["type"] == "ack":
            s = self.sent.get(p.get("ref"))
            if s is not None and s.acked_at is None and p.get("status") == "ok":
                s.acked_at = time.monotonic()
                s.seq = p.get("seq")
        elif f["type"] == "message" and f["sender"] == "orochi-server":
            fut = self._pending_queries.pop(p.get("ref"), None)
            if fut is not None and not fut.done():
                fut.set_result(p.get("history") or [])
        elif f["type"] == "message":
            channel, seq = p.get("channel"), p.get("seq")
            if channel not in self.logs or not isinstance(seq, int):
                return
            seen = self._live_seen.setdefault(channel, set())
            if seq in seen:
                self.logs[channel].live_dups += 1
            seen.add(seq)
            if seq <= self._live_last.get(channel, 0):
                self.logs[channel].live_out_of_order += 1
            self._live_last[channel] = seq
            self.logs[channel].accept(seq, f["id"])

    async def _query(self, channel: str, after: int) -> list[dict[str, Any]]:
        qid = str(uuid.uuid4())
        fut = asyncio.get_running_loop().create_future()
        self._pending_queries[qid] = fut
        await self._send_json(
            {
                "type": "query",
                "id": qid,
                "payload": {"channel": channel, "after_seq": after, "limit": RESUME_PAGE},
            }
        )
        return await asyncio.wait_for(fut, 10)

    async def _resume(self) -> None:
        """Fetch everything after the last accepted seq of each channel, page by page."""
        try:
            for channel, log in self.logs.items():
                while True:
                    rows = await self._query(channel, log.last)
                    for row in rows:
                        log.accept(row["seq"], row["msg_id"])
                    if len(rows) < RESUME_PAGE:
                        break
        except (asyncio.CancelledError, TimeoutError, websockets.ConnectionClosed):
            pass

    async def _send_json(self, frame: dict[str, Any]) -> None:
        if self.ws is not None:
            await self.ws.send(json.dumps(frame))

    async def _send_frame(self, s: Sent) -> None:
        s.last_sent = time.monotonic()
        try:
            await self._send_json(s.frame)
        except websockets.ConnectionClosed:
            pass

    # ---- sending --------------------------------------------------------------------
    async def post(self, channel: str, content: str) -> None:
        now = time.monotonic()
        frame = {
            "type": "message",
            "sender": self.name,
            "id": str(uuid.uuid4()),
            "payload": {"channel": channel, "content": content},
        }
        s = Sent(frame, now, now)
        self.sent[frame["id"]] = s
        await self._send_frame(s)

    async def resend_unacked(self) -> None:
        now = time.monotonic()
        for s in list(self.sent.values()):
            if s.acked_at is None and now - s.last_sent > RESEND_AFTER_S:
                await self._send_frame(s)

    def unacked(self) -> int:
        return sum(1 for s in self.sent.values() if s.acked_at is None)

    async def resync(self) -> None:
        """A final resume pass: fill anything still missing from the database."""
        if self.ws is not None:
            await self._resume()

    def stop(self) -> None:
        self._stop = True
