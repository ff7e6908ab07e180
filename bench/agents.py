"""A minimal load-generator agent: one lean WebSocket, callbacks per frame kind.

Frames are the PROTOCOL.md envelope. Replies are matched to requests by the
ack's `payload.ref` (a reply always precedes its ack); message deliveries and
acks of fire-and-forget sends go to callbacks, stamped with the receive time
(`time.perf_counter_ns`, comparable because senders and receivers share this process).
Frames are handled straight from the connection's `data_received` (see lean_ws).
"""

from __future__ import annotations

import asyncio
import json
import json.scanner
import time
import uuid
from collections.abc import Callable
from typing import Any

from .lean_ws import LeanConnection

SERVER = "orochi-server"
CONNECT_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0

MessageHook = Callable[["Agent", dict[str, Any], int], None]
AckHook = Callable[["Agent", str, int], None]

HEARTBEAT = {
    "cpu_count": 2,
    "cpu_model": "bench",
    "load_avg_1m": 0.1,
    "load_avg_5m": 0.1,
    "load_avg_15m": 0.1,
    "mem_free_mb": 1000,
    "mem_total_mb": 2000,
    "mem_used_percent": 50.0,
    "disk_used_percent": 10.0,
}


# The C scanner json.loads ends up in, without its per-call encoding detection and
# whitespace checks: a third of the cost for a 400-byte frame (server output is JSON).
# (typeshed types the scanner's context as the scanner itself; it is the decoder.)
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode(raw: bytes) -> Any:
    return _scan(raw.decode(), 0)[0]


def envelope(ftype: str, sender: str, payload: dict[str, Any], msg_id: str | None = None) -> str:
    return json.dumps(
        {"type": ftype, "sender": sender, "id": msg_id or uuid.uuid4().hex, "payload": payload}
    )


EVENT_TYPES = frozenset(("reaction_update", "message_edit", "message_delete"))


class Agent:
    def __init__(self, name: str) -> None:
        self.name = name
        self.conn: LeanConnection | None = None
        self.on_message: MessageHook | None = None
        self.on_ack: AckHook | None = None
        self.on_event: MessageHook | None = None  # change events (reaction_update, ...)
        self._registered: asyncio.Future | None = None  # dialect B: the `registered` reply
        self._waiters: dict[str, tuple[asyncio.Future, list]] = {}
        self._replies: list[tuple[dict[str, Any], int]] = []
        self.closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        channels: list[str] | None = None,
        register: bool = True,
        capabilities: list[str] | None = None,
    ) -> Agent:
        agent = cls(name)
        agent.conn = await LeanConnection.open(url, agent._on_frame, CONNECT_TIMEOUT_S)
        agent.conn.closed.add_done_callback(agent._on_closed)
        if register:
            payload: dict[str, Any] = {
                "channels": channels or ["#general"],
                "machine": "bench",
                "role": "bench",
            }
            if capabilities:
                payload["capabilities"] = capabilities
            await agent.request("register", payload)
        return agent

    @classmethod
    async def connect_b(cls, url: str, name: str, channels: list[str]) -> Agent:
        """A dialect-B agent (FLEET.md): `/ws/agent/?token=&agent=NAME`, flat frames, a
        `registered` reply, no acks. `url` is the target's dialect-A URL."""
        base, _, query = url.partition("?")
        agent = cls(name)
        agent._registered = asyncio.get_running_loop().create_future()
        b_url = f"{base.rstrip('/')}/ws/agent/?{query}&agent={name}"
        agent.conn = await LeanConnection.open(b_url, agent._on_frame, CONNECT_TIMEOUT_S)
        agent.conn.closed.add_done_callback(agent._on_closed)
        payload = {"channels": channels, "machine": "bench", "role": "bench"}
        agent._send_text(json.dumps({"type": "register", "payload": payload}))
        await asyncio.wait_for(agent._registered, REQUEST_TIMEOUT_S)
        return agent

    def _on_frame(
        self,
        raw: bytes,
        loads: Callable[[bytes], Any] = decode,
        now: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        t = now()
        frame = loads(raw)
        ftype = frame.get("type")
        if ftype == "ack":
            ref = (frame.get("payload") or {}).get("ref")
            if not isinstance(ref, str):
                return  # an ack of nothing we sent
            waiter = self._waiters.pop(ref, None)
            if waiter is not None:
                replies, self._replies = self._replies, []
                if not waiter[0].done():
                    waiter[0].set_result((t, replies))
            elif self.on_ack is not None:
                self.on_ack(self, ref, t)
        elif ftype == "message" and frame.get("sender") != SERVER:
            if self.on_message is not None:
                self.on_message(self, frame, t)
        elif ftype in EVENT_TYPES and self.on_event is not None:
            self.on_event(self, frame, t)
        elif ftype == "registered" and self._registered is not None:
            if not self._registered.done():
                self._registered.set_result(frame)
        elif ftype in ("ping", "echo"):
            pass  # dialect B liveness: the bench does not answer (no rtt needed)
        else:
            self._replies.append((frame, t))

    def _on_closed(self, _fut: asyncio.Future) -> None:
        self.closed = True
        for fut, _ in self._waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"{self.name}: connection closed"))

    async def request(
        self, ftype: str, payload: dict[str, Any], timeout_s: float = REQUEST_TIMEOUT_S
    ) -> tuple[int, int, list]:
        """Send a frame and wait for its ack: (sent_ns, ack_ns, [(reply, received_ns)])."""
        msg_id = uuid.uuid4().hex
        fut = asyncio.get_running_loop().create_future()
        self._waiters[msg_id] = (fut, [])
        sent = time.perf_counter_ns()
        self._send_text(envelope(ftype, self.name, payload, msg_id))
        try:
            acked, replies = await asyncio.wait_for(fut, timeout_s)
        finally:
            self._waiters.pop(msg_id, None)
        return sent, acked, replies

    def _send_text(self, text: str) -> None:
        if self.conn is None:
            raise ConnectionError(f"{self.name}: not connected")
        self.conn.send_text(text)

    async def send(self, ftype: str, payload: dict[str, Any], msg_id: str) -> None:
        self._send_text(envelope(ftype, self.name, payload, msg_id))

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close(3.0)


async def connect_many(
    url: str,
    names: list[str],
    channels: list[str],
    concurrency: int = 100,
    deadline: float | None = None,
    dialect_b: frozenset[str] = frozenset(),
) -> list[Agent]:
    """Connect and register every name, `concurrency` at a time; stops at `deadline`;
    the names in `dialect_b` connect as dialect-B agents."""
    sem = asyncio.Semaphore(concurrency)
    agents: list[Agent] = []

    async def one(name: str) -> None:
        async with sem:
            if deadline is not None and time.monotonic() > deadline:
                return
            if name in dialect_b:
                agents.append(await Agent.connect_b(url, name, channels))
            else:
                agents.append(await Agent.connect(url, name, channels))

    results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors and not agents:
        raise errors[0]
    return agents


async def close_all(agents: list[Agent], concurrency: int = 500) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(agent: Agent) -> None:
        async with sem:
            await agent.close()

    await asyncio.gather(*(one(a) for a in agents), return_exceptions=True)
