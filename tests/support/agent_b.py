"""A dialect-B (fleet) test client, written from ../shared/FLEET.md, not from upstream code.

It connects as the sidecar does (`/ws/agent/?token=&agent=NAME`), sends B's frames
(`{"type", "payload"}` plus `sender`, no id or ts) and records every frame the hub
sends (flat: no `payload` wrapper, no acks). `answer_liveness` makes it answer the
hub's `ping {ts}` with `pong {ts}` and `echo {nonce}` with `echo_pong`, as the
sidecar does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from support.util import TIME_SCALE

JsonFrame = dict[str, Any]


def b_url(ws_url: str, token: str, agent: str) -> str:
    """The sidecar's URL: trailing slash, nothing URL-encoded (FLEET §1)."""
    return f"{ws_url}/ws/agent/?token={token}&agent={agent}"


class AgentB:
    def __init__(self, ws: ClientConnection, name: str, answer_liveness: bool) -> None:
        self.ws = ws
        self.name = name
        self.answer_liveness = answer_liveness
        self.frames: list[JsonFrame] = []
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, ws_url: str, token: str, name: str, *, answer_liveness: bool = True
    ) -> AgentB:
        ws = await websockets.connect(
            b_url(ws_url, token, name), max_size=None, open_timeout=10 * TIME_SCALE
        )
        return cls(ws, name, answer_liveness)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                self.frames.append(frame)
                self._changed.set()
                if self.answer_liveness and frame.get("type") == "ping":
                    await self.send("pong", {"ts": frame["ts"]})
                elif self.answer_liveness and frame.get("type") == "echo":
                    await self.ws.send(
                        json.dumps(
                            {"type": "echo_pong", "nonce": frame["nonce"], "ts": time.time()}
                        )
                    )
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                code = self.ws.close_code
                self.closed.set_result((code if code is not None else 1006, self.ws.close_reason))
            self._changed.set()

    async def send(self, ftype: str, payload: dict[str, Any] | None = None) -> None:
        """A frame as the sidecar sends it: type, payload, sender; no id, no ts."""
        await self.ws.send(
            json.dumps({"type": ftype, "sender": self.name, "payload": payload or {}})
        )

    async def send_raw(self, frame: JsonFrame) -> None:
        await self.ws.send(json.dumps(frame))

    # ---- the sidecar's session -----------------------------------------------------------
    async def register(self, **fields: Any) -> JsonFrame:
        """The sidecar's register payload (no channels); the hub answers `registered`."""
        start = len(self.frames)
        payload = {
            "machine": "testhost",
            "hostname": "testhost",
            "role": "head",
            "model": "opus",
            "multiplexer": "tmux",
            "agent_id": f"1@{self.name}",
            "icon": "",
            "color": "#888",
            "project": "orochi",
            "workdir": "/tmp",
            "orochi_claude_md": "# CLAUDE.md\n" + "rules. " * 20_000,  # long, as upstream's
            **fields,
        }
        await self.send("register", payload)
        return await self.wait(lambda f: f["type"] in ("registered", "error"), start=start)

    async def subscribe(self, channel: str, **flags: Any) -> JsonFrame:
        start = len(self.frames)
        await self.send("subscribe", {"channel": channel, **flags})
        return await self.wait(lambda f: f["type"] in ("subscribed", "error"), start=start)

    async def unsubscribe(self, channel: str) -> JsonFrame:
        start = len(self.frames)
        await self.send("unsubscribe", {"channel": channel})
        return await self.wait(lambda f: f["type"] in ("unsubscribed", "error"), start=start)

    async def message(
        self, channel: str, text: str, metadata: dict[str, Any] | None = None
    ) -> None:
        """No reply: B acks nothing."""
        await self.send("message", {"channel": channel, "text": text, "metadata": metadata or {}})

    # ---- reading ---------------------------------------------------------------------
    async def wait(
        self, pred: Callable[[JsonFrame], bool], timeout: float = 5.0, start: int = 0
    ) -> JsonFrame:
        deadline = asyncio.get_running_loop().time() + timeout * TIME_SCALE
        seen = start
        while True:
            for frame in self.frames[seen:]:
                if pred(frame):
                    return frame
            seen = max(seen, len(self.frames))
            if self.closed.done():
                raise AssertionError(
                    f"closed {self.closed.result()} before a match; frames: {self.frames[-5:]}"
                )
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no matching frame in {timeout}s: {self.frames[-5:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def of_type(self, ftype: str) -> list[JsonFrame]:
        return [f for f in self.frames if f.get("type") == ftype]

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout * TIME_SCALE)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)
