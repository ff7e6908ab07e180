"""Request/reply over the bus: `rpc.<service>|` requests, `rep.<origin>|` replies.

A request body is `{"rid", "reply_to", ...}`; the worker answers on
`rep.<reply_to>|` with `{"rid", "result": ...}` or `{"rid", "error": {"code",
"detail", "status"?}}`. `RpcClient` is the requesting side, used by the HTTP
gateway's Gitea routes and Telegram webhook; `reply` is the worker side.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from scitex_orochi.hub.bus import AsyncBus, new_origin
from scitex_orochi.hub.bus_keys import CurveClient, client_keys
from scitex_orochi.hub.config import Config
from scitex_orochi.protocol import topics

log = logging.getLogger("orochi.rpc")

BUS_BURST = 1000


class RpcTimeout(TimeoutError):
    """No worker answered in time (it may not be running)."""


def reply(bus: AsyncBus, request: dict[str, Any], *, result: Any = None,
          error: dict[str, Any] | None = None) -> None:
    """Answer one request on its requester's reply topic."""
    reply_to = request.get("reply_to")
    if not isinstance(reply_to, str) or not reply_to:
        log.warning("request %s has no reply_to; dropped", request.get("rid"))
        return
    body: dict[str, Any] = {"rid": request.get("rid")}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result
    bus.publish(topics.reply(reply_to), body)


class RpcClient:
    """One bus connection that sends requests and matches replies by `rid`."""

    def __init__(self, bus_in: str, bus_out: str, kind: str = "rpc",
                 curve: CurveClient | None = None) -> None:
        self.bus_in = bus_in
        self.bus_out = bus_out
        self.curve = curve
        self.kind = kind
        self.bus: AsyncBus | None = None
        self.waiters: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def start(self, ready_timeout_s: float = 30.0) -> None:
        self.bus = AsyncBus(self.bus_in, self.bus_out, new_origin(self.kind), self.curve)
        self.bus.subscribe(topics.reply(self.bus.origin))
        await self.bus.wait_ready(ready_timeout_s)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for future in self.waiters.values():
            if not future.done():
                future.cancel()
        if self.bus is not None:
            self.bus.close()

    async def request(self, service: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Publish a request and wait for its reply body (`result` or `error`)."""
        if self.bus is None:
            raise RuntimeError("RpcClient.start() was not called")
        rid = str(uuid.uuid4())
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiters[rid] = future
        try:
            self.bus.publish(topics.rpc(service), {**body, "rid": rid,
                                                   "reply_to": self.bus.origin})
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise RpcTimeout(f"no answer from {service} within {timeout_s:.1f}s") from None
        finally:
            self.waiters.pop(rid, None)

    async def _read(self) -> None:
        assert self.bus is not None
        while True:
            for _topic, body in await self.bus.recv_burst(BUS_BURST, timeout_s=1.0):
                if not isinstance(body, dict):
                    continue
                future = self.waiters.get(body.get("rid"))
                if future is not None and not future.done():
                    future.set_result(body)


RPC_CLIENT = web.AppKey("orochi_bridge_rpc", RpcClient)


def app_rpc_client(app: web.Application, config_key: web.AppKey[Config]) -> RpcClient:
    """The aiohttp app's one RpcClient (created on first use), started and closed with the app."""
    if RPC_CLIENT in app:
        return app[RPC_CLIENT]
    client = RpcClient("", "", "http-rpc")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        cfg = app[config_key]
        client.bus_in, client.bus_out = cfg.bus_in, cfg.bus_out
        client.curve = client_keys(cfg)
        await client.start()
        yield
        await client.close()

    app[RPC_CLIENT] = client
    app.cleanup_ctx.append(lifetime)
    return client
