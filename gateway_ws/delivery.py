"""The agent gateway's delivery core (pure): `dlv.` batches in; sends and gap fetches out.

Each channel's deliveries pass a `ChannelSequencer` (routing.py), so every
recipient sees them in `seq` order and once; each released delivery goes to
the channel's local members and the local agents it mentions, never to its
sender (`Roster.recipients`). A delivery is framed once (`encode`, given by the
transport: the same bytes serve every recipient), and what one bus frame holds
for one recipient is grouped, so the I/O layer writes it in one socket write.

A gap (a seq missing while later ones wait) is reported once per channel; the
I/O layer fetches `gap_fetch(key)` from the database, feeds the rows to `fill`,
retries while `gap_open`, and gives up with `skip`; `fill_done` closes the
episode. No sockets, no asyncio, no store here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scitex_orochi.hub.bus_bodies import Delivery
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv

from .routing import ChannelSequencer, Roster

C = TypeVar("C")
Framed = tuple[bytes, bytes]  # (UTF-8 text, the same as a complete transport frame)
Key = tuple[str, str]  # (workspace, channel)
GAP_FETCH_MAX_ROWS = 1000


@dataclass(frozen=True, slots=True)
class GapFetch:
    """The stored rows to read for a gap: seqs after `after_seq`, below `upto`."""

    workspace: str
    channel: str
    after_seq: int
    upto: int

    @property
    def limit(self) -> int:
        return max(1, min(GAP_FETCH_MAX_ROWS, self.upto - self.after_seq - 1))


def _always(_conn: object) -> bool:
    return True


def event_delivery(fetch: GapFetch, row: dict[str, Any]) -> Delivery:
    """The delivery of a stored change event, as the persister published it live."""
    actor = row.get("reactor") or row.get("editor") or row.get("deleted_by") or ""
    return Delivery(
        ws=fetch.workspace,
        channel=fetch.channel,
        seq=row["seq"],
        id=row["id"],
        sender=actor,
        mentions=[],
        frame=conv.frame_from_event_row(row),
        num=row.get("num") or 0,
        event=row["event"],
    )


class DeliveryCore(Generic[C]):
    def __init__(
        self,
        roster: Roster[C],
        encode: Callable[[str], Framed],
        wants_events: Callable[[C], bool] = _always,
        dialect_of: Callable[[C], Any] | None = None,
    ) -> None:
        """`wants_events(conn)`: whether a connection takes change events (it registered
        with the `events` capability); others never see them. `dialect_of(conn)`: its
        dialect (dialect.py), asked only while `others` (connections not of the default
        dialect A) is above 0: then each delivery is encoded once per dialect present
        among its recipients (`dialect.delivery`), and A's frame stays the one given."""
        self.roster = roster
        self.encode = encode
        self.wants_events = wants_events
        self.dialect_of = dialect_of
        self.others = 0  # connections of another dialect than A (the I/O layer counts them)
        self.sequencers: dict[Key, ChannelSequencer[Delivery]] = {}
        self.filling: set[Key] = set()

    def offer(self, items: Iterable[Delivery]) -> tuple[dict[C, list[Framed]], list[Key]]:
        """One `dlv.` frame's items: what to send to whom, and channels with a new gap."""
        out: dict[C, list[Framed]] = {}
        gaps: list[Key] = []
        sequencers = self.sequencers
        for body in items:
            key = (body["ws"], body["channel"])
            sequencer = sequencers.get(key)
            if sequencer is None:
                sequencer = sequencers[key] = ChannelSequencer[Delivery]()
            for item in sequencer.offer(int(body["seq"]), body):
                self.route(item, out)
            if sequencer.gap() is not None and key not in self.filling:
                self.filling.add(key)
                gaps.append(key)
        return out, gaps

    def route(self, body: Delivery, out: dict[C, list[Framed]]) -> None:
        """Add one delivery to the sends of each of its local recipients."""
        recipients = self.roster.recipients(
            body["ws"], body["channel"], body.get("mentions") or (), body.get("sender", "")
        )
        if recipients and body.get("event"):
            wants = self.wants_events
            recipients = [conn for conn in recipients if wants(conn)]
        if recipients and self.others and self.dialect_of is not None:
            self._route_mixed(body, recipients, out)
        elif recipients:
            framed = self.encode(body["frame"])
            for conn in recipients:
                queued = out.get(conn)
                if queued is None:
                    out[conn] = [framed]
                else:
                    queued.append(framed)

    def _route_mixed(self, body: Delivery, recipients: list[C], out: dict[C, list[Framed]]) -> None:
        """`route` with recipients of several dialects: one encoding per dialect."""
        dialect_of = self.dialect_of
        assert dialect_of is not None
        encoded: dict[str, Framed | None] = {}
        for conn in recipients:
            dialect = dialect_of(conn)
            if dialect.name in encoded:
                framed = encoded[dialect.name]
            else:
                text = body["frame"] if dialect.name == "A" else dialect.delivery(body)
                framed = encoded[dialect.name] = None if text is None else self.encode(text)
            if framed is None:
                continue  # nothing of this delivery for that dialect
            queued = out.get(conn)
            if queued is None:
                out[conn] = [framed]
            else:
                queued.append(framed)

    # ---- gaps ----------------------------------------------------------------------
    def gap_open(self, key: Key) -> bool:
        sequencer = self.sequencers.get(key)
        return sequencer is not None and sequencer.gap() is not None

    def gap_fetch(self, key: Key) -> GapFetch | None:
        sequencer = self.sequencers.get(key)
        gap = sequencer.gap() if sequencer is not None else None
        if gap is None:
            return None
        return GapFetch(key[0], key[1], gap[0], gap[1])

    def fill(self, fetch: GapFetch, encoded_rows: Iterable[str]) -> dict[C, list[Framed]]:
        """Stored rows (JSON text, as `store.history_page` gives them) for a gap: what they
        and the deliveries that waited behind them send now."""
        items: list[tuple[int, Delivery]] = []
        for text in encoded_rows:
            row = json.loads(text)
            if row.get("event") and row["seq"] < fetch.upto:
                items.append((row["seq"], event_delivery(fetch, row)))
            elif row["seq"] < fetch.upto:
                items.append(
                    (
                        row["seq"],
                        Delivery(
                            ws=fetch.workspace,
                            channel=fetch.channel,
                            seq=row["seq"],
                            id=row["msg_id"],
                            sender=row["sender"],
                            mentions=row.get("mentions") or [],
                            frame=codec.frame_from_row(row),
                            num=row.get("num") or 0,
                        ),
                    )
                )
        sequencer = self.sequencers[(fetch.workspace, fetch.channel)]
        return self._route_all(sequencer.fill(items))

    def skip(self, key: Key) -> dict[C, list[Framed]]:
        """Give up on a gap that cannot be filled: send what waited behind it."""
        return self._route_all(self.sequencers[key].skip_gap())

    def fill_done(self, key: Key) -> None:
        self.filling.discard(key)

    def _route_all(self, released: list[Delivery]) -> dict[C, list[Framed]]:
        out: dict[C, list[Framed]] = {}
        for item in released:
            self.route(item, out)
        return out
