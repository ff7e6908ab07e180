"""`scitex-orochi-mcp`: an MCP server (FastMCP) that gives an AI agent one persistent hub
connection and tools to use it.

Tools: send, who, history, channels, subscribe, unsubscribe, status and
wait_for_message. Messages that arrive while the agent is busy are queued, and
`wait_for_message` returns as soon as one is there (pushed by the connection, no
polling). Configuration is the client's environment: SCITEX_OROCHI_HOST, _PORT,
_TOKEN, _AGENT, plus SCITEX_OROCHI_CHANNELS (comma-separated, default #general)
and SCITEX_OROCHI_ROLE / _MODEL / _PROJECT. Needs the `mcp` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from scitex_orochi.client.agent import OrochiClient
from scitex_orochi.client.core import Message
from scitex_orochi.client.settings import client_settings

INBOX_MAX = 10_000
WAIT_DEFAULT_S = 60.0
WAIT_MAX_S = 3600.0


class AgentSession:
    """One hub connection and the queue of messages the agent has not taken yet."""

    def __init__(self, factory: Callable[[], OrochiClient]) -> None:
        self._factory = factory
        self._client: OrochiClient | None = None
        self._pump: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._inbox: deque[Message] = deque(maxlen=INBOX_MAX)
        self._arrived = asyncio.Condition()
        self.dropped = 0
        self.error: str | None = None

    async def client(self) -> OrochiClient:
        """The connection, opened on first use so the MCP server starts without a hub."""
        async with self._lock:
            if self._client is None or self.error is not None:
                client = self._factory()
                await client.connect()
                self._client, self.error = client, None
                self._pump = asyncio.create_task(self._take(client), name="orochi-mcp-inbox")
            return self._client

    async def _take(self, client: OrochiClient) -> None:
        try:
            async for msg in client.listen():
                async with self._arrived:
                    if len(self._inbox) == self._inbox.maxlen:
                        self.dropped += 1
                    self._inbox.append(msg)
                    self._arrived.notify_all()
        except Exception as exc:  # noqa: BLE001 - reported to the agent by the next tool call
            self.error = str(exc)
            async with self._arrived:
                self._arrived.notify_all()

    async def wait(
        self, channels: list[str] | None, timeout: float, max_messages: int
    ) -> dict[str, Any]:
        await self.client()
        wanted = set(channels or [])

        def matching() -> list[Message]:
            return [m for m in self._inbox if not wanted or m.channel in wanted]

        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: bool(matching()) or self.error is not None),
                    timeout,
                )
            taken = matching()[:max_messages]
            for msg in taken:
                self._inbox.remove(msg)
        return {
            "messages": [m.to_dict() for m in taken],
            "timed_out": not taken,
            "still_queued": len(self._inbox),
            "dropped": self.dropped,
            **({"error": self.error} if self.error and not taken else {}),
        }

    def queued(self) -> int:
        return len(self._inbox)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._pump is not None:
            with contextlib.suppress(BaseException):
                await self._pump


def client_from_env() -> OrochiClient:
    env = client_settings()
    return OrochiClient(
        channels=list(env.channels), role=env.role, model=env.model, project=env.project
    )


def create_server(factory: Callable[[], OrochiClient] = client_from_env) -> Any:
    from fastmcp import FastMCP

    session_box: dict[str, AgentSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        session = AgentSession(factory)
        session_box["s"] = session
        try:
            yield {"session": session}
        finally:
            await session.close()

    mcp = FastMCP("scitex-orochi", instructions=__doc__, lifespan=lifespan)

    def session() -> AgentSession:
        return session_box["s"]

    @mcp.tool
    async def send(channel: str, content: str, metadata: dict[str, Any] | None = None) -> dict:
        """Post a message to a channel (e.g. '#general'); returns once stored, with its seq.
        Mention agents with @name to reach them even outside the channel."""
        sent = await (await session().client()).send(channel, content, metadata)
        return {"id": sent.id, "channel": sent.channel, "seq": sent.seq}

    @mcp.tool
    async def who() -> dict:
        """Agents online and the channels each one is in."""
        return {"agents": await (await session().client()).who()}

    @mcp.tool
    async def history(
        channel: str = "#general",
        limit: int = 20,
        since: str | None = None,
        after_seq: int | None = None,
    ) -> dict:
        """Stored messages of a channel, oldest first. `after_seq` pages forward from a seq."""
        client = await session().client()
        rows = await client.query_history(
            channel, limit=max(1, min(limit, 1000)), since=since, after_seq=after_seq
        )
        rows.sort(key=lambda m: (m.seq or 0, m.ts))
        return {"channel": channel, "messages": [m.to_dict() for m in rows]}

    @mcp.tool
    async def channels() -> dict:
        """Channels this agent is subscribed to, and every channel with members online."""
        client = await session().client()
        known = sorted({c for chans in (await client.who()).values() for c in chans})
        return {"subscribed": list(client.channels), "active": known}

    @mcp.tool
    async def subscribe(channel: str) -> dict:
        """Join a channel: its messages are queued for wait_for_message from now on."""
        client = await session().client()
        await client.subscribe(channel)
        return {"subscribed": list(client.channels)}

    @mcp.tool
    async def unsubscribe(channel: str) -> dict:
        """Leave a channel (mentions of this agent still arrive)."""
        client = await session().client()
        await client.unsubscribe(channel)
        return {"subscribed": list(client.channels)}

    @mcp.tool
    async def status(status: str = "idle", current_task: str | None = None) -> dict:
        """Tell the hub and the people watching what this agent is doing (idle, busy, error)."""
        client = await session().client()
        await client.update_status(status, current_task)
        return {
            "agent": client.name,
            "status": status,
            "current_task": current_task,
            "connected": client.connected,
            "queued_messages": session().queued(),
        }

    @mcp.tool
    async def wait_for_message(
        channels: list[str] | None = None, timeout: float = WAIT_DEFAULT_S, max_messages: int = 50
    ) -> dict:
        """Wait until a message arrives (on `channels`, or any) and return it, with every other
        matching message that arrived while you were busy. Returns at once when some are queued;
        `timed_out` is true when none came within `timeout` seconds."""
        return await session().wait(
            channels, max(0.0, min(timeout, WAIT_MAX_S)), max(1, max_messages)
        )

    return mcp


def main() -> None:
    create_server().run()


if __name__ == "__main__":
    main()
