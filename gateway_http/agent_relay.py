"""`/ws/agent/` on the dashboard port: the fleet sidecar's default socket (FLEET.md §1).

The sidecar opens its WebSocket on the same host:port as its REST calls, the
dashboard port. Agent sessions live in the WebSocket gateways (gateway_ws: one pure
core for both dialects), not in this process, so this route relays: it opens the
same path and query on the agent port (loopback when the hub listens on every
address) and copies text frames both ways, then the close code and reason (a bad
token closes 4001 here as there; 4409, 4000, 4008 likewise). Nothing of sessions,
routing or sequencing is held here.

The agent port sees the relayed connections as coming from this process's address,
so its per-address limit (SCITEX_OROCHI_MAX_CONNECTIONS_PER_ADDR) counts them together;
the dashboard port's own per-address guard (edge.py) still sees the real clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSMsgType, web

from scitex_orochi.hub.config import Config
from scitex_orochi.protocol.constants import CLOSE_REASONS

from .keys import CONFIG

log = logging.getLogger("orochi.gateway_http")

PATH = "/ws/agent/"
RELAY_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey(
    "agent_relay_session", aiohttp.ClientSession
)
LOOPBACK = {"", "0.0.0.0", "::"}
ABNORMAL_CLOSE = 1011


def upstream_url(cfg: Config, path_qs: str) -> str:
    host = "127.0.0.1" if cfg.host in LOOPBACK else cfg.host
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{cfg.ws.port}{path_qs}"


async def agent_ws(request: web.Request) -> web.StreamResponse:
    cfg = request.app[CONFIG]
    session = request.app[RELAY_SESSION]
    try:
        upstream = await session.ws_connect(
            upstream_url(cfg, request.path_qs),
            max_msg_size=cfg.ws.max_frame_bytes,
            autoping=True,
            heartbeat=None,
        )
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("agent relay: the agent port did not answer: %s", exc)
        raise web.HTTPServiceUnavailable(text="the agent gateway is not reachable\n") from None
    ws = web.WebSocketResponse(
        heartbeat=cfg.ws.ping_interval_s, max_msg_size=cfg.ws.max_frame_bytes
    )
    await ws.prepare(request)

    async def down() -> None:  # agent port -> client
        async for msg in upstream:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            else:
                break
        code = upstream.close_code or ABNORMAL_CLOSE
        await ws.close(code=code, message=CLOSE_REASONS.get(code, "").encode())

    async def up() -> None:  # client -> agent port
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            else:
                break
        await upstream.close()

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if not upstream.closed:
            await upstream.close()
        if not ws.closed:
            await ws.close(code=upstream.close_code or ABNORMAL_CLOSE)
    return ws


async def _session(app: web.Application) -> AsyncIterator[None]:
    app[RELAY_SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    yield
    await app[RELAY_SESSION].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_session)
    app.router.add_get(PATH, agent_ws)
