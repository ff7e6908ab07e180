"""A raw protocol agent for tests: sends literal frames, records every frame it receives.

Deliberately not the client library: it shows what goes over the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from support.util import TIME_SCALE

JsonFrame = dict[str, Any]


class RawAgent:
    def __init__(self, ws: ClientConnection, name: str | None) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[JsonFrame] = []
        self.raw: list[str] = []
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str | None = None,
        channels: list[str] | None = None,
        register: bool = True,
        **register_fields: Any,
    ) -> RawAgent:
        ws = await websockets.connect(url, max_size=None, open_timeout=10 * TIME_SCALE)
        agent = cls(ws, name)
        if register and name is not None:
            await agent.request(
                {
                    "type": "register",
                    "sender": name,
                    "payload": {"channels": channels or ["#general"], **register_fields},
                }
            )
        return agent

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.raw.append(text)
                frame = json.loads(text)
                frame["_rx"] = time.time()  # arrival time, for latency measurements
                self.frames.append(frame)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                code = self.ws.close_code
                self.closed.set_result(
                    (code if code is not None else 1006, self.ws.close_reason or "")
                )
            self._changed.set()

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def send(self, frame: JsonFrame) -> str:
        frame.setdefault("id", str(uuid.uuid4()))
        if self.name is not None:
            frame.setdefault("sender", self.name)
        await self.ws.send(json.dumps(frame))
        return frame["id"]

    async def wait(
        self, pred: Callable[[JsonFrame], bool], timeout: float = 5.0, start: int = 0
    ) -> JsonFrame:
        """The first received frame (from index `start`) matching `pred`, waiting if needed."""
        deadline = asyncio.get_running_loop().time() + timeout * TIME_SCALE
        seen = start
        while True:
            for frame in self.frames[seen:]:
                if pred(frame):
                    return frame
            seen = max(seen, len(self.frames))
            if self.closed.done() and seen >= len(self.frames):
                raise AssertionError(
                    f"connection closed {self.closed.result()} before a match; "
                    f"frames: {self.frames[-5:]}"
                )
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"no matching frame within {timeout}s; last frames: {self.frames[-5:]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    async def wait_count(
        self, pred: Callable[[JsonFrame], bool], n: int, timeout: float = 10.0
    ) -> list[JsonFrame]:
        deadline = asyncio.get_running_loop().time() + timeout * TIME_SCALE
        while True:
            found = [f for f in self.frames if pred(f)]
            if len(found) >= n:
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or self.closed.done():
                raise AssertionError(
                    f"wanted {n} frames, have {len(found)}; closed="
                    f"{self.closed.done()} last: {self.frames[-3:]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    async def ack_of(self, ref: str, timeout: float = 5.0, start: int = 0) -> JsonFrame:
        return await self.wait(
            lambda f: f["type"] == "ack" and f["payload"].get("ref") == ref, timeout, start
        )

    async def request(self, frame: JsonFrame, timeout: float = 5.0) -> list[JsonFrame]:
        """Send a frame; return every frame up to and including its ack."""
        start = len(self.frames)
        ref = await self.send(frame)
        ack = await self.ack_of(ref, timeout, start)
        end = next(i for i in range(start, len(self.frames)) if self.frames[i] is ack)
        return self.frames[start : end + 1]

    async def post(
        self,
        channel: str,
        content: str,
        msg_id: str | None = None,
        timeout: float = 5.0,
        **payload: Any,
    ) -> JsonFrame:
        """Send a message and wait for its ack (durable, with seq)."""
        frame = {"type": "message", "payload": {"channel": channel, "content": content, **payload}}
        if msg_id:
            frame["id"] = msg_id
        replies = await self.request(frame, timeout)
        return replies[-1]

    def messages(self, channel: str | None = None) -> list[JsonFrame]:
        return [
            f
            for f in self.frames
            if f["type"] == "message"
            and f["sender"] != "orochi-server"
            and (channel is None or f["payload"].get("channel") == channel)
        ]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
