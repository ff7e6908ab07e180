"""The bus bodies: docs/internals.md names every TypedDict of hub/bus_bodies.py, and what
the pure publishers build has exactly the keys their TypedDicts declare."""

from __future__ import annotations

import inspect
import re
from typing import Any, is_typeddict

from gateway_ws.session import Session
from persister.rows import ack_body, build_message, error_ack, parse_inbound
from scitex_orochi.hub import bus_bodies
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.presence import PresenceReplica
from scitex_orochi.protocol import codec

from support.persister import inbound
from support.util import REPO


def _keys(td: Any) -> set[str]:
    return set(td.__required_keys__) | set(td.__optional_keys__)


def _fits(body: Any, td: Any) -> bool:
    """Every required key of `td`, and no key it does not declare."""
    return set(td.__required_keys__) <= set(body) <= _keys(td)


def test_internals_names_every_body_and_only_those():
    bodies = {name for name, obj in inspect.getmembers(bus_bodies) if is_typeddict(obj)}
    text = (REPO / "docs" / "internals.md").read_text()
    table = text[text.index("## Topics and bodies") : text.index("## Database")]
    named = set(re.findall(r"`?\b([A-Z][A-Za-z]+)\b", table)) & bodies
    # GoneRecord is the HTTP gateway's own (never on the bus); the rest are in the table.
    assert bodies - named == {"GoneRecord"}


class _Bus:
    origin = "gw-test"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    def publish_raw(self, topic: bytes, data: bytes) -> None:
        self.sent.append((topic, data))


def test_an_ingest_submission_is_an_inbound_body_the_persister_takes():
    from scitex_orochi.hub.bus import unpack

    bus = _Bus()
    ingest = Ingest(bus, 1.0)  # only publish_raw and origin are used
    envelope = codec.parse_frame(
        '{"type":"message","sender":"a","id":"m1","payload":{"channel":"#g","content":"hi @b"}}'
    ).to_dict()
    ingest.submit("default", envelope, "agent", lambda ack: None)
    ((_topic, data),) = bus.sent
    body = unpack(data)
    assert _fits(body, bus_bodies.InboundBody)
    assert parse_inbound(body).mentions == ["b"]


def test_the_persister_builds_deliveries_and_acks_of_their_declared_keys():
    msg = parse_inbound(inbound("gw-1", content="hi"))
    _params, delivery = build_message(msg, 3, 3)
    assert set(delivery) == _keys(bus_bodies.Delivery) - {"event"}
    acked = ack_body(msg, delivery, dup=False)
    refused = error_ack("m1", "invalid_message", "no", tk=1, workspace="default")
    assert set(acked) == _keys(bus_bodies.AckItem) - {"error", "outcome", "count"}
    assert set(refused) == set(bus_bodies.AckItem.__required_keys__) | {"error"}
    assert set(refused["error"]) == set(bus_bodies.ErrorBody.__required_keys__)


def test_a_registered_session_record_has_every_agent_record_key():
    session = Session("default", False, "c1", "gw-1", now=1.0)
    frame = codec.parse_frame(
        '{"type":"register","sender":"alice","id":"r1","payload":{"channels":["#g"]}}'
    )
    session.register(frame, 2.0)
    assert set(session.presence_record()) == _keys(bus_bodies.AgentRecord) - {"transient"}
    replica = PresenceReplica(expiry_s=6.0)
    delta = bus_bodies.PresenceDelta(gw="gw-1", event="connected", agent=session.presence_record())
    assert [c.event for c in replica.apply_delta(delta, 2.0)] == ["connected"]
