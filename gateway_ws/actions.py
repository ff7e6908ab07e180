"""What the gateway's frame core asks of its I/O layer: actions to carry out, lookups to make.

Pure data. `Actions` is one step's output, carried out in this order: close
other clients, publish on the bus, submit the message to ingest, wait for the
bus barrier when asked, then send the replies to the client, then pause
reading. A step that cannot finish without outside data sets `need` to one of
the lookups below; the I/O layer makes it (`service.LOOKUPS`), records
the value or the exception in `Found`, and resumes the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from scitex_orochi.hub.bus_bodies import GiteaAsk, PresenceDelta


class Close(NamedTuple):
    client: Any
    code: int
    reason: str | None = None


@dataclass(slots=True)
class Submit:
    """A validated message for the persister, through the process's Ingest."""

    workspace: str
    envelope: dict[str, Any]
    ref: str
    sender_type: str = "agent"
    admin: bool = False  # a change by the admin token (it may edit or delete any message)
    mentions: list[str] | None = None  # instead of those of the content (broadcast limit)
    done: str | None = None  # sent instead of the plain ack once stored (B's `subscribed`)


class Actions:
    __slots__ = ("sends", "publishes", "submit", "closes", "need", "barrier", "pause_s")

    def __init__(self) -> None:
        self.sends: list[str] = []  # frames for the client whose frame this was, in order
        self.publishes: list[tuple[bytes, PresenceDelta]] = []
        self.submit: Submit | None = None
        self.closes: list[Close] = []
        self.need: Lookup | None = None
        self.barrier = False  # send only once the publishes have passed the broker
        self.pause_s = 0.0  # do not read this client's socket for this long (rate limits)

    def send(self, text: str | None) -> Actions:
        if text is not None:
            self.sends.append(text)
        return self

    def __repr__(self) -> str:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return "Actions(" + ", ".join(f"{k}={v!r}" for k, v in fields.items() if v) + ")"


def needing(lookup: Lookup) -> Actions:
    actions = Actions()
    actions.need = lookup
    return actions


# ---- lookups: the async work a frame may need --------------------------------------
class Lookup:
    """A lookup the I/O layer makes; `background` ones do not hold up the client's next
    frame (their result is sent when it comes)."""

    __slots__ = ()
    background = False


@dataclass(frozen=True, slots=True)
class PinnedNames(Lookup):
    """Which of `names` belong to a pinned token (the store): a set of names."""

    workspace: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HistoryPage(Lookup):
    """A page of a channel's history (store.history_page): (encoded rows, more)."""

    workspace: str
    channel: str
    max_bytes: int
    limit: int
    since: str | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    events: bool = False  # with after_seq: change events interleaved (events capability)


@dataclass(frozen=True, slots=True)
class Subscriptions(Lookup):
    """An agent's lasting subscriptions (store.subscriptions): [(channel, mention_only)]."""

    workspace: str
    agent: str


@dataclass(frozen=True, slots=True)
class Search(Lookup):
    """Full-text search (store.search): the matching rows, best first."""

    workspace: str
    words: str
    channel: str | None
    sender: str | None
    before: str | None
    after: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class GiteaGrant(Lookup):
    """The workspace's Gitea grant as the store has it now: a dict, or None."""

    token: str


@dataclass(frozen=True, slots=True)
class GiteaCall(Lookup):
    """A request to the Gitea worker over the bus: its reply body (TimeoutError if none)."""

    body: GiteaAsk
    background = True


class Found:
    """What was looked up for one frame so far: a value, or the exception its lookup raised
    (re-raised where the handler reads it, as if it had made the call itself)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[type, tuple[bool, Any]] = {}

    def __contains__(self, kind: type) -> bool:
        return kind in self._values

    def put(self, kind: type, value: Any) -> Found:
        self._values[kind] = (True, value)
        return self

    def fail(self, kind: type, exc: BaseException) -> Found:
        self._values[kind] = (False, exc)
        return self

    def __getitem__(self, kind: type) -> Any:
        ok, value = self._values[kind]
        if not ok:
            raise value
        return value
