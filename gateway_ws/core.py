"""The agent gateway's frame-handling core (pure): a parsed frame in, actions out.

No sockets, no asyncio, no clock of its own (`wall` and `mono` are injected),
and nothing of the dialect or transport that carried a frame: replies are
shaped by the client's `dialect` (dialect.py). `on_frame` admits a frame
(identity rules, rate limits) and runs its handler from `handlers.HANDLERS`. A
handler returns `Actions` (actions.py): replies, bus publishes, an ingest
submission, closes of other clients, a read pause. When it needs outside data
first (pinned names, a history page, the Gitea grant, a Gitea call) it returns
actions whose `need` names the lookup; the I/O layer makes it and calls
`resume` with everything `Found` so far, and the handler runs again from the
top with it. All of it is tested with literal inputs (tests/test_gateway_core.py).

Beyond frames the core decides what a disconnect publishes (`forget`), which
local session a newer registration elsewhere replaces (`on_remote_presence`),
which sessions a revocation or the reaper closes, what the ack of a stored
message looks like (`acked`) and what a presence snapshot holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import msgpack

from scitex_orochi.hub.bus_bodies import AckItem, AgentRecord, PresenceDelta
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.presence import Change, PresenceReplica
from scitex_orochi.hub.ratelimit import BucketMap
from scitex_orochi.protocol import codec, topics
from scitex_orochi.protocol.errors import ErrorCode

from .actions import Actions, Close, Found, PinnedNames
from .dialect import Dialect
from .handlers import HANDLERS
from .limits import ConnBuckets, Limits, read_pause
from .routing import Roster
from .session import Session, fleet_record

log = logging.getLogger("orochi.gateway_ws")

RETRY_AFTER_S = 5
# Frames the message rate limit counts: what the persister writes for the client.
WRITES = frozenset({"message", *codec.CHANGE_TYPES})


class Client(Protocol):
    """What the core reads and keeps of one connection (gateway_ws.connection.AgentConnection)."""

    session: Session
    dialect: Dialect
    auth: Any  # store.Auth: what the token granted
    token: str
    limits: ConnBuckets | None
    closing: bool
    opened: float  # monotonic seconds


def _packed_size(record: Mapping[str, object]) -> int:
    return len(msgpack.packb(record, use_bin_type=True))  # as the bus carries it (bus.pack)


class FrameCore:
    def __init__(
        self,
        cfg: Config,
        origin: str,
        replica: PresenceReplica,
        limits: Limits,
        roster: Roster[Any] | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.origin = origin
        self.replica = replica
        self.limits = limits
        # Any: the I/O layer's connection objects (each a Client); its own Roster types them.
        self.roster: Roster[Any] = roster if roster is not None else Roster()
        self.wall = wall
        self.mono = mono
        self.rate_limited = 0
        per_min = cfg.ws.broadcast_mentions_per_min
        self.broadcasts = BucketMap(per_min / 60.0, max(1, int(per_min)))

    # ---- admission -----------------------------------------------------------------
    def on_frame(self, client: Client, frame: codec.Envelope) -> Actions:
        """One parsed frame: identity rules, rate limits, then its handler."""
        now = self.mono()
        if client.limits is None:
            client.limits = self.limits.buckets(now)
        try:
            client.session.check(frame)
        except codec.ProtocolError as exc:
            return self.on_unreadable(client, exc)
        wait, which = self.limits.check(
            client.limits, client.session.workspace, frame.type in WRITES, now
        )
        if wait:
            self.rate_limited += 1
            actions = Actions()
            actions.sends.extend(
                client.dialect.refusal(
                    ErrorCode.RATE_LIMITED,
                    f"over the limit of {which}; retry in {wait:.2f}s",
                    frame.id,
                    retry_after_s=round(wait, 3),
                )
            )
            actions.pause_s = read_pause(wait)
            return actions
        client.session.seen(self.wall())
        return self._run(client, frame, Found())

    def on_unreadable(self, client: Client, exc: codec.ProtocolError) -> Actions:
        """A frame refused before its handler (it did not parse, or the session may not
        send it): the error, and a read pause once the frame bucket is empty."""
        now = self.mono()
        if client.limits is None:
            client.limits = self.limits.buckets(now)
        actions = Actions()
        actions.sends.extend(client.dialect.unreadable(exc))
        wait = client.limits.frames.take(now)
        actions.pause_s = read_pause(wait) if wait else 0.0
        return actions

    def resume(self, client: Client, frame: codec.Envelope, found: Found) -> Actions:
        """Run the frame's handler again with what its lookups found."""
        if client.closing:
            return Actions()  # a client on its way out gets nothing more
        return self._run(client, frame, found)

    def _run(self, client: Client, frame: codec.Envelope, found: Found) -> Actions:
        try:
            return HANDLERS[frame.type](self, client, frame, found)
        except codec.ProtocolError as exc:
            refusal = client.dialect.refusal(exc.code, exc.detail, frame.id, **exc.extra)
        except Exception:  # noqa: BLE001 - never let one frame take the gateway down
            log.exception("frame %s of %s failed", frame.type, client)
            refusal = client.dialect.refusal(
                ErrorCode.SERVER_ERROR, "internal error handling this frame", frame.id
            )
        actions = Actions()
        actions.sends.extend(refusal)
        return actions

    def may_broadcast(self, client: Client) -> bool:
        """Whether the sender may @all / @<channel> now (one token per broadcast)."""
        session = client.session
        key = f"{session.workspace}|{session.name}"
        return self.broadcasts.get(key, self.mono()).take(self.mono()) == 0.0

    # ---- what a session may hold -----------------------------------------------------
    def check_channels(self, count: int, ref: str) -> None:
        limit = self.cfg.presence.max_channels_per_agent
        if count > limit:
            raise codec.ProtocolError(
                ErrorCode.LIMIT_EXCEEDED,
                f"an agent may be in at most {limit} channels "
                "(SCITEX_OROCHI_MAX_CHANNELS_PER_AGENT)",
                ref,
            )

    def check_record(self, record: Mapping[str, object], ref: str) -> None:
        size = _packed_size(record)
        if size > self.cfg.presence.max_record_bytes:
            raise codec.ProtocolError(
                ErrorCode.LIMIT_EXCEEDED,
                f"the agent's presence record would be {size} bytes, "
                f"over {self.cfg.presence.max_record_bytes} "
                "(SCITEX_OROCHI_MAX_PRESENCE_RECORD_BYTES); send shorter fields or fewer "
                "channels",
                ref,
            )

    def check_identity(
        self, client: Client, name: str, ref: str, found: Found
    ) -> PinnedNames | None:
        """Pinned tokens: a token pinned to a name registers only that name, a pinned name is
        taken by its token only, and a workspace may require pinned tokens. Returns the
        lookup still needed, if any."""
        auth = client.auth
        if auth is None or auth.is_admin:
            return None
        if auth.agent_name is not None:
            if name != auth.agent_name:
                raise codec.ProtocolError(
                    ErrorCode.FORBIDDEN,
                    f"this token is pinned to the agent name {auth.agent_name!r}",
                    ref,
                )
            return None
        if auth.require_pinned:
            raise codec.ProtocolError(
                ErrorCode.FORBIDDEN,
                "this workspace requires a token pinned to the agent's name (ask an admin for one)",
                ref,
            )
        if not auth.has_pins:  # (a pin created since is announced: caches are dropped)
            return None
        if PinnedNames not in found:
            return PinnedNames(client.session.workspace, (name,))
        if name in found[PinnedNames]:
            raise codec.ProtocolError(
                ErrorCode.FORBIDDEN, f"the name {name!r} belongs to its pinned token", ref
            )
        return None

    # ---- sessions ------------------------------------------------------------------
    def presence(self, client: Client, event: str) -> tuple[bytes, PresenceDelta]:
        session = client.session
        return topics.presence(session.workspace), PresenceDelta(
            gw=self.origin, event=event, agent=session.presence_record()
        )

    def register(
        self,
        client: Client,
        frame: codec.Envelope,
        lasting: Iterable[tuple[str, bool]] = (),
    ) -> Actions:
        """Take the frame's identity: bind the name (replacing an older local holder), join
        the channels it lists and its lasting subscriptions (up to the channel limit),
        announce the agent; the ack waits until the announcement passed the broker, so
        the REST API lists the agent on the very next request."""
        actions, roster, session = Actions(), self.roster, client.session
        workspace, now = session.workspace, self.wall()
        exclusive = client.dialect.exclusive_names
        if not exclusive and self._duplicate(client, frame):
            # (closes come before sends: the close code and reason are the answer)
            actions.closes.append(Close(client, codec.CLOSE_DUPLICATE))
            return actions
        if session.name is not None and session.name != frame.sender:
            actions.publishes.extend(self.forget(client))
        left, _previous = session.register(frame, now)
        if not exclusive:
            fleet = fleet_record(session.record)
            fleet["shared"] = True
            if frame.payload.get("instance_id"):
                fleet["instance_id"] = frame.payload["instance_id"]
        room = self.cfg.presence.max_channels_per_agent - len(session.channels)
        for channel, mention_only in lasting:
            if channel not in session.channels and room > 0:
                session.subscribe(channel, mention_only)
                room -= 1
        roster.leave_all(workspace, left, client)
        replaced = None
        if exclusive:
            replaced = roster.bind(workspace, session.name or "", client)
        else:
            roster.bind_shared(workspace, session.name or "", client)
        for channel in session.channels:
            roster.join(workspace, channel, client, quiet=channel in session.mention_only)
        if replaced is not None:
            roster.leave_all(workspace, replaced.session.channels, replaced)
            replaced.session.name = None  # its close must not unbind the new holder
            actions.closes.append(Close(replaced, codec.CLOSE_REPLACED))
        self.replica.upsert(session.record, now)
        actions.publishes.append(self.presence(client, "connected"))
        actions.barrier = True
        return actions.send(
            client.dialect.registered(frame.id, list(session.channels), gateway=self.origin)
        )

    def _duplicate(self, client: Client, frame: codec.Envelope) -> bool:
        """Dialect B refuses a second live socket of one instance (`instance_id`, sent with
        `start_ts_unix`) of a name; without them any number of sockets share it."""
        instance = frame.payload.get("instance_id")
        if not instance:
            return False
        return any(
            other is not client
            and not other.closing
            and fleet_record(other.session.record).get("instance_id") == instance
            for other in self.roster.holders(client.session.workspace, frame.sender or "")
        )

    def forget(self, client: Client) -> list[tuple[bytes, PresenceDelta]]:
        """A session leaves (closed, or renamed): what to publish about it."""
        session = client.session
        if session.name is None:
            return []
        self.roster.leave_all(session.workspace, session.channels, client)
        if self.roster.by_name.get((session.workspace, session.name)) is not client:
            self.roster.unbind(session.workspace, session.name, client)  # a shared holder
            return []
        successor = self.roster.unbind(session.workspace, session.name, client)
        self.replica.remove(session.record)
        out = [
            (
                topics.presence(session.workspace),
                PresenceDelta(gw=self.origin, event="disconnected", agent=session.record),
            )
        ]
        if successor is not None:  # another socket of a dialect-B name holds it still
            self.replica.upsert(successor.session.record, self.wall())
            out.append(self.presence(successor, "connected"))
        return out

    def on_remote_presence(self, changes: list[Change], delta: PresenceDelta | None) -> list[Close]:
        """Another gateway's delta, applied to the replica: if it registered a name held here
        and its record won, the local holder is closed with 4000."""
        if delta is None or delta.get("event") != "connected":
            return []
        record = delta.get("agent") or {}
        local = self.roster.by_name.get((record.get("ws") or "", record.get("name") or ""))
        if local is None or local.closing:
            return []
        if not local.dialect.exclusive_names and fleet_record(record).get("shared"):
            return []  # dialect B: several sockets (on any gateway) hold one name
        if not any(c.event == "connected" and c.record is record for c in changes):
            return []
        log.info(
            "%s registered on %s: closing the older local connection",
            record.get("name"),
            record.get("gw"),
        )
        self.roster.unbind(local.session.workspace, local.session.name or "", local)
        self.roster.leave_all(local.session.workspace, local.session.channels, local)
        local.session.name = None
        return [Close(local, codec.CLOSE_REPLACED)]

    def acked(self, client: Client, body: AckItem, done: str | None = None) -> list[str]:
        """The frames that tell a client the persister stored (or refused) its message
        (`done`: the dialect's own reply to a stored subscription, for its plain ack)."""
        ref = body["id"]
        error = body.get("error")
        if error:
            code = error.get("code", ErrorCode.INVALID_MESSAGE)
            return client.dialect.refusal(code, str(error.get("detail", "")), ref)
        if "seq" not in body and "outcome" not in body:  # a subscription, now lasting
            text = done if done is not None else client.dialect.ack(ref)
            return [text] if text is not None else []
        extra: dict[str, Any] = {}
        if "outcome" in body:  # a change: what it did, and to which message
            extra = {"num": body.get("num"), "outcome": body["outcome"]}
        elif client.session.wants_events and "num" in body:
            extra = {"num": body["num"]}
        text = client.dialect.ack(ref, seq=body.get("seq"), channel=body.get("channel"), **extra)
        return [text] if text is not None else []

    def overloaded(self, client: Client, ref: str, detail: str) -> list[str]:
        """Ingest holds too much already: the message is refused, to be retried."""
        return client.dialect.refusal(
            ErrorCode.OVERLOADED, detail, ref, retry_after_s=RETRY_AFTER_S
        )

    def revoke(
        self, clients: Iterable[Client], tokens: set[str], workspaces: set[str]
    ) -> list[Close]:
        """Sessions of a revoked token or workspace (never the admin's) close with 4001."""
        closes = []
        for client in clients:
            if client.closing or client.session.is_admin:
                continue
            if client.token in tokens or client.session.workspace in workspaces:
                log.info("closing %s: its token was revoked", client)
                closes.append(Close(client, codec.CLOSE_AUTH_FAILED, "Token revoked"))
        return closes

    def held_tokens(self, clients: Iterable[Client]) -> set[str]:
        """The tokens the revocation sweep checks against the store."""
        return {c.token for c in clients if not c.session.is_admin and not c.closing}

    def reap(self, clients: Iterable[Client]) -> list[Close]:
        """Sessions that never registered in time (4003) or went silent (4002)."""
        wall = self.wall()
        cutoff = wall - self.cfg.presence.reap_after_s
        register_by = self.mono() - self.cfg.ws.register_timeout_s
        closes = []
        for client in clients:
            if client.closing:
                continue
            session = client.session
            if session.name is None and client.opened < register_by:
                log.info(
                    "closing %s: no register within %.0fs", client, self.cfg.ws.register_timeout_s
                )
                closes.append(Close(client, codec.CLOSE_REGISTER_TIMEOUT))
            elif session.last_seen < cutoff:
                log.info("reaping %s: silent for %.0fs", client, wall - session.last_seen)
                closes.append(Close(client, codec.CLOSE_REAPED))
        return closes

    def snapshot(self, clients: Iterable[Client]) -> list[AgentRecord]:
        """The records of the agents this gateway holds (its presence snapshot)."""
        by_name = self.roster.by_name
        return [
            c.session.record
            for c in clients
            if c.session.name is not None
            and not c.closing
            and by_name.get((c.session.workspace, c.session.name)) is c
        ]
