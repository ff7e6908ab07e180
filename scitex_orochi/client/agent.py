"""Async agent client: one WebSocket to the hub that survives drops without losing a message.

    async with OrochiClient("my-agent", channels=["#general"]) as client:
        sent = await client.send("#general", "hello")      # returns once durable
        async for msg in client.listen():                   # every message once, in order
            ...

Conversations (docs/conversations.md): `reply`, `react`, `edit`, `delete`, `dm`,
`search` over the WebSocket, `thread` over the HTTP gateway. With `events=True` the
client registers with `capabilities: ["events"]` and `listen_events()` yields the
channels' reaction_update / message_edit / message_delete events; without it the
register frame is the one the published clients send.

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
from scitex_orochi.client.core import (
    EXPECTS_PRESENCE,
    Backoff,
    Changed,
    Event,
    Message,
    MessageLike,
    Sent,
    Thread,
    channel_of,
    delete_payload,
    dm_channel_for,
    edit_payload,
    message_ref,
    react_payload,
    reply_metadata,
    search_payload,
)
from scitex_orochi.client.errors import RequestTimeout
from scitex_orochi.client.metrics import collect as collect_metrics
from scitex_orochi.client.rest import RestClient, http_url
from scitex_orochi.client.settings import ClientSettings, client_settings
from scitex_orochi.protocol.constants import DEFAULT_DASHBOARD_PORT, DEFAULT_HOST, DEFAULT_PORT

__all__ = [
    "Changed",
    "Event",
    "Message",
    "OrochiClient",
    "Sent",
    "Thread",
    "default_agent_name",
    "ws_url",
]


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
        events: bool = False,
        dashboard_port: int | None = None,
    ) -> None:
        # The environment only for what is not given (a bad variable then is an error).
        given = bool(name and host and port) and token is not None
        env = ClientSettings() if given else client_settings()
        self.name = name or default_agent_name(env)
        self.host = host or env.host or DEFAULT_HOST
        self.port = int(port or env.port or DEFAULT_PORT)
        self.dashboard_port = int(dashboard_port or env.dashboard_port or DEFAULT_DASHBOARD_PORT)
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
        self.events = events
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
        num = reply.ack.get("num")
        acked_channel = str(reply.ack.get("channel") or channel)
        self._cursors.note_own(acked_channel, seq)
        return Sent(
            id=str(reply.ack.get("ref")),
            channel=acked_channel,
            seq=seq,
            dup=bool(reply.ack.get("dup", False)),
            num=num if isinstance(num, int) and not isinstance(num, bool) else None,
        )

    # ---- conversations (docs/conversations.md) ---------------------------
    async def reply(
        self,
        message: MessageLike,
        content: str,
        channel: str | None = None,
        metadata: dict[str, Any] | None = None,
        attachments: list[Any] | None = None,
        *,
        msg_id: str | None = None,
        timeout: float | None = None,
    ) -> Sent:
        """Answer `message` in its thread: a message of the same channel whose
        `metadata.reply_to` names it. `channel` is needed when `message` is an id or a
        number (a Message or Sent knows its channel)."""
        ref = message_ref(message)
        channel = channel or channel_of(message)
        if not channel:
            raise ValueError("reply needs the channel of the message it answers (channel=...)")
        return await self.send(
            channel,
            content,
            reply_metadata(ref, metadata),
            attachments,
            msg_id=msg_id,
            timeout=timeout,
        )

    async def react(
        self, message: MessageLike, emoji: str, remove: bool = False, timeout: float | None = None
    ) -> Changed:
        """Add (or with `remove=True` take back) this agent's reaction `emoji` to `message`.
        The outcome is `added`, `existed`, `removed` or `not_found`."""
        return await self._change(
            "react", react_payload(message_ref(message), emoji, remove), timeout
        )

    async def edit(
        self, message: MessageLike, content: str, timeout: float | None = None
    ) -> Changed:
        """Replace the content of one of this agent's messages (outcome `edited`)."""
        return await self._change("edit", edit_payload(message_ref(message), content), timeout)

    async def delete(self, message: MessageLike, timeout: float | None = None) -> Changed:
        """Delete one of this agent's messages; history keeps a tombstone (`deleted`)."""
        return await self._change("delete", delete_payload(message_ref(message)), timeout)

    async def _change(self, type_: str, payload: dict[str, Any], timeout: float | None) -> Changed:
        """A react/edit/delete, acked once committed; an error frame (UNKNOWN_MESSAGE,
        FORBIDDEN, NOT_A_MEMBER, ...) raises NotFound or ServerError with the hub's code."""
        reply = await self._request(type_, payload, timeout=timeout)
        return Changed.from_ack(reply.ack)

    def dm_channel(self, other: str) -> str:
        """The DM channel of this agent and `other` (`bob`, `agent:bob` or `human:ann`)."""
        return dm_channel_for(self.name, other)

    async def dm(
        self,
        agent_or_key: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        attachments: list[Any] | None = None,
        *,
        msg_id: str | None = None,
        timeout: float | None = None,
    ) -> Sent:
        """Send a direct message to another agent (`bob` or `agent:bob`) or a person
        (`human:ann`), on their DM channel `dm:agent:<a>|agent:<b>` (created on first write)."""
        channel = self.dm_channel(agent_or_key)
        return await self.send(
            channel, content, metadata, attachments, msg_id=msg_id, timeout=timeout
        )

    async def search(
        self,
        words: str,
        channel: str | None = None,
        sender: str | None = None,
        limit: int | None = 50,
        *,
        before: str | None = None,
        after: str | None = None,
        timeout: float | None = None,
    ) -> list[Message]:
        """Messages whose content has these words, in the token's scope (ranked, newest
        first among equals): a `query` with `payload.search`."""
        payload = search_payload(words, channel, sender, limit, before, after)
        rows = await self._query_rows(payload, timeout=timeout)
        return [Message.from_row(r) for r in rows if "event" not in r]

    async def thread(
        self, message: MessageLike, limit: int | None = None, timeout: float | None = None
    ) -> Thread:
        """A thread's root and replies, oldest first, from the HTTP gateway
        (`GET /api/threads/<num>/`: the WebSocket protocol has no thread query) on
        `dashboard_port` of the same host, with the same token; when connected, read as
        this agent (`?agent=`), so the threads of its DMs are found too.

        The route takes the hub number: give it (an integer, or a Message or Sent that has
        it), or a Message or Sent of this connection whose `num` is looked up in its
        channel's history. NotFound for an unknown message."""
        num = await self._num_of(message, timeout)
        rest = RestClient(
            http_url(self.host, self.dashboard_port),
            self.token,
            self.timeout if timeout is None else timeout,
        )
        agent = self.name if self.connected else None
        data = await asyncio.to_thread(rest.get, f"/api/threads/{num}/", limit=limit, agent=agent)
        return Thread.from_rest(data)

    async def _num_of(self, message: MessageLike, timeout: float | None) -> int:
        ref = message_ref(message)
        if isinstance(ref, int):
            return ref
        known = message.num if isinstance(message, Message | Sent) else None
        if known is not None:
            return known
        channel, seq = channel_of(message), getattr(message, "seq", None)
        if channel and isinstance(seq, int) and self.connected:
            rows = await self.query_history(channel, limit=1, after_seq=seq - 1, timeout=timeout)
            for row in rows:
                if row.id == ref and row.num is not None:
                    return row.num
        raise ValueError(
            f"the thread of {ref!r} needs its number (num): give it, or a Message/Sent "
            "with its channel and seq on a connected client"
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
        rows = await self._query_rows(payload, timeout=timeout)
        return [Message.from_row(r) for r in rows if "event" not in r]

    async def subscribe(self, channel: str, mention_only: bool = False) -> None:
        """Join `channel` (the hub keeps it for this agent name across connections). With
        `mention_only`, only its messages that mention this agent (or @all) arrive."""
        payload: dict[str, Any] = {"channel": channel}
        if mention_only:
            payload["mention_only"] = True
            if channel in self.channels:  # a register would join it in full again
                self.channels.remove(channel)
            self._cursors.untrack(channel)  # only mentions arrive: holes are normal
        else:
            if channel not in self.channels:
                self.channels.append(channel)
            self._cursors.track(channel)
        await self._request("subscribe", payload)
        if self.resume and not mention_only:
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

    async def recv_event(self, timeout: float | None = None) -> Event | None:
        """The next change event (with `events=True`); None once the client is closed."""
        if not self.events:
            raise ValueError("events are off: create the client with events=True")
        try:
            item = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            raise RequestTimeout(f"no event within {timeout}s") from None
        if item is INBOX_END:
            self._events.put_nowait(INBOX_END)
            if self._fatal is not None:
                raise self._fatal
            return None
        return item

    async def listen_events(self) -> AsyncIterator[Event]:
        """Change events (reaction_update, message_edit, message_delete) of the channels
        this agent sees, each once, in `seq` order per channel; needs `events=True`."""
        while True:
            event = await self.recv_event()
            if event is None:
                return
            yield event
