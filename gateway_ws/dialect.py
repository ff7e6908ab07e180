"""How a dialect reads frames and shapes replies: dialect A (PROTOCOL.md), the one served today.

The cores (`core.py`, `delivery.py`) never build a reply themselves: each
client carries its `dialect`, and the core asks it for the frame of an ack, an
error, a history page... A method returning None means the dialect sends
nothing for it.

The fleet dialect B (../shared/FLEET.md) plugs in as an adapter only
(gateway_ws/dialect_b.py, one instance per connection): `parse` reads B's flat
frames into the `codec.Envelope`s the core handles, its reply methods shape B's
flat frames, `ack` returns None, `exclusive_names = False` (the `Roster` keeps
several holders of a B name), `all_events = True`. The I/O layer
(`service.Gateway`) picks B for `/ws/agent/?agent=` (`service.dialect_for`) and
sends its `ping`/`echo` on a timer; `DeliveryCore` encodes each delivery once per
dialect found among its recipients (`delivery`), and only while B connections
exist, so A's path is the one it always was.
"""

from __future__ import annotations

from typing import Any, Protocol

from scitex_orochi.hub.bus_bodies import Delivery
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.errors import ErrorCode


class Dialect(Protocol):
    """What the cores ask of a connection's dialect (DialectA here, DialectB in dialect_b.py)."""

    name: str
    exclusive_names: bool  # a second socket registering a name replaces the first (4000)
    all_events: bool  # change events reach it without asking for the `events` capability

    def parse(self, raw: str | bytes) -> codec.Envelope: ...
    def ack(self, ref: str, **fields: Any) -> str | None: ...
    def error(self, code: str, detail: str, ref: str | None, **extra: Any) -> str | None: ...
    def refusal(self, code: str, detail: str, ref: str, **extra: Any) -> list[str]: ...
    def unreadable(self, exc: codec.ProtocolError) -> list[str]: ...
    def registered(self, ref: str, channels: list[str], **fields: Any) -> str | None: ...
    def subscribed(
        self, ref: str, action: str, channel: str, channels: list[str], mention_only: bool
    ) -> str | None: ...
    def history(
        self,
        channel: str,
        encoded_rows: list[str],
        ref: str,
        more: bool,
        search: str | None = None,
    ) -> str | None: ...
    def presence(self, agents: dict[str, list[str]]) -> str | None: ...
    def gitea_result(self, action: str, result: Any, ref: str) -> str | None: ...
    def refused_connection(self, code: str, detail: str) -> str: ...
    def delivery(self, body: Delivery) -> str | None: ...


class DialectA:
    """Envelopes `{type, sender, id, ts, payload}` both ways; every client frame is acked."""

    name = "A"
    exclusive_names = True  # a second socket registering a name replaces the first (4000)
    all_events = False  # events only with the `events` capability

    @staticmethod
    def parse(raw: str | bytes) -> codec.Envelope:
        return codec.parse_frame(raw)

    @staticmethod
    def ack(ref: str, **fields: Any) -> str | None:
        return codec.ack(ref, **fields)

    @staticmethod
    def error(code: str, detail: str, ref: str | None, **extra: Any) -> str | None:
        return codec.error(code, detail, ref, **extra)

    @staticmethod
    def registered(ref: str, channels: list[str], **fields: Any) -> str | None:
        """The reply to a register: A acks it (`gateway` names the process)."""
        return codec.ack(ref, **fields)

    @staticmethod
    def subscribed(
        ref: str, action: str, channel: str, channels: list[str], mention_only: bool
    ) -> str | None:
        """The reply to a subscribe/unsubscribe; None: the plain ack, when it is done."""
        return None

    @staticmethod
    def delivery(body: Delivery) -> str | None:
        """A delivery's text; A sends the frame the persister built (DeliveryCore.encode)."""
        return body["frame"]

    @staticmethod
    def refusal(code: str, detail: str, ref: str, **extra: Any) -> list[str]:
        """A frame that was read but not carried out: the error, then its error ack."""
        return [codec.error(code, detail, ref, **extra), codec.error_ack(ref, code)]

    @staticmethod
    def unreadable(exc: codec.ProtocolError) -> list[str]:
        """A frame refused before any handler ran (parse, type, identity rules)."""
        out = [codec.error(exc.code, exc.detail, exc.ref)]
        if exc.ref is not None:
            # Published servers ack an unknown type as read; a refused frame is not.
            out.append(
                codec.ack(exc.ref)
                if exc.code == ErrorCode.UNKNOWN_TYPE
                else codec.error_ack(exc.ref, exc.code)
            )
        return out

    @staticmethod
    def history(
        channel: str, encoded_rows: list[str], ref: str, more: bool, search: str | None = None
    ) -> str | None:
        return codec.history_reply_encoded(channel, encoded_rows, ref, more, search)

    @staticmethod
    def presence(agents: dict[str, list[str]]) -> str | None:
        return codec.presence_reply(agents)

    @staticmethod
    def gitea_result(action: str, result: Any, ref: str) -> str | None:
        return codec.server_frame("gitea_result", {"action": action, "result": result, "ref": ref})

    @staticmethod
    def refused_connection(code: str, detail: str) -> str:
        """The error sent before closing a connection that may not stay (auth, limits)."""
        return codec.server_frame("error", {"code": code, "detail": detail})


DIALECT_A = DialectA()
