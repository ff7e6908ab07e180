"""Presence replica, local roster and channel sequencer: pure state machines."""

from __future__ import annotations

from gateway_ws.routing import ChannelSequencer, Roster
from scitex_orochi.hub.bus import pack, unpack
from scitex_orochi.hub.presence import PresenceReplica


def rec(name, gw="g1", conn="c1", since=1.0, ws="w", channels=("#a",)):
    return {
        "name": name,
        "ws": ws,
        "gw": gw,
        "conn": conn,
        "since": since,
        "channels": list(channels),
    }


def test_connect_update_disconnect():
    r = PresenceReplica(expiry_s=5)
    assert [c.event for c in r.upsert(rec("a"), 0)] == ["connected"]
    assert [c.event for c in r.upsert(rec("a", channels=("#b",)), 0)] == ["updated"]
    assert r.channel_map("w") == {"a": ["#b"]}
    assert [c.event for c in r.remove(rec("a"))] == ["disconnected"]
    assert r.channel_map("w") == {}


def test_disconnect_of_an_older_connection_keeps_the_newer():
    r = PresenceReplica(expiry_s=5)
    r.upsert(rec("a", gw="g1", conn="c1", since=1), 0)
    changes = r.upsert(rec("a", gw="g2", conn="c9", since=2), 0)
    assert [c.event for c in changes] == ["disconnected", "connected"]
    assert r.remove(rec("a", gw="g1", conn="c1")) == []
    assert r.get("w", "a")["gw"] == "g2"


def test_older_record_never_replaces_newer():
    r = PresenceReplica(expiry_s=5)
    r.upsert(rec("a", gw="g2", conn="c9", since=2), 0)
    assert r.upsert(rec("a", gw="g1", conn="c1", since=1), 0) == []
    assert r.get("w", "a")["conn"] == "c9"


def test_workspaces_are_separate():
    r = PresenceReplica(expiry_s=5)
    r.upsert(rec("a", ws="w1"), 0)
    r.upsert(rec("a", ws="w2", conn="c2"), 0)
    assert r.channel_map("w1") == {"a": ["#a"]} and len(r.records()) == 2


def test_snapshot_replaces_what_a_gateway_holds():
    r = PresenceReplica(expiry_s=5)
    r.upsert(rec("a", gw="g1", conn="c1"), 0)
    r.upsert(rec("b", gw="g1", conn="c2"), 0)
    changes = r.apply_snapshot("g1", [rec("b", gw="g1", conn="c2"), rec("c", conn="c3")], 1)
    assert sorted((c.event, c.record["name"]) for c in changes) == [
        ("connected", "c"),
        ("disconnected", "a"),
    ]


def test_silent_gateway_expires():
    r = PresenceReplica(expiry_s=5)
    r.apply_snapshot("g1", [rec("a")], now=0)
    r.apply_snapshot("me", [rec("m", gw="me", conn="x")], now=0)
    assert r.expire(now=4, keep="me") == []
    gone = r.expire(now=6, keep="me")
    assert [c.record["name"] for c in gone] == ["a"]
    assert r.channel_map("w") == {"m": ["#a"]}


class Conn:
    def __init__(self, name):
        self.name = name


def test_recipients_once_each_and_never_the_sender():
    roster: Roster[Conn] = Roster()
    a, b, c, d = Conn("a"), Conn("b"), Conn("c"), Conn("d")
    for conn in (a, b, c, d):
        roster.bind("w", conn.name, conn)
    roster.join("w", "#x", a)
    roster.join("w", "#x", b)
    got = roster.recipients("w", "#x", ["b", "c", "zed"], sender="a")
    assert sorted(x.name for x in got) == ["b", "c"]
    assert roster.recipients("other", "#x", ["b"], sender="a") == []


def test_bind_returns_the_replaced_connection():
    roster: Roster[Conn] = Roster()
    old, new = Conn("a"), Conn("a")
    assert roster.bind("w", "a", old) is None
    assert roster.bind("w", "a", new) is old
    roster.unbind("w", "a", old)  # the old one's cleanup must not unbind the new one
    assert roster.by_name[("w", "a")] is new


def test_sequencer_in_order_dedupes_and_reports_gaps():
    s = ChannelSequencer()
    assert s.offer(5, "m5") == ["m5"]
    assert s.offer(5, "again") == []
    assert s.offer(4, "old") == []
    assert s.offer(8, "m8") == [] and s.offer(7, "m7") == []
    assert s.gap() == (5, 7)
    assert s.fill([(6, "m6"), (7, "dup")]) == ["m6", "m7", "m8"]
    assert s.gap() is None and s.last == 8


def test_sequencer_skip_gap():
    s = ChannelSequencer()
    s.offer(1, "m1")
    s.offer(4, "m4")
    assert s.skip_gap() == ["m4"] and s.last == 4


def test_replica_shares_the_strings_agents_have_in_common():
    """Every snapshot decodes fresh copies of each key and value; the replica keeps one
    copy of the short ones, and the records are otherwise unchanged."""
    sent = [
        {
            "ws": "default",
            "name": f"agent{i}",
            "conn": f"gw-1:{i}",
            "gw": "gw-1",
            "since": 1.0,
            "channels": ["#general"],
            "machine": "build-host",
            "resources": {"cpu_count": 8, "load_avg_1m": 0.5},
            "current_task": "x" * 100,
        }
        for i in range(2)
    ]
    replica = PresenceReplica(expiry_s=6)
    replica.apply_snapshot("gw-1", unpack(pack(sent)), now=0.0)
    a, b = (replica.get("default", f"agent{i}") for i in range(2))
    assert [a, b] == sent
    key_a = next(k for k in a if k == "machine")
    key_b = next(k for k in b if k == "machine")
    assert key_a is key_b and a["machine"] is b["machine"]
    assert a["channels"][0] is b["channels"][0]
    assert a["current_task"] is not b["current_task"]  # long values are left alone
    delta = unpack(pack({"gw": "gw-1", "event": "connected", "agent": dict(sent[0])}))
    changes = replica.apply_delta(delta, now=1.0)
    assert changes and changes[0].record is delta["agent"]  # the stored record
