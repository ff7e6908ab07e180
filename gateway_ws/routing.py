"""Local routing state of one gateway: who is here, in which channels, and delivery order.

Pure: `Roster` maps names and channel memberships to connection objects (any
hashable); `ChannelSequencer` turns the delivered stream of one channel into
in-order, duplicate-free releases and reports gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C")
T = TypeVar("T")


class Roster(Generic[C]):
    """`by_name` holds one connection per name (dialect A's rule, and the newest of a
    dialect-B name); `shared` the other holders of a B name, which get its traffic too."""

    def __init__(self) -> None:
        self.by_name: dict[tuple[str, str], C] = {}
        self.shared: dict[tuple[str, str], list[C]] = {}
        self.members: dict[tuple[str, str], set[C]] = {}
        # Mention-only members: reached by their name, or by @all / @<channel>.
        self.quiet: dict[tuple[str, str], set[C]] = {}

    def bind(self, workspace: str, name: str, conn: C) -> C | None:
        """Make `conn` the holder of `name`; returns the connection it replaces, if any."""
        previous = self.by_name.get((workspace, name))
        self.by_name[(workspace, name)] = conn
        return previous if previous is not conn else None

    def bind_shared(self, workspace: str, name: str, conn: C) -> None:
        """Add `conn` as a holder of `name` beside the others (dialect B): it becomes the
        one `by_name` names, the previous one stays a holder."""
        key = (workspace, name)
        previous = self.by_name.get(key)
        self.by_name[key] = conn
        if previous is not None and previous is not conn:
            held = self.shared.setdefault(key, [])
            if previous not in held:
                held.append(previous)
        others = self.shared.get(key)
        if others is not None and conn in others:
            others.remove(conn)
            if not others:
                del self.shared[key]

    def unbind(self, workspace: str, name: str, conn: C) -> C | None:
        """`conn` no longer holds `name`; returns the holder that now does, when another
        holder of a shared name takes its place."""
        key = (workspace, name)
        others = self.shared.get(key)
        if self.by_name.get(key) is conn:
            del self.by_name[key]
            if others:
                successor = self.by_name[key] = others.pop()
                if not others:
                    del self.shared[key]
                return successor
        elif others and conn in others:
            others.remove(conn)
            if not others:
                del self.shared[key]
        return None

    def holders(self, workspace: str, name: str) -> list[C]:
        """Every connection holding `name` (one, except for a shared dialect-B name)."""
        key = (workspace, name)
        first = self.by_name.get(key)
        if first is None:
            return []
        others = self.shared.get(key)
        return [first, *others] if others else [first]

    def join(self, workspace: str, channel: str, conn: C, quiet: bool = False) -> None:
        """Join a channel (`quiet`: for mentions only); leaves the other kind."""
        into, other = (self.quiet, self.members) if quiet else (self.members, self.quiet)
        self._drop(other, (workspace, channel), conn)
        into.setdefault((workspace, channel), set()).add(conn)

    def leave(self, workspace: str, channel: str, conn: C) -> None:
        self._drop(self.members, (workspace, channel), conn)
        self._drop(self.quiet, (workspace, channel), conn)

    @staticmethod
    def _drop(table: dict[tuple[str, str], set[C]], key: tuple[str, str], conn: C) -> None:
        members = table.get(key)
        if members is not None:
            members.discard(conn)
            if not members:
                del table[key]

    def leave_all(self, workspace: str, channels: Iterable[str], conn: C) -> None:
        for channel in list(channels):
            self.leave(workspace, channel, conn)

    def recipients(
        self, workspace: str, channel: str, mentions: Iterable[str], sender: str
    ) -> list[C]:
        """Channel members plus mentioned local agents, each once, never the sender. A DM
        (`dm:agent:a|agent:b`) goes to its agent participants only, subscribed or not."""
        if channel.startswith("dm:"):
            return self._dm_recipients(workspace, channel, sender)
        out: dict[int, C] = {}
        for conn in self.members.get((workspace, channel), ()):
            out[id(conn)] = conn
        shared = self.shared
        for name in mentions:
            named = self.by_name.get((workspace, name))
            if named is not None:
                out[id(named)] = named
                if shared:
                    for conn in shared.get((workspace, name), ()):
                        out[id(conn)] = conn
            elif (name == "all" or name == channel.lstrip("#")) and (workspace, channel) in (
                self.quiet
            ):
                for conn in self.quiet[(workspace, channel)]:
                    out[id(conn)] = conn
        sender_conn = self.by_name.get((workspace, sender))
        if sender_conn is not None:
            out.pop(id(sender_conn), None)
            if shared:
                for conn in shared.get((workspace, sender), ()):
                    out.pop(id(conn), None)
        return list(out.values())

    def _dm_recipients(self, workspace: str, channel: str, sender: str) -> list[C]:
        out: list[C] = []
        for key in channel[3:].split("|"):
            kind, _, name = key.partition(":")
            if kind == "agent" and name != sender:
                conn = self.by_name.get((workspace, name))
                if conn is not None:
                    out.append(conn)
                    out.extend(self.shared.get((workspace, name), ()))
        return out


@dataclass
class ChannelSequencer(Generic[T]):
    """In-order release of one channel's deliveries by `seq`.

    `offer` returns the items now releasable; while a gap is open, later items
    wait in `held`, and `gap()` says which seqs to fetch from the database.
    """

    last: int | None = None
    held: dict[int, T] = field(default_factory=dict)

    def offer(self, seq: int, item: T) -> list[T]:
        if self.last is None:
            self.last = seq - 1
        if seq <= self.last or seq in self.held:
            return []  # duplicate
        self.held[seq] = item
        return self._release()

    def _release(self) -> list[T]:
        out: list[T] = []
        while self.last is not None and (self.last + 1) in self.held:
            self.last += 1
            out.append(self.held.pop(self.last))
        return out

    def gap(self) -> tuple[int, int] | None:
        """(after_seq, first_held) when items wait behind missing seqs."""
        if not self.held or self.last is None:
            return None
        return self.last, min(self.held)

    def fill(self, rows: Iterable[tuple[int, T]]) -> list[T]:
        """Feed fetched (seq, item) pairs for the gap, then release what is in order."""
        for seq, item in rows:
            if self.last is not None and seq > self.last and seq not in self.held:
                self.held[seq] = item
        return self._release()

    def skip_gap(self) -> list[T]:
        """Give up on a gap that cannot be filled: jump to the first held item."""
        if self.held:
            self.last = min(self.held) - 1
        return self._release()
