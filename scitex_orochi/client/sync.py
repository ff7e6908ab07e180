"""Blocking wrapper around `OrochiClient` for scripts that are not async.

    with SyncOrochiClient("my-script", channels=["#general"]) as client:
        client.send("#general", "done")
        msg = client.recv(timeout=30)

The async client runs on an event loop in a daemon thread; each call waits for
its result there, so the reconnect and resume rules are the same.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from scitex_orochi.client.agent import OrochiClient
from scitex_orochi.client.core import Changed, Event, Message, MessageLike, Sent, Thread

T = TypeVar("T")


class SyncOrochiClient:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="orochi-sync-client"
        )
        self._thread.start()
        self._client: OrochiClient = self._call(self._make())

    async def _make(self) -> OrochiClient:
        return OrochiClient(*self._args, **self._kwargs)  # its queue binds to this loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def client(self) -> OrochiClient:
        return self._client

    @property
    def name(self) -> str:
        return self._client.name

    def connect(self) -> SyncOrochiClient:
        self._call(self._client.connect())
        return self

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> SyncOrochiClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        channel: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        attachments: list[Any] | None = None,
        **kw: Any,
    ) -> Sent:
        return self._call(self._client.send(channel, content, metadata, attachments, **kw))

    def reply(
        self, message: MessageLike, content: str, channel: str | None = None, **kw: Any
    ) -> Sent:
        return self._call(self._client.reply(message, content, channel, **kw))

    def react(self, message: MessageLike, emoji: str, remove: bool = False, **kw: Any) -> Changed:
        return self._call(self._client.react(message, emoji, remove, **kw))

    def edit(self, message: MessageLike, content: str, **kw: Any) -> Changed:
        return self._call(self._client.edit(message, content, **kw))

    def delete(self, message: MessageLike, **kw: Any) -> Changed:
        return self._call(self._client.delete(message, **kw))

    def dm_channel(self, other: str) -> str:
        return self._client.dm_channel(other)

    def dm(self, agent_or_key: str, content: str, **kw: Any) -> Sent:
        return self._call(self._client.dm(agent_or_key, content, **kw))

    def search(self, words: str, channel: str | None = None, **kw: Any) -> list[Message]:
        return self._call(self._client.search(words, channel, **kw))

    def thread(self, message: MessageLike, limit: int | None = None, **kw: Any) -> Thread:
        return self._call(self._client.thread(message, limit, **kw))

    def update_status(
        self, status: str = "idle", current_task: str | None = None, **extra: Any
    ) -> None:
        self._call(self._client.update_status(status, current_task, **extra))

    def who(self) -> dict[str, list[str]]:
        return self._call(self._client.who())

    def query_history(self, channel: str = "#general", limit: int = 50, **kw: Any) -> list[Message]:
        return self._call(self._client.query_history(channel, limit, **kw))

    def subscribe(self, channel: str, mention_only: bool = False) -> None:
        self._call(self._client.subscribe(channel, mention_only))

    def unsubscribe(self, channel: str) -> None:
        self._call(self._client.unsubscribe(channel))

    def heartbeat(self, **extra: Any) -> None:
        self._call(self._client.heartbeat(**extra))

    def start_heartbeat(self, interval: float = 30.0, **extra: Any) -> None:
        async def start() -> None:
            self._client.start_heartbeat(interval, **extra)

        self._call(start())

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next message (RequestTimeout after `timeout`); None once closed."""
        return self._call(self._client.recv(timeout))

    def listen(self) -> Iterator[Message]:
        while (msg := self.recv()) is not None:
            yield msg

    def recv_event(self, timeout: float | None = None) -> Event | None:
        """The next change event (the client made with `events=True`); None once closed."""
        return self._call(self._client.recv_event(timeout))

    def listen_events(self) -> Iterator[Event]:
        while (event := self.recv_event()) is not None:
            yield event
