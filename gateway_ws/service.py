"""The agents' WebSocket gateway (I/O): sockets and the bus around two pure cores.

Any number of these run at once (SO_REUSEPORT on one port). What is decided is
decided in the cores, which this module drives and whose actions it carries out:
- `core.FrameCore`: a parsed frame in, actions out (replies, bus publishes,
  ingest submissions, closes, read pauses, and the lookups it needs first);
- `delivery.DeliveryCore`: `dlv.` batches in, per-recipient sends and gap
  fetches out.
On the bus the gateway is one `BusPeer` (scitex_orochi.hub.peer): its dispatch
table, the request/reply with the Gitea worker, the `Ingest` that holds each
message until the persister's durable ack, the presence replica of the other
gateways, this gateway's snapshots and its stop notice, and every background task.

What stays here is I/O: the websockets server; authentication (a store lookup,
cached) and the connection limits per address and per token; each connection's
read loop (a flood is slowed by not reading its socket); the lookups the core
asks for (`LOOKUPS`: the store in the default executor, the Gitea worker over
the bus); gap fills from the database; the reaper and the revocation sweep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from scitex_orochi.hub.bus_bodies import (
    AuthChanged,
    DeliveryBody,
    Kick,
    PresenceDelta,
    Revocation,
    RpcReply,
)
from scitex_orochi.hub.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.hub.errors import IngestFull
from scitex_orochi.hub.peer import BusPeer
from scitex_orochi.hub.presence import Change
from scitex_orochi.hub.tokens import TokenCache
from scitex_orochi.protocol import codec, topics
from scitex_orochi.protocol.constants import CLOSE_REASONS
from scitex_orochi.protocol.errors import ErrorCode

from .actions import (
    Actions,
    Close,
    Found,
    GiteaCall,
    GiteaGrant,
    HistoryPage,
    PinnedNames,
    Search,
    Subscriptions,
)
from .connection import AgentConnection, Framed, framed
from .core import RETRY_AFTER_S, FrameCore
from .delivery import DeliveryCore, Key
from .dialect import DIALECT_A, Dialect
from .dialect_b import PATH as B_PATH
from .dialect_b import DialectB, wants_b
from .limits import Limits
from .probe import Probes
from .routing import Roster

log = logging.getLogger("orochi.gateway_ws")
T = TypeVar("T")

GAP_FILL_RETRIES = 5
GAP_FILL_RETRY_S = 0.1
GAP_FILL_MAX_BYTES = 8 * 1024 * 1024
GITEA_TIMEOUT_S = 30.0
BUS_BURST = 2000
# A register is acked once its presence delta has passed the broker, so the REST API
# lists the agent on the very next request; a broken bus delays the ack this long at most.
REGISTER_VISIBLE_TIMEOUT_S = 1.0


class Gateway:
    def __init__(self, cfg: Config, store: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.peer = BusPeer(
            cfg,
            "gw",
            ingest=True,
            ingest_max_bytes=cfg.ingest.pending_max_bytes,
            replica=True,
            on_presence=self._on_presence,
            burst=BUS_BURST,
        )
        assert self.peer.ingest is not None and self.peer.replica is not None
        self.origin = self.peer.origin
        self.ingest = self.peer.ingest
        self.replica = self.peer.replica
        self.roster: Roster[AgentConnection] = Roster()
        self.limits = Limits(cfg)
        self.core = FrameCore(cfg, self.origin, self.replica, self.limits, self.roster)
        self.delivery: DeliveryCore[AgentConnection] = DeliveryCore(
            self.roster,
            framed,
            lambda conn: conn.session.wants_events or conn.dialect.all_events,
            lambda conn: conn.dialect,
        )
        self.conns: set[AgentConnection] = set()
        self.fleet: set[AgentConnection] = set()  # dialect-B connections: ping/echo timers
        self.probes = Probes(
            cfg.ws.ping_interval_s,
            cfg.presence.ghost_after_s,
            cfg.ws.ping_timeout_s,
            lambda coro: self.peer.spawn(coro, "ping"),
        )
        self.tokens: TokenCache[Any] = TokenCache(cfg.auth.token_cache_max, cfg.auth.token_cache_s)
        self._admin_token: str | None = cfg.auth.admin_token
        self.peer.route(topics.DELIVER, self._on_deliver)
        self.peer.route(topics.REVOKE, self._on_revoke)
        self.peer.route(topics.KICK, self._on_kick)
        self.peer.route(topics.AUTH_CHANGED, self._on_auth_changed)
        self.peer.own_agents(lambda: self.core.snapshot(self.conns))

    # ---- lifecycle -------------------------------------------------------
    async def start_bus(self) -> None:
        await self.peer.start()
        cfg = self.cfg
        self.peer.every(
            min(5.0, cfg.presence.reap_after_s / 4, cfg.ws.register_timeout_s / 4),
            self._reap_step,
            "reaper",
        )
        self.peer.every(cfg.auth.revocation_sweep_s, self._revocation_sweep, "revocation sweep")
        tick = (
            min(
                cfg.ws.fleet_ping_interval_s,
                cfg.ws.fleet_echo_interval_s,
                cfg.ws.ping_interval_s,
                cfg.presence.ghost_after_s,
            )
            / 5
        )
        self.peer.every(max(0.02, min(1.0, tick)), self._liveness, "liveness probes")

    async def run(self) -> None:
        await self.start_bus()
        self.peer.stop_on_signals()
        async with serve(
            self.handle,
            self.cfg.host,
            self.cfg.ws.port,
            max_size=self.cfg.ws.max_frame_bytes,
            process_request=self.process_request,
            ping_interval=None,  # the gateway's own pings (probe.py): ghosts before closing
            ping_timeout=None,
            reuse_port=True,
            max_queue=64,
            compression=None,
        ) as server:
            log.info(
                "gateway %s listening on ws://%s:%d", self.origin, self.cfg.host, self.cfg.ws.port
            )
            await self.peer.stopping.wait()
            log.info("stopping: closing %d connections", len(self.conns))
            self.peer.announce_stop()
            server.close(close_connections=False)
            await asyncio.wait_for(self._close_all(codec.CLOSE_GOING_AWAY), SHUTDOWN_DEADLINE_S / 2)
        await self.peer.stop()
        log.info("gateway stopped")

    async def _close_all(self, code: int) -> None:
        await asyncio.gather(*(c.close(code) for c in list(self.conns)), return_exceptions=True)

    # ---- auth and admission -------------------------------------------------
    def _admin(self) -> str:
        if not self._admin_token:
            try:
                self._admin_token = self.cfg.admin_token_file.read_text().strip() or None
            except OSError:
                return ""
        return self._admin_token or ""

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """A store call in the default executor (the store is blocking)."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the handshake: refuse a client address (or this gateway) that holds
        too many connections already, with 503 and Retry-After."""
        reason = self.limits.refuse_address(_address(connection))
        if reason is None:
            return None
        response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, reason + "\n")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    async def authenticate(self, path: str) -> tuple[Any, str, str] | None:
        """(store.Auth, token, workspace) for the request path's `?token=`, or None."""
        query = parse_qs(urlsplit(path).query)
        token = (query.get("token") or [""])[0]
        if not token:
            return None
        now = time.monotonic()
        auth = self.tokens.get(token, now)
        if auth is None:
            auth = await self._blocking(self.store.authenticate, token, self._admin())
            self.tokens.put(token, auth, now)  # failures are not kept
        if auth is None:
            return None
        workspace = auth.workspace_id
        if auth.is_admin and query.get("workspace"):
            workspace = query["workspace"][0]
        return auth, token, workspace

    async def _refuse(
        self, ws: ServerConnection, code: str, detail: str, close: int, dialect: Dialect = DIALECT_A
    ) -> None:
        try:
            await ws.send(dialect.refused_connection(code, detail))
            await ws.close(close, CLOSE_REASONS[close])
        except ConnectionClosed:
            pass

    # ---- per connection --------------------------------------------------
    async def handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        dialect = dialect_for(path)
        try:
            found = await self.authenticate(path)
        except Exception:  # noqa: BLE001 - a broken store must not crash the gateway
            log.exception("authentication failed with an error")
            found = None
        if found is None:
            await self._refuse(
                ws,
                ErrorCode.AUTH_FAILED,
                "Invalid or missing token",
                codec.CLOSE_AUTH_FAILED,
                dialect,
            )
            return
        auth, token, workspace = found
        reason = self.limits.refuse_token(token)
        if reason is not None:
            await self._refuse(
                ws,
                ErrorCode.TOO_MANY_CONNECTIONS,
                reason,
                codec.CLOSE_TOO_MANY_CONNECTIONS,
                dialect,
            )
            return
        conn = AgentConnection(
            ws,
            workspace,
            auth.is_admin,
            self.origin,
            self.cfg.ws.send_queue_max_frames,
            self.cfg.ws.send_queue_max_bytes,
            spawn=self.peer.spawn,
            dialect=dialect,
        )
        conn.auth, conn.token, conn.addr = auth, token, _address(ws)
        self.limits.opened(conn.addr, token)
        self.conns.add(conn)
        self.probes.opened(conn)
        if isinstance(dialect, DialectB):
            self.fleet.add(conn)
            self.delivery.others += 1
            now = time.monotonic()
            dialect.next_ping = now + self.cfg.ws.fleet_ping_interval_s
            dialect.next_echo = now + self.cfg.ws.fleet_echo_interval_s
        try:
            async for raw in ws:
                if conn.closing:
                    break
                pause = await self.handle_frame(conn, raw)
                if pause:
                    await asyncio.sleep(pause)  # back-pressure: a flood waits in TCP
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            self.probes.closed(conn)
            if conn in self.fleet:
                self.fleet.discard(conn)
                self.delivery.others -= 1
            self.limits.closed(conn.addr, token)
            self._publish(self.core.forget(conn))
            await conn.stop_writer()

    async def handle_frame(self, conn: AgentConnection, raw: str | bytes) -> float:
        """Handle one frame; the seconds to wait before reading the next (rate limits)."""
        try:
            frame = conn.dialect.parse(raw)
        except codec.ProtocolError as exc:
            actions = self.core.on_unreadable(conn, exc)
        else:
            actions = self.core.on_frame(conn, frame)
            if actions.need is not None or actions.barrier:
                await self._advance(conn, frame, actions, Found())
                return actions.pause_s
        self._carry_out(conn, actions)
        self._send(conn, actions.sends)
        return actions.pause_s

    async def _advance(
        self,
        conn: AgentConnection,
        frame: codec.Envelope,
        actions: Actions,
        found: Found,
        *,
        in_background: bool = False,
    ) -> None:
        """Make the lookups the frame needs, resuming the core after each, then carry out
        its actions. A background lookup (a Gitea call) goes on in a kept task, so the
        client's next frames are read meanwhile; the others hold up its reading."""
        while actions.need is not None:
            need = actions.need
            if need.background and not in_background:
                self.peer.spawn(
                    self._advance(conn, frame, actions, found, in_background=True),
                    f"{frame.type}-{frame.id}",
                )
                return
            try:
                found.put(type(need), await LOOKUPS[type(need)](self, need))
            except Exception as exc:  # noqa: BLE001 - the handler decides what it means
                found.fail(type(need), exc)
            actions = self.core.resume(conn, frame, found)
        self._carry_out(conn, actions)
        if actions.barrier:
            await self.peer.barrier(REGISTER_VISIBLE_TIMEOUT_S)
        self._send(conn, actions.sends)

    def _carry_out(self, conn: AgentConnection, actions: Actions) -> None:
        """What comes before the replies: closes, publishes, the ingest submission."""
        self._close(actions.closes)
        self._publish(actions.publishes)
        if actions.submit is not None:
            submit = actions.submit
            try:
                self.ingest.submit(
                    submit.workspace,
                    submit.envelope,
                    submit.sender_type,
                    lambda body: self._send(conn, self.core.acked(conn, body, submit.done)),
                    admin=submit.admin,
                    mentions=submit.mentions,
                )
            except IngestFull as exc:
                self._send(conn, self.core.overloaded(conn, submit.ref, str(exc)))

    @staticmethod
    def _send(conn: AgentConnection, texts: list[str]) -> None:
        for text in texts:
            conn.enqueue(text)

    def _publish(self, publishes: Iterable[tuple[bytes, PresenceDelta]]) -> None:
        for topic, body in publishes:
            self.peer.publish(topic, body)

    @staticmethod
    def _close(closes: Iterable[Close]) -> None:
        for close in closes:
            close.client.close_soon(close.code, close.reason)

    # ---- lookups the core asks for -----------------------------------------------
    async def _pinned_names(self, need: PinnedNames) -> set[str]:
        return await self._blocking(self.store.pinned_names, need.workspace, list(need.names))

    async def _history_page(self, need: HistoryPage) -> tuple[list[str], bool]:
        return await self._blocking(
            lambda: self.store.history_page(
                need.workspace,
                need.channel,
                max_bytes=need.max_bytes,
                since=need.since,
                limit=need.limit,
                after_seq=need.after_seq,
                before_seq=need.before_seq,
                events=need.events,
            )
        )

    async def _subscriptions(self, need: Subscriptions) -> list[tuple[str, bool]]:
        return await self._blocking(self.store.subscriptions, need.workspace, need.agent)

    async def _search(self, need: Search) -> list[dict[str, Any]]:
        return await self._blocking(
            lambda: self.store.search(
                need.workspace,
                need.words,
                channels=None if need.channel is None else [need.channel],
                sender=need.sender,
                before=need.before,
                after=need.after,
                limit=need.limit,
            )
        )

    async def _gitea_grant(self, need: GiteaGrant) -> dict[str, Any] | None:
        auth = await self._blocking(self.store.authenticate, need.token, self._admin())
        return auth.gitea_access if auth is not None else None

    async def _gitea_call(self, need: GiteaCall) -> RpcReply:
        return await self.peer.request("gitea", need.body, GITEA_TIMEOUT_S)

    # ---- bus side ----------------------------------------------------------
    def _on_deliver(self, body: DeliveryBody) -> None:
        out, gaps = self.delivery.offer(body["items"])
        for conn, frames in out.items():
            conn.deliver(frames)
        for key in gaps:
            self.peer.spawn(self._fill_gap(key), "gap-fill")

    def _on_presence(self, changes: list[Change], delta: PresenceDelta | None) -> None:
        self._close(self.core.on_remote_presence(changes, delta))

    def _on_kick(self, body: Kick) -> None:
        """An operator kicked agents: close every local socket holding one of the names."""
        ws, names = body.get("ws"), set(body.get("names") or ())
        for conn in list(self.conns):
            session = conn.session
            if session.workspace == ws and session.name in names and not conn.closing:
                log.info("closing %s: kicked by an operator", conn)
                conn.close_soon(codec.CLOSE_KICKED, "Kicked by an operator")

    def _on_revoke(self, body: Revocation) -> None:
        self.revoke(set(body.get("tokens") or ()), set(body.get("workspaces") or ()))

    def _on_auth_changed(self, body: AuthChanged) -> None:
        changed = set(body.get("workspaces") or ())
        self.tokens.forget(where=lambda a: a.workspace_id in changed)

    @staticmethod
    def _deliver(out: dict[AgentConnection, list[Framed]]) -> None:
        for conn, frames in out.items():
            conn.deliver(frames)

    async def _fill_gap(self, key: Key) -> None:
        """Fetch missing seqs from the database, then release what waited behind them."""
        delivery = self.delivery
        try:
            for _attempt in range(GAP_FILL_RETRIES):
                fetch = delivery.gap_fetch(key)
                if fetch is None:
                    return
                encoded, _more = await self._blocking(
                    lambda f=fetch: self.store.history_page(
                        f.workspace,
                        f.channel,
                        after_seq=f.after_seq,
                        limit=f.limit,
                        max_bytes=GAP_FILL_MAX_BYTES,
                        events=True,
                    )
                )
                log.info(
                    "filling gap on %s/%s after seq %d: %d rows",
                    *key,
                    fetch.after_seq,
                    len(encoded),
                )
                self._deliver(delivery.fill(fetch, encoded))
                if delivery.gap_open(key):
                    await asyncio.sleep(GAP_FILL_RETRY_S)
            log.warning("gap on %s/%s could not be filled; skipping", *key)
            self._deliver(delivery.skip(key))
        except Exception:  # noqa: BLE001
            log.exception("gap fill on %s/%s failed", *key)
        finally:
            delivery.fill_done(key)

    # ---- revocation and reaping -----------------------------------------------
    def revoke(self, tokens: set[str], workspaces: set[str]) -> int:
        """Close every session that authenticated with one of `tokens` or belongs to one
        of `workspaces` (not the admin's), with 4001; their later frames store nothing."""
        self.tokens.forget(tokens, lambda a: a.workspace_id in workspaces)
        closes = self.core.revoke(list(self.conns), tokens, workspaces)
        self._close(closes)
        return len(closes)

    async def _revocation_sweep(self) -> None:
        """Tokens deleted by any means (REST, CLI, another gateway, the database) close
        their sessions within one sweep."""
        held = self.core.held_tokens(self.conns)
        if not held:
            return
        gone = held - await self._blocking(self.store.live_tokens, list(held))
        if gone:
            self.revoke(gone, set())

    def _reap_step(self) -> None:
        self._close(self.core.reap(list(self.conns)))

    def _liveness(self) -> None:
        """The liveness tick: everyone's protocol pings and ghost marks (probe.py), then
        dialect B's own ping and echo frames."""
        publishes, closes = self.probes.step(self.core.presence)
        self._publish(publishes)
        self._close(closes)
        self._fleet_liveness()

    def _fleet_liveness(self) -> None:
        """Dialect B's `ping {ts}` and `echo {nonce}`, each on its own interval per
        connection; their answers (`pong`, `echo_pong`) give the round trips."""
        if not self.fleet:
            return
        now, wall = time.monotonic(), time.time()
        ping_s, echo_s = self.cfg.ws.fleet_ping_interval_s, self.cfg.ws.fleet_echo_interval_s
        for conn in self.fleet:
            dialect = conn.dialect
            if conn.closing or not isinstance(dialect, DialectB):
                continue
            if now >= dialect.next_ping:
                dialect.next_ping = now + ping_s
                conn.enqueue(dialect.ping(wall))
            if now >= dialect.next_echo:
                dialect.next_echo = now + echo_s
                conn.enqueue(dialect.echo(wall))


def dialect_for(path: str) -> Dialect:
    """Dialect B for `/ws/agent/?agent=<name>` (FLEET.md §1), dialect A for the rest."""
    parts = urlsplit(path)
    if parts.path != B_PATH:
        return DIALECT_A
    agent = wants_b(parts.path, parse_qs(parts.query))
    return DialectB(agent) if agent else DIALECT_A


def _address(connection: ServerConnection) -> str:
    try:
        peer = connection.remote_address
    except Exception:  # noqa: BLE001 - a socket already gone has no address
        return ""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


# How the I/O layer makes each lookup the core can ask for (actions.py).
LOOKUPS: dict[type, Callable[[Gateway, Any], Awaitable[Any]]] = {
    PinnedNames: Gateway._pinned_names,
    HistoryPage: Gateway._history_page,
    GiteaGrant: Gateway._gitea_grant,
    GiteaCall: Gateway._gitea_call,
    Subscriptions: Gateway._subscriptions,
    Search: Gateway._search,
}
