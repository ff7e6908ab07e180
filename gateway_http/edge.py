"""The dashboard port's connection edge: connection limits and a request-head timeout.

aiohttp accepts every connection and waits for a request head for as long as
its keep-alive timeout, so thousands of clients that connect and never finish
a request can exhaust the process. Here:

- `ConnectionGuard` (pure) counts open connections per client address and in
  total. Over either limit a connection gets a minimal `503 Service
  Unavailable` with `Retry-After` (the gateway's JSON error body) and is closed
  without ever reaching aiohttp.
- `EdgeProtocol`, aiohttp's `RequestHandler` plus the guard, closes a
  connection that has not sent a complete request head within the header
  timeout of connecting or of sending the first byte of its next request, and
  answers a request aiohttp cannot parse with the gateway's JSON error and a
  log line that never quotes the request (its tokens).
- `EdgeRunner` is an `AppRunner` whose server builds `EdgeProtocol`s; the
  gateway's `__main__` serves through it instead of `web.run_app`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .keys import CONFIG

log = logging.getLogger("orochi.gateway_http.edge")

RETRY_AFTER_S = 5
REFUSED_LINGER_S = 2.0  # a refused client may read its 503 before the socket goes
KEEPALIVE_S = 75.0  # idle time allowed between requests (aiohttp's run_app default)
PER_ADDRESS, TOTAL = "per_address", "total"
MALFORMED = "malformed HTTP request (request line or headers)"
REFUSAL_MESSAGES = {
    PER_ADDRESS: "too many connections from your address; retry later",
    TOTAL: "the server has too many connections; retry later",
}


class ConnectionGuard:
    """Open connections per client address and in total, and what was refused."""

    def __init__(self, max_per_addr: int, max_total: int) -> None:
        self.max_per_addr = max_per_addr
        self.max_total = max_total
        self.open = 0
        self.by_addr: dict[str, int] = {}
        self.refused = {PER_ADDRESS: 0, TOTAL: 0}
        self.header_timeouts = 0

    def admit(self, addr: str) -> str | None:
        """Count a new connection in; or the reason (PER_ADDRESS, TOTAL) it is refused."""
        if self.open >= self.max_total:
            reason = TOTAL
        elif self.by_addr.get(addr, 0) >= self.max_per_addr:
            reason = PER_ADDRESS
        else:
            self.by_addr[addr] = self.by_addr.get(addr, 0) + 1
            self.open += 1
            return None
        self.refused[reason] += 1
        return reason

    def release(self, addr: str) -> None:
        left = self.by_addr.get(addr, 0) - 1
        if left > 0:
            self.by_addr[addr] = left
        else:
            self.by_addr.pop(addr, None)
        self.open = max(0, self.open - 1)


EDGE = web.AppKey("edge", ConnectionGuard)


def refusal(reason: str) -> bytes:
    """The whole answer to a refused connection: status line, headers, JSON error body."""
    body = json.dumps({"error": REFUSAL_MESSAGES[reason], "status": 503}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


_REFUSALS = {reason: refusal(reason) for reason in REFUSAL_MESSAGES}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def peer_host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class EdgeProtocol(RequestHandler):
    """aiohttp's request handler with admission control and a request-head deadline."""

    __slots__ = ("_guard", "_head_timeout_s", "_addr", "_head_timer", "_answered")

    def __init__(
        self, manager: web.Server, *, guard: ConnectionGuard, head_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._head_timeout_s = head_timeout_s
        self._addr: str | None = None  # set once admitted
        self._head_timer: asyncio.TimerHandle | None = None
        self._answered = 0  # responses finished; heads parsed is aiohttp's _request_count

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        addr = peer_host(transport)
        reason = self._guard.admit(addr)
        if reason is not None:
            self._refuse(transport, addr, reason)
            return
        self._addr = addr
        super().connection_made(transport)
        self._arm_head_timer()

    def _refuse(self, transport: asyncio.BaseTransport, addr: str, reason: str) -> None:
        # aiohttp never sees this connection: no request task, no parser work.
        self.force_close()
        log.warning("refused a connection from %s: %s", addr, reason.replace("_", " ") + " limit")
        assert isinstance(transport, asyncio.Transport)
        transport.write(_REFUSALS[reason])
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(REFUSED_LINGER_S, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._addr is None:
            return  # refused, never admitted
        self._cancel_head_timer()
        self._guard.release(self._addr)
        self._addr = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._addr is None or self._force_close:
            return
        if self._request_count > self._answered:
            self._cancel_head_timer()  # a head is complete; the handler owns the time now
        elif data and self._head_timer is None:
            self._arm_head_timer()  # the first byte of the next request on a kept-alive socket

    async def finish_response(
        self, request: Any, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse or serve: the gateway's JSON error, closed.

        aiohttp's own version logs the exception, whose text quotes the raw request
        line or header (tokens included), and answers text/plain.
        """
        if status >= 500:
            log.error(
                "request from %s failed: %s",
                request.remote,
                type(exc).__name__,
                exc_info=exc if exc is not None and status == 500 else None,
            )
        else:
            log.info("malformed request from %s: %s", request.remote, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; no error answer is possible")
        reason = MALFORMED if status == 400 else _phrase(status)
        resp = web.json_response({"error": reason, "status": status}, status=status)
        resp.force_close()
        return resp

    def _arm_head_timer(self) -> None:
        self._head_timer = self._loop.call_later(self._head_timeout_s, self._on_head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self._force_close or self._request_count > self._answered:
            return
        self._guard.header_timeouts += 1
        log.info(
            "closed a connection from %s: no complete request head within %gs",
            self._addr,
            self._head_timeout_s,
        )
        self.force_close()


class EdgeServer(web.Server):
    """aiohttp's low-level server, building `EdgeProtocol`s."""

    def __init__(
        self, handler: Any, *, guard: ConnectionGuard, head_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self.guard = guard
        self.head_timeout_s = head_timeout_s

    def __call__(self) -> EdgeProtocol:
        return EdgeProtocol(
            self,
            loop=self._loop,
            guard=self.guard,
            head_timeout_s=self.head_timeout_s,
            **self._kwargs,
        )


class EdgeRunner(web.AppRunner):
    """An `AppRunner` for `create_app`'s application: limits from its config and guard."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # runs the app's startup (the bus round trip)
        return EdgeServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            guard=self.app[EDGE],
            head_timeout_s=self.app[CONFIG].http.header_timeout_s,
            **server._kwargs,
        )
