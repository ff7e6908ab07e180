"""`scitex-orochi-mcp`: an MCP server (FastMCP) that gives an AI agent one persistent hub
connection and tools to use it.

Tools: send, reply, react, edit_message, delete_message, send_dm, search, who,
history, channels, subscribe, unsubscribe, status, wait_for_message, list_skills and
get_skill. A message is named by its `id` (or its hub number `num`). Skills (the
workspace's slash skills, read from the HTTP gateway on SCITEX_OROCHI_DASHBOARD_PORT with
the same token) are templates people use as `/<skill> @agent args...`; a message made
from one has `metadata.skill = {name, by, args}`.

Messages for this agent (in its channels, its DMs, or mentioning it; never its own)
are pushed to the MCP client as `notifications/claude/channel` (the server declares the
experimental `claude/channel` capability): Claude Code shows each one as
<channel source="scitex-orochi" channel=... sender=... id=...>content</channel>. Answer
in the thread with `reply` (message=the id), in the channel with `send`, or privately
with `send_dm`. The same messages are also queued for `wait_for_message`, which
returns as soon as one is there (no polling), for clients that do not show channel
events; those already pushed are marked `notified`.

Configuration is the client's environment: SCITEX_OROCHI_HOST, _PORT, _TOKEN,
_AGENT, plus SCITEX_OROCHI_CHANNELS (comma-separated, default #general) and
SCITEX_OROCHI_ROLE / _MODEL / _PROJECT. Needs the `mcp` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from scitex_orochi.client.agent import OrochiClient
from scitex_orochi.client.core import Backoff, Message, MessageLike, Sent, message_ref
from scitex_orochi.client.errors import OrochiError
from scitex_orochi.client.rest import RestClient, http_url
from scitex_orochi.client.settings import client_settings
from scitex_orochi.protocol.conversations import ConversationError, dm_participants, is_dm

try:  # the tools' argument schemas; pydantic comes with the `mcp` extra
    from pydantic import Field
except ModuleNotFoundError:  # pragma: no cover - create_server needs the extra anyway
    Field = None  # type: ignore[assignment]

log = logging.getLogger("scitex_orochi.client.mcp")

INBOX_MAX = 10_000
WAIT_DEFAULT_S = 60.0
WAIT_MAX_S = 3600.0
SEARCH_MAX = 1000
# Claude Code's channel contract (code.claude.com/docs/en/channels-reference).
CHANNEL_METHOD = "notifications/claude/channel"
CHANNEL_CAPABILITY = "claude/channel"
SEEN_MAX = 10_000  # message ids pushed (and their channels, for `reply`)
# Connecting for the pushes when the MCP client is ready; retried while the hub is away.
PUSH_BACKOFF = Backoff(initial_s=1.0, factor=2.0, max_s=30.0)

Push = Callable[[dict[str, Any]], Awaitable[None]]
MESSAGE_HELP = "The message: its `id` (as in a channel event) or its hub number `num`."


def channel_notification(msg: Message, me: str) -> dict[str, Any] | None:
    """The params of the `notifications/claude/channel` for `msg`, or None when it is not
    one to raise: our own, or empty. `meta` values are strings and its keys identifiers
    (Claude Code turns them into attributes of the <channel> tag and drops other keys)."""
    if msg.sender == me or not (msg.content.strip() or msg.attachments):
        return None
    meta: dict[str, str] = {
        "channel": msg.channel,
        "sender": msg.sender,
        "id": msg.id,
        "ts": msg.ts,
    }
    optional: dict[str, object] = {
        "seq": msg.seq,
        "num": msg.num,
        "sender_type": msg.sender_type,
        "reply_to": msg.reply_to,
        "thread_root": (msg.thread or {}).get("root"),
        "mentions": ",".join(msg.mentions) or None,
        "attachments": len(msg.attachments) or None,
        "dm_with": _dm_partner(msg.channel, me),
    }
    meta.update({k: str(v) for k, v in optional.items() if v is not None})
    return {"content": msg.content, "meta": meta}


def _dm_partner(channel: str, me: str) -> str | None:
    if not is_dm(channel):
        return None
    try:
        first, second = dm_participants(channel)
    except ConversationError:
        return None
    key = f"agent:{me}"
    return second if first == key else first if second == key else None


class AgentSession:
    """One hub connection and the queue of messages the agent has not taken yet."""

    def __init__(self, factory: Callable[[], OrochiClient]) -> None:
        self._factory = factory
        self._client: OrochiClient | None = None
        self._pump: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._inbox: deque[Message] = deque(maxlen=INBOX_MAX)
        self._arrived = asyncio.Condition()
        self._push: Push | None = None
        # id (and num) of each message seen -> its channel, for `reply` by id alone
        self._seen: OrderedDict[str | int, str] = OrderedDict()
        self._notified: set[str] = set()
        self.dropped = 0
        self.pushed = 0
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
                if self._remember(msg):
                    continue  # seen already (a new connection resumed it again)
                async with self._arrived:
                    if len(self._inbox) == self._inbox.maxlen:
                        self.dropped += 1
                    self._inbox.append(msg)
                    self._arrived.notify_all()
                await self._raise(msg, client.name)
        except Exception as exc:  # noqa: BLE001 - reported to the agent by the next tool call
            self.error = str(exc)
            async with self._arrived:
                self._arrived.notify_all()

    def _remember(self, msg: Message) -> bool:
        """Note the message's channel under its id and num; True if it was seen before."""
        if msg.id and msg.id in self._seen:
            return True
        for key in (msg.id, msg.num):
            if key:
                self._seen[key] = msg.channel
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        return False

    def channel_of(self, message: MessageLike) -> str | None:
        """The channel of a message this session has seen, by its id or number."""
        return self._seen.get(message_ref(message))

    async def _raise(self, msg: Message, me: str) -> None:
        params = channel_notification(msg, me)
        if self._push is None or params is None:
            return
        try:
            await self._push(params)
        except Exception as exc:  # noqa: BLE001 - the MCP client went away; the queue stays
            log.info("could not push message %s: %s", msg.id, exc)
            return
        self.pushed += 1
        self._notified.add(msg.id)
        if len(self._notified) > SEEN_MAX:
            self._notified = {m.id for m in self._inbox} & self._notified

    def start_pushing(self, push: Push) -> None:
        """Raise a channel notification for each message from now on, and connect now
        (in the background, retrying while the hub is away) so they arrive unasked."""
        if self._push is not None:
            return
        self._push = push
        self._connector = asyncio.create_task(self._connect_for_push(), name="orochi-mcp-push")

    async def _connect_for_push(self) -> None:
        attempt = 0
        while True:
            try:
                await self.client()
                return
            except OrochiError as exc:
                log.info("hub not reachable yet for pushes: %s", exc)
            await asyncio.sleep(PUSH_BACKOFF.delay(attempt))
            attempt += 1

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
        notified = self._notified
        return {
            "messages": [
                {**m.to_dict(), **({"notified": True} if m.id in notified else {})} for m in taken
            ],
            "timed_out": not taken,
            "still_queued": len(self._inbox),
            "dropped": self.dropped,
            **({"error": self.error} if self.error and not taken else {}),
        }

    def queued(self) -> int:
        return len(self._inbox)

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(BaseException):
                await self._connector
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


