"""The Gitea worker's I/O: `rpc.gitea|` requests in, `rep.<reply_to>|` replies out.

Served through the process's `BusPeer` (`scitex_orochi.hub.peer.serve`): each
request is answered from its own kept task, so one slow Gitea call never
delays the others, and on SIGTERM the requests in hand finish (within half the
shutdown deadline) before the bus closes. Requests: `{"rid", "reply_to", "ws",
"sender", "action", "params"}`; replies: `{"rid", "result"}` or `{"rid",
"error": {"code", "detail", "status"?}}`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from scitex_orochi.hub.bus_bodies import GiteaRpc
from scitex_orochi.hub.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.hub.errors import RpcError
from scitex_orochi.hub.peer import BusPeer

from .actions import ActionError, api_error, build_request
from .api import GiteaApi, GiteaApiError

log = logging.getLogger("orochi.gitea")

BUS_BURST = 1000
SERVICE = "gitea"
CRASHED = "internal error in the Gitea worker"


class GiteaWorker:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.peer = BusPeer(cfg, "gitea", burst=BUS_BURST)
        self.api: GiteaApi | None = None

    @property
    def answered(self) -> int:
        return self.peer.served

    async def run(self) -> None:
        self.peer.stop_on_signals()
        async with aiohttp.ClientSession() as session:
            self.api = GiteaApi(
                session, self.cfg.gitea.url or "", self.cfg.gitea.token, self.cfg.gitea.timeout_s
            )
            self.peer.serve(SERVICE, self.answer, crash_error=api_error(None, CRASHED))
            await self.peer.start()
            log.info("gitea worker %s ready for %s", self.peer.origin, self.api.base)
            await self.peer.stopping.wait()
            await self.peer.stop(drain_s=SHUTDOWN_DEADLINE_S / 2)
        log.info("gitea worker stopped after %d answers", self.answered)

    async def answer(self, request: GiteaRpc) -> Any:
        """The result of one request; its error as an RpcError."""
        action = request.get("action")
        try:
            return await self.handle(action, request.get("params"))
        except ActionError as exc:
            raise RpcError(exc.as_error()) from None
        except GiteaApiError as exc:
            log.info("gitea %s failed: status %s", action, exc.status)
            raise RpcError(api_error(exc.status, exc.detail)) from None

    async def handle(self, action: Any, params: Any) -> Any:
        req = build_request(action, params)
        assert self.api is not None
        log.debug("gitea %s -> %s %s", action, req.method, req.path)
        return await self.api.call(req)
