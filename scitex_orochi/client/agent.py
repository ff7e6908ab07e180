"""Async agent client: one WebSocket to the hub that survives drops without losing a message.

    async with OrochiClient("my-agent", channels=["#general"]) as client:
        sent = await client.send("#general", "hello")      # returns once durable
        async for msg in client.listen():                   # every message once, in order
            ...

Replies are matched to requests by `ref`; on a drop the client reconnects with
jittered backoff, registers again, re-sends unacked frames with their ids and
resumes each channel after the last `seq` it saw. The rules live in
`client_core`, the I/O in `client_conn`, the errors in `client_errors`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

from scitex_orochi.client.conn import (
    CONNECT_TIMEOUT_S,
    HEARTBEAT_INTERVAL_S,
    INBOX_END,
    REQUEST_TIMEOUT_S,
    HubConnection,
    default_agent_name,
    warn_legacy,
    ws_url,
)
from scitex_orochi.client.core import EXPECTS_HISTORY, EXPECTS_PRESENCE, Backoff, Message, Sent
from scitex_orochi.client.errors import RequestTimeout
from scitex_orochi.client.metrics import collect as collect_metrics
from scitex_orochi.client.settings import ClientSettings, client_settings
from scitex_orochi.protocol.constants import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["OrochiClient", "Message", "Sent", "default_agent_name", "ws_url"]


class OrochiClient(HubConnection):
    """An agent's connection to the hub (see the module docstring)."""

    def __init__(
        self,
        name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        channels: list[str] | None = None,
        token: str | None = None,
        machine: str | None = None,
        role: str | None = None,
        model: str | None = None,
        agent_id: str | None = None,
        project: str | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        backoff: Backoff | None = None,
        resume: bool = True,
        extra_register: dict[str, Any] | None = None,
    ) -> None:
        # The environment only for what is not given (a bad variable then is an error).
        given = bool(name and host and port) and token is not None
        env = ClientSettings() if given else client_settings()
        self.name = name or default_agent_name(env)
        self.host = host or env.host or DEFAULT_HOST
        self.port = int(port or env.port or DEFAULT_PORT)
        self.token = token if token is not None else env.token
        from_env = (("HOST", not host), ("PORT", not port), ("TOKEN", token is None))
        warn_legacy(env, *(var for var, read in from_env if read))
        self.machine = machine or socket.gethostname()
        self.role = role
        self.model = model
        self.project = project
        self.agent_id = agent_id or f"{self.name}@{self.machine}"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff = backoff or Backoff()
        self.resume = resume
        self.extra_register = dict(extra_register or {})
        self.channels: list[str] = list(dict.fromkeys(channels or ["#general"]))
        self._init_connection()

    # ---- public calls ----------------------------------------------------
    async def send(
        self,
        channel: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        attachments: list[Any] | None = None,
        *,
        msg_id: str | None = None,
        timeout: float | None = None,
    ) -> Sent:
        """Post a message; returns once the hub has it on disk, with its `seq`.

        Pass the same `msg_id` to retry a send that timed out: the hub stores it once.
        """
        payload: dict[str, Any] = {"channel": channel, "content": content}
        if metadata:
            payload["metadata"] = metadata
        if attachments:
            payload["attachments"] = attachments
        reply = await self._request("message", payload, frame_id=msg_id, timeout=timeout)
        seq = reply.ack.get("seq")
        seq = seq if isinstance(seq, int) else None
        acked_channel = str(reply.ack.get("channel") or channel)
        self._cursors.note_own(acked_channel, seq)
        return Sent(
            id=str(reply.ack.get("ref")),
            channel=acked_channel,
            seq=seq,
            dup=bool(reply.ack.get("dup", False)),
        )

    async def update_status(
        self, status: str = "idle", current_task: str | None = None, **extra: Any
    ) -> None:
        payload: dict[str, Any] = {
            "status": status,
            "machine": self.machine,
            "agent_id": self.agent_id,
            **self._identity(),
            **extra,
        }
        if current_task is not None:
            payload["current_task"] = current_task
            payload["orochi_current_task"] = current_task[:200]
        await self._request("status_update", payload)

    async def who(self, timeout: float | None = None) -> dict[str, list[str]]:
        """Agents online: `{name: [channels]}`."""
        reply = await self._request("presence", {}, expects=EXPECTS_PRESENCE, timeout=timeout)
        agents = (reply.reply or {}).get("agents", {})
        return agents if isinstance(agents, dict) else {}

    async def query_history(
        self,
        channel: str = "#general",
        limit: int = 50,
        since: str | None = None,
        after_seq: int | None = None,
        timeout: float | None = None,
    ) -> list[Message]:
        """Stored messages: newest first, or oldest first when `after_seq` is given."""
        payload: dict[str, Any] = {"channel": channel, "limit": limit}
        if since is not None:
            payload["since"] = since
        if after_seq is not None:
            payload["after_seq"] = after_seq
        reply = await self._request("query", payload, expects=EXPECTS_HISTORY, timeout=timeout)
        rows = (reply.reply or {}).get("history", [])
        return [Message.from_row(r) for r in rows if isinstance(r, dict)]

    async def subscribe(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)
        self._cursors.track(channel)
        await self._request("subscribe", {"channel": channel})
        if self.resume:
            await self._learn_head(channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.remove(channel)
        self._cursors.untrack(channel)
        await self._request("unsubscribe", {"channel": channel})

    async def heartbeat(self, **extra: Any) -> None:
        """Report liveness and system metrics (CPU, load, memory, disk)."""
        await self._request("heartbeat", {**collect_metrics(), **extra}, resend=False)

    def start_heartbeat(
        self, interval: float = HEARTBEAT_INTERVAL_S, **extra: Any
    ) -> asyncio.Task[None]:
        """Send a heartbeat every `interval` seconds until the client closes."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(
                self._beat(interval, extra), name="orochi-heartbeat"
            )
        return self._heartbeat

    async def listen(self) -> AsyncIterator[Message]:
        """Messages for this agent, each once, in `seq` order per channel.

        Ends when the client is closed; raises the reason if it stopped on its own
        (AuthError, Replaced, ConnectionFailed after the last reconnect attempt).
        """
        while True:
            msg = await self.recv()
            if msg is None:
                return
            yield msg

    async def recv(self, timeout: float | None = None) -> Message | None:
        """The next message; None once the client is closed. RequestTimeout on timeout."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            raise RequestTimeout(f"no message within {timeout}s") from None
        if item is INBOX_END:
            self._inbox.put_nowait(INBOX_END)  # let other listeners see the end too
            if self._fatal is not None:
                raise self._fatal
            return None
        return item

    def pending_messages(self) -> int:
        return self._inbox.qsize()
