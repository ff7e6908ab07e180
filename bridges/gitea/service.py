"""The Gitea worker's I/O loop: `rpc.gitea|` requests in, `rep.<reply_to>|` replies out.

Each request is answered from its own task, so one slow Gitea call never
delays the others. Requests: `{"rid", "reply_to", "ws", "sender", "action",
"params"}`; replies: `{"rid", "result"}` or `{"rid", "error": {"code", "detail",
"status"?}}`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import aiohttp

from bridges.rpc import reply
from scitex_orochi.hub.bus import AsyncBus, new_origin
from scitex_orochi.hub.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.protocol import topics

from .actions import ActionError, api_error, build_request
from .api import GiteaApi, GiteaApiError

log = logging.getLogger("orochi.gitea")

BUS_BURST = 1000
SERVICE = "gitea"


class GiteaWorker:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.bus = AsyncBus.from_config(cfg, new_origin("gitea"))
        self.api: GiteaApi | None = None
        self.inflight: set[asyncio.Task] = set()
        self.stopping = asyncio.Event()
        self.answered = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self.bus.subscribe(topics.rpc(SERVICE))
        await self.bus.wait_ready(timeout_s=30.0)
        async with aiohttp.ClientSession() as session:
            self.api = GiteaApi(session, self.cfg.gitea_url or "", self.cfg.gitea_token,
                                self.cfg.gitea_timeout_s)
            log.info("gitea worker %s ready for %s", self.bus.origin, self.api.base)
            reader = asyncio.create_task(self._read())
            await self.stopping.wait()
            reader.cancel()
            if self.inflight:
                await asyncio.wait(self.inflight, timeout=SHUTDOWN_DEADLINE_S / 2)
            await asyncio.gather(reader, return_exceptions=True)
        self.bus.close()
        log.info("gitea worker stopped after %d answers", self.answered)

    async def _read(self) -> None:
        while True:
            for _topic, body in await self.bus.recv_burst(BUS_BURST, timeout_s=1.0):
                if not isinstance(body, dict):
                    continue
                task = asyncio.create_task(self.answer(body))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)

    async def answer(self, request: dict[str, Any]) -> None:
        action = request.get("action")
        try:
            result = await self.handle(action, request.get("params"))
        except ActionError as exc:
            reply(self.bus, request, error=exc.as_error())
        except GiteaApiError as exc:
            log.info("gitea %s failed: status %s", action, exc.status)
            reply(self.bus, request, error=api_error(exc.status, exc.detail))
        except Exception:  # noqa: BLE001 - the requester must hear back
            log.exception("gitea %s crashed", action)
            reply(self.bus, request, error=api_error(None, "internal error in the Gitea worker"))
        else:
            reply(self.bus, request, result=result)
        self.answered += 1

    async def handle(self, action: Any, params: Any) -> Any:
        req = build_request(action, params)
        assert self.api is not None
        log.debug("gitea %s -> %s %s", action, req.method, req.path)
        return await self.api.call(req)