def _with_channel_capability(kwargs: dict[str, Any]) -> Any:
    """A FastMCP server that declares `experimental: {"claude/channel": {}}` in its
    initialize result: Claude Code registers its channel listener only then."""
    from fastmcp import FastMCP

    experimental: dict[str, dict[str, Any]] = {CHANNEL_CAPABILITY: {}}
    if "experimental_capabilities" in inspect.signature(FastMCP.__init__).parameters:
        return FastMCP(experimental_capabilities=experimental, **kwargs)
    mcp = FastMCP(**kwargs)  # older FastMCP: merge into the low-level server's capabilities
    low: Any = mcp._mcp_server
    get_capabilities = low.get_capabilities

    def with_channel(
        notification_options: Any = None,
        experimental_capabilities: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        merged = {**(experimental_capabilities or {}), **experimental}
        return get_capabilities(notification_options, merged, *args, **kwargs)

    low.get_capabilities = with_channel
    return mcp


def _push_middleware(session: Callable[[], AgentSession]) -> Any:
    """Starts the pushes on the MCP session once the client said `initialized` (or, on a
    FastMCP that does not show that notification to middleware, at its first request)."""
    from fastmcp.server.middleware import Middleware
    from pydantic import BaseModel

    class ChannelNotification(BaseModel):
        method: str = CHANNEL_METHOD
        params: dict[str, Any]

    class StartPushes(Middleware):
        async def on_message(self, context: Any, call_next: Any) -> Any:
            result = await call_next(context)
            if context.method != "initialize" and context.fastmcp_context is not None:
                with contextlib.suppress(RuntimeError):  # no MCP session (yet)
                    mcp_session = context.fastmcp_context.session

                    async def push(params: dict[str, Any]) -> None:
                        await mcp_session.send_notification(ChannelNotification(params=params))

                    session().start_pushing(push)
            return result

    return StartPushes()


async def _rest_get(client: OrochiClient, path: str) -> dict[str, Any]:
    """A read of the HTTP gateway (same host, `dashboard_port`, same token), in a thread."""
    rest = RestClient(http_url(client.host, client.dashboard_port), client.token, client.timeout)
    data = await asyncio.to_thread(rest.get, path)
    if not isinstance(data, dict):
        raise OrochiError(f"GET {path} did not answer a JSON object")
    return data


def _sent(sent: Sent, **extra: Any) -> dict[str, Any]:
    return {"id": sent.id, "channel": sent.channel, "seq": sent.seq, "num": sent.num, **extra}


def create_server(factory: Callable[[], OrochiClient] = client_from_env) -> Any:
    session_box: dict[str, AgentSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        session = AgentSession(factory)
        session_box["s"] = session
        try:
            yield {"session": session}
        finally:
            await session.close()

    def session() -> AgentSession:
        return session_box["s"]

    mcp = _with_channel_capability(
        {
            "name": "scitex-orochi",
            "instructions": __doc__,
            "lifespan": lifespan,
            "middleware": [_push_middleware(session)],
        }
    )

    @mcp.tool
    async def send(channel: str, content: str, metadata: dict[str, Any] | None = None) -> dict:
        """Post a message to a channel (e.g. '#general'); returns once stored, with its seq.
        Mention agents with @name to reach them even outside the channel."""
        sent = await (await session().client()).send(channel, content, metadata)
        return {"id": sent.id, "channel": sent.channel, "seq": sent.seq}

    @mcp.tool
    async def reply(
        message: Annotated[str | int, Field(description=MESSAGE_HELP)],
        content: Annotated[str, Field(description="The reply.")],
        channel: Annotated[
            str | None,
            Field(description="The message's channel; needed only for a message not seen here."),
        ] = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict:
        """Answer a message in its thread (a message of its channel with
        metadata.reply_to = that message). Returns once stored."""
        agent = session()
        client = await agent.client()
        channel = channel or agent.channel_of(message)
        if not channel:
            raise ValueError(f"message {message!r} was not seen here: give its channel")
        sent = await client.reply(message, content, channel, metadata)
        return _sent(sent, reply_to=message_ref(message))

    @mcp.tool
    async def react(
        message: Annotated[str | int, Field(description=MESSAGE_HELP)],
        emoji: Annotated[
            str, Field(min_length=1, max_length=32, description="e.g. '👍' or ':eyes:'.")
        ],
        remove: Annotated[bool, Field(description="Take the reaction back.")] = False,
    ) -> dict:
        """Add (or remove) this agent's reaction to a message. `outcome` is added, existed,
        removed or not_found."""
        changed = await (await session().client()).react(message, emoji, remove)
        return {**changed.to_dict(), "emoji": emoji}

    @mcp.tool
    async def edit_message(
        message: Annotated[str | int, Field(description=MESSAGE_HELP)],
        content: Annotated[str, Field(description="The new content.")],
    ) -> dict:
        """Replace the content of a message this agent sent (others' are refused)."""
        return (await (await session().client()).edit(message, content)).to_dict()

    @mcp.tool
    async def delete_message(
        message: Annotated[str | int, Field(description=MESSAGE_HELP)],
    ) -> dict:
        """Delete a message this agent sent; history keeps a tombstone."""
        return (await (await session().client()).delete(message)).to_dict()

    @mcp.tool
    async def send_dm(
        agent: Annotated[
            str,
            Field(
                min_length=1,
                max_length=134,
                description="An agent name (or agent:<name>), or human:<name> for a person.",
            ),
        ],
        content: str,
        metadata: dict[str, Any] | None = None,
    ) -> dict:
        """Send a direct message, on the DM channel only the two of you may read
        (dm:agent:<a>|agent:<b>); their answers arrive like any message."""
        client = await session().client()
        sent = await client.dm(agent, content, metadata)
        return _sent(sent)

    @mcp.tool
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=500, description="Words to find.")],
        channel: str | None = None,
        sender: str | None = None,
        limit: Annotated[int, Field(ge=1, le=SEARCH_MAX)] = 20,
    ) -> dict:
        """Find stored messages by their words (in the channels and DMs this agent may
        read), best match first."""
        client = await session().client()
        found = await client.search(query, channel, sender, limit)
        return {"query": query, "messages": [m.to_dict() for m in found]}

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

    @mcp.tool
    async def list_skills() -> dict:
        """The workspace's slash skills: name, description and arguments of each. People
        use one as `/<skill> @agent args...`; the hub fills it in and sends it to you."""
        return await _rest_get(await session().client(), "/api/skills")

    @mcp.tool
    async def get_skill(
        name: Annotated[
            str,
            Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$", description="Its name."),
        ],
    ) -> dict:
        """One skill: its arguments and template `body` (`{{name}}` placeholders), and the
        whole file as `markdown`."""
        return await _rest_get(await session().client(), f"/api/skills/{name}")

    return mcp


def main() -> None:
    create_server().run()


if __name__ == "__main__":
    main()
