"""The agent gateway's pure cores with literal inputs: frames in, actions out; deliveries in,
sends and gap fetches out. No sockets, no threads, no sleeps: the clock is injected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from gateway_ws.actions import (
    Actions,
    Found,
    GiteaCall,
    GiteaGrant,
    HistoryPage,
    PinnedNames,
    Subscriptions,
)
from gateway_ws.core import FrameCore
from gateway_ws.delivery import DeliveryCore, GapFetch
from gateway_ws.dialect import DIALECT_A
from gateway_ws.limits import MIN_READ_PAUSE_S, Limits
from gateway_ws.routing import Roster
from gateway_ws.session import Session
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.presence import PresenceReplica
from scitex_orochi.hub.store import Auth
from scitex_orochi.protocol import codec, topics

GW = "gw-test"


class Clock:
    def __init__(self) -> None:
        self.wall = 1000.0
        self.mono = 50.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass(eq=False)  # hashed by identity, as connections are
class FakeClient:
    session: Session
    auth: Any = None
    token: str = "wks_t"
    limits: Any = None
    closing: bool = False
    opened: float = 50.0
    dialect: Any = DIALECT_A


def make_core(**overrides: Any) -> tuple[FrameCore, Clock]:
    """A core on the default settings with `overrides` ({"ws": {"msg_burst": 2}}, ...)."""
    cfg = Config.load({}, overrides)
    clock = Clock()
    core = FrameCore(
        cfg,
        GW,
        PresenceReplica(expiry_s=6.0),
        Limits(cfg),
        Roster(),
        wall=lambda: clock.wall,
        mono=lambda: clock.mono,
    )
    return core, clock


def client(ws: str = "w", auth: Any = None, conn: str = "gw-test:1", **kw: Any) -> FakeClient:
    auth = auth or Auth(ws, False)
    return FakeClient(Session(ws, auth.is_admin, conn, GW, 1000.0), auth=auth, **kw)


def frame(obj: dict[str, Any]) -> codec.Envelope:
    return codec.parse_frame(json.dumps(obj))


def register_frame(
    name: str = "alice", channels: tuple[str, ...] = ("#x",), **payload: Any
) -> codec.Envelope:
    return frame(
        {
            "type": "register",
            "sender": name,
            "id": f"reg-{name}",
            "payload": {"channels": list(channels), **payload},
        }
    )


def sent(actions: Any) -> list[dict[str, Any]]:
    return [json.loads(text) for text in actions.sends]


def kinds(actions: Any) -> list[tuple[str, str | None]]:
    """(type, code or status) of each frame sent to the client."""
    out = []
    for f in sent(actions):
        p = f["payload"]
        out.append((f["type"], p.get("code") or p.get("status")))
    return out


def on_register(
    core: FrameCore, c: Any, f: codec.Envelope, lasting: list[tuple[str, bool]] | None = None
) -> Actions:
    """A register frame, its lasting-subscriptions lookup answered with `lasting`."""
    actions = core.on_frame(c, f)
    if actions.need == Subscriptions(c.session.workspace, f.sender):
        actions = core.resume(c, f, Found().put(Subscriptions, lasting or []))
    return actions


def registered(
    core: FrameCore, name: str = "alice", channels: tuple[str, ...] = ("#x",), **kw: Any
) -> FakeClient:
    c = client(conn=f"gw-test:{name}", **kw)
    actions = on_register(core, c, register_frame(name, channels))
    assert kinds(actions) == [("ack", "ok")], actions
    return c


# ---- register ------------------------------------------------------------------------
def test_register_binds_joins_announces_and_acks_after_the_barrier():
    core, _ = make_core()
    c = client()
    actions = on_register(core, c, register_frame("alice", ("#x", "#y")))
    [ack] = sent(actions)
    assert ack["payload"] == {"status": "ok", "ref": "reg-alice", "gateway": GW}
    assert actions.barrier and not actions.closes and actions.submit is None
    [(topic, body)] = actions.publishes
    assert topic == topics.presence("w") and body["event"] == "connected"
    assert body["gw"] == GW and body["agent"]["name"] == "alice"
    assert body["agent"]["channels"] == ["#x", "#y"]
    assert core.roster.by_name[("w", "alice")] is c
    assert core.roster.members[("w", "#y")] == {c}
    assert core.replica.channel_map("w") == {"alice": ["#x", "#y"]}


def test_a_second_register_of_the_name_replaces_the_older_local_socket():
    core, _ = make_core()
    old = registered(core, "alice")
    new = client(conn="gw-test:new")
    actions = on_register(core, new, register_frame("alice"))
    [close] = actions.closes
    assert close.client is old and close.code == codec.CLOSE_REPLACED
    assert old.session.name is None  # its close must not unbind the new holder
    assert core.roster.members[("w", "#x")] == {new}
    assert core.forget(old) == []  # the replaced socket closing announces nothing


def test_renaming_forgets_the_old_name_first():
    core, _ = make_core()
    c = registered(core, "alice")
    actions = on_register(core, c, register_frame("bob"))
    assert [body["event"] for _t, body in actions.publishes] == ["disconnected", "connected"]
    assert ("w", "alice") not in core.roster.by_name
    assert core.replica.channel_map("w") == {"bob": ["#x"]}


def test_register_limits():
    core, _ = make_core(presence={"max_channels_per_agent": 2, "max_record_bytes": 1024})
    actions = on_register(core, client(), register_frame("alice", ("#a", "#b", "#c")))
    assert kinds(actions) == [("error", "LIMIT_EXCEEDED"), ("ack", "LIMIT_EXCEEDED")]
    assert not actions.publishes and not core.roster.by_name
    big = register_frame("alice", ("#a",), role="r" * 600, model="m" * 600)
    actions = core.on_frame(client(), big)
    assert kinds(actions) == [("error", "LIMIT_EXCEEDED"), ("ack", "LIMIT_EXCEEDED")]
    assert "presence record" in sent(actions)[0]["payload"]["detail"]


def test_identity_refusals():
    core, _ = make_core()
    pinned = client(auth=Auth("w", False, agent_name="bob"))
    actions = on_register(core, pinned, register_frame("alice"))
    assert kinds(actions) == [("error", "FORBIDDEN"), ("ack", "FORBIDDEN")]
    assert "pinned to the agent name 'bob'" in sent(actions)[0]["payload"]["detail"]
    assert kinds(on_register(core, pinned, register_frame("bob"))) == [("ack", "ok")]

    strict = client(auth=Auth("w", False, require_pinned=True))
    assert kinds(on_register(core, strict, register_frame("carol"))) == [
        ("error", "FORBIDDEN"),
        ("ack", "FORBIDDEN"),
    ]

    admin = client(auth=Auth("w", True, has_pins=True))
    actions = on_register(core, admin, register_frame("anyone"))
    assert actions.need is None and kinds(actions) == [("ack", "ok")]


def test_a_workspace_with_pins_looks_the_name_up_first():
    core, _ = make_core()
    c = client(auth=Auth("w", False, has_pins=True))
    f = register_frame("alice")
    actions = core.on_frame(c, f)
    assert actions.need == PinnedNames("w", ("alice",)) and not actions.sends
    assert not actions.publishes and not core.roster.by_name  # nothing happened yet
    refused = core.resume(c, f, Found().put(PinnedNames, {"alice"}))
    assert kinds(refused) == [("error", "FORBIDDEN"), ("ack", "FORBIDDEN")]
    taken = core.resume(c, f, Found().put(PinnedNames, set()))
    assert taken.need == Subscriptions("w", "alice")  # then its lasting subscriptions
    taken = core.resume(c, f, Found().put(PinnedNames, set()).put(Subscriptions, []))
    assert kinds(taken) == [("ack", "ok")] and core.roster.by_name[("w", "alice")] is c


def test_register_gives_back_lasting_subscriptions_within_the_channel_limit():
    core, _ = make_core()
    c = client()
    f = register_frame("alice", ("#x",))
    lasting = [("#x", False), ("#ops", False), ("#noisy", True)]
    assert kinds(on_register(core, c, f, lasting)) == [("ack", "ok")]
    assert c.session.channels == ["#x", "#ops", "#noisy"]
    assert core.roster.members[("w", "#ops")] == {c}
    assert ("w", "#noisy") not in core.roster.members  # mention-only: reached by name
    store_down = client(conn="gw-test:bob")
    f = register_frame("bob", ("#x",))
    assert core.on_frame(store_down, f).need == Subscriptions("w", "bob")
    got = core.resume(store_down, f, Found().fail(Subscriptions, RuntimeError("db down")))
    assert kinds(got) == [("ack", "ok")] and store_down.session.channels == ["#x"]


def test_a_failed_lookup_is_a_server_error_and_a_closed_client_gets_nothing():
    core, _ = make_core()
    c = client(auth=Auth("w", False, has_pins=True))
    f = register_frame("alice")
    failed = core.resume(c, f, Found().fail(PinnedNames, RuntimeError("database is gone")))
    assert kinds(failed) == [("error", "SERVER_ERROR"), ("ack", "SERVER_ERROR")]
    c.closing = True
    nothing = core.resume(c, f, Found().put(PinnedNames, set()).put(Subscriptions, []))
    assert not nothing.sends and not nothing.publishes and not core.roster.by_name


# ---- frames that need an identity, and unreadable ones -----------------------------------
def test_frames_before_register_and_under_another_name_are_refused():
    core, _ = make_core()
    c = client()
    actions = core.on_frame(
        c, frame({"type": "message", "id": "m1", "payload": {"channel": "#x", "content": "hi"}})
    )
    assert kinds(actions) == [("error", "NOT_REGISTERED"), ("ack", "NOT_REGISTERED")]
    assert actions.submit is None
    on_register(core, c, register_frame("alice"))
    actions = core.on_frame(
        c,
        frame(
            {
                "type": "message",
                "id": "m2",
                "sender": "mallory",
                "payload": {"channel": "#x", "content": "hi"},
            }
        ),
    )
    assert kinds(actions) == [("error", "SENDER_MISMATCH"), ("ack", "SENDER_MISMATCH")]


def test_unreadable_frames():
    core, _ = make_core()
    c = client()
    with pytest.raises(codec.ProtocolError) as bad_json:
        codec.parse_frame("{nope")
    assert kinds(core.on_unreadable(c, bad_json.value)) == [("error", "PARSE_ERROR")]
    with pytest.raises(codec.ProtocolError) as unknown:
        codec.parse_frame(json.dumps({"type": "dance", "id": "d1"}))
    # Published servers ack an unknown type as read.
    assert kinds(core.on_unreadable(c, unknown.value)) == [("error", "UNKNOWN_TYPE"), ("ack", "ok")]


# ---- messages ------------------------------------------------------------------------
def test_a_message_is_submitted_bound_to_the_sender_and_acked_when_stored():
    core, _ = make_core()
    c = registered(core, "alice")
    actions = core.on_frame(
        c,
        frame({"type": "message", "id": "m1", "payload": {"channel": "#x", "content": "hi @bob"}}),
    )
    assert not actions.sends and not actions.publishes  # the ack waits for the persister
    submit = actions.submit
    assert submit.workspace == "w" and submit.ref == "m1" and submit.sender_type == "agent"
    assert submit.envelope["sender"] == "alice" and submit.envelope["type"] == "message"
    assert submit.envelope["payload"]["content"] == "hi @bob"

    [ack] = [
        json.loads(t)
        for t in core.acked(
            c, {"tk": 1, "id": "m1", "ws": "w", "channel": "#x", "seq": 7, "dup": False}
        )
    ]
    assert ack["type"] == "ack" and ack["payload"] == {
        "status": "ok",
        "ref": "m1",
        "seq": 7,
        "channel": "#x",
    }
    refused = [
        json.loads(t)
        for t in core.acked(
            c,
            {
                "tk": 2,
                "id": "m2",
                "ws": "w",
                "error": {"code": "INVALID_MESSAGE", "detail": "too long"},
            },
        )
    ]
    assert [(f["type"], f["payload"].get("code")) for f in refused] == [
        ("error", "INVALID_MESSAGE"),
        ("ack", "INVALID_MESSAGE"),
    ]
    assert refused[0]["payload"]["ref"] == "m2" and refused[0]["payload"]["detail"] == "too long"
    overloaded = [json.loads(t) for t in core.overloaded(c, "m3", "too much waiting")]
    assert overloaded[0]["payload"]["code"] == "OVERLOADED"
    assert overloaded[0]["payload"]["retry_after_s"] == 5


# ---- subscribe, unsubscribe, heartbeat, status ---------------------------------------------
def test_subscribe_and_unsubscribe():
    """A subscription that changes something is written to last; its ack follows the
    persister's (FrameCore.acked); one that changes nothing is acked at once."""
    core, _ = make_core(presence={"max_channels_per_agent": 2})
    c = registered(core, "alice", ("#x",))
    actions = core.on_frame(
        c, frame({"type": "subscribe", "id": "s1", "payload": {"channel": "#y"}})
    )
    assert kinds(actions) == [] and actions.submit is not None
    assert actions.submit.ref == "s1" and actions.submit.envelope["type"] == "subscription"
    assert actions.submit.envelope["payload"] == {
        "channel": "#y",
        "action": "join",
        "mention_only": False,
    }
    assert json.loads(core.acked(c, {"tk": 1, "id": "s1", "ws": "w"})[0])["type"] == "ack"
    [(_topic, body)] = actions.publishes
    assert body["event"] == "channels" and body["agent"]["channels"] == ["#x", "#y"]
    assert c in core.roster.members[("w", "#y")]
    again = core.on_frame(c, frame({"type": "subscribe", "id": "s2", "payload": {"channel": "#y"}}))
    assert kinds(again) == [("ack", "ok")] and not again.publishes and again.submit is None
    quiet = core.on_frame(
        c,
        frame(
            {"type": "subscribe", "id": "s4", "payload": {"channel": "#y", "mention_only": True}}
        ),
    )
    assert quiet.submit is not None and quiet.submit.envelope["payload"]["mention_only"] is True
    assert ("w", "#y") not in core.roster.members  # mentions reach it by name
    over = core.on_frame(c, frame({"type": "subscribe", "id": "s3", "payload": {"channel": "#z"}}))
    assert kinds(over) == [("error", "LIMIT_EXCEEDED"), ("ack", "LIMIT_EXCEEDED")]
    out = core.on_frame(c, frame({"type": "unsubscribe", "id": "u1", "payload": {"channel": "#y"}}))
    assert out.submit is not None and out.submit.envelope["payload"]["action"] == "leave"
    assert ("w", "#y") not in core.roster.members
    assert out.publishes[0][1]["agent"]["channels"] == ["#x"]
    not_in = core.on_frame(
        c, frame({"type": "unsubscribe", "id": "u2", "payload": {"channel": "#q"}})
    )
    assert not not_in.publishes and not_in.submit is not None  # a stale lasting one goes


def test_heartbeat_and_status_update_publish_the_record():
    core, clock = make_core()
    c = registered(core, "alice")
    clock.advance(3)
    beat = core.on_frame(
        c, frame({"type": "heartbeat", "id": "h1", "payload": {"orochi_current_task": "tests"}})
    )
    [(_t, body)] = beat.publishes
    assert body["event"] == "heartbeat" and body["agent"]["current_task"] == "tests"
    assert body["agent"]["last_seen"] == clock.wall
    status = core.on_frame(
        c, frame({"type": "status_update", "id": "st1", "payload": {"status": "busy"}})
    )
    assert kinds(status) == [("ack", "ok")]
    assert status.publishes[0][1]["event"] == "status"
    assert status.publishes[0][1]["agent"]["status"] == "busy"


# ---- query and presence -----------------------------------------------------------------
def test_query_asks_for_a_page_and_replies_with_it():
    core, _ = make_core(ws={"max_reply_bytes": 65536})
    c = registered(core, "alice")
    f = frame(
        {"type": "query", "id": "q1", "payload": {"channel": "#x", "limit": 20, "after_seq": 4}}
    )
    actions = core.on_frame(c, f)
    assert actions.need == HistoryPage("w", "#x", max_bytes=65536, limit=20, after_seq=4)
    rows = ['{"seq":5,"content":"a"}', '{"seq":6,"content":"b"}']
    reply = core.resume(c, f, Found().put(HistoryPage, (rows, True)))
    history, ack = sent(reply)
    assert history["payload"]["history"] == [{"seq": 5, "content": "a"}, {"seq": 6, "content": "b"}]
    assert history["payload"]["more"] is True and history["payload"]["ref"] == "q1"
    assert ack["payload"] == {"status": "ok", "ref": "q1"}
    bad = core.resume(c, f, Found().fail(HistoryPage, ValueError("since is not a date")))
    assert kinds(bad) == [("error", "INVALID_FIELD"), ("ack", "INVALID_FIELD")]


def test_presence_answers_from_the_replica():
    core, _ = make_core()
    c = registered(core, "alice", ("#x",))
    core.replica.apply_delta(
        {
            "gw": "gw-other",
            "event": "connected",
            "agent": {
                "name": "bob",
                "ws": "w",
                "gw": "gw-other",
                "conn": "o:1",
                "since": 1.0,
                "channels": ["#y"],
            },
        },
        1000.0,
    )
    core.replica.apply_delta(
        {
            "gw": "gw-other",
            "event": "connected",
            "agent": {
                "name": "eve",
                "ws": "elsewhere",
                "gw": "gw-other",
                "conn": "o:2",
                "since": 1.0,
                "channels": ["#y"],
            },
        },
        1000.0,
    )
    reply, ack = sent(core.on_frame(c, frame({"type": "presence", "id": "p1"})))
    assert reply["type"] == "presence"
    assert reply["payload"]["agents"] == {"alice": ["#x"], "bob": ["#y"]}
    assert ack["payload"]["ref"] == "p1"


def test_a_newer_registration_elsewhere_closes_the_local_holder():
    core, _ = make_core()
    local = registered(core, "alice")
    delta = {
        "gw": "gw-other",
        "event": "connected",
        "agent": {
            "name": "alice",
            "ws": "w",
            "gw": "gw-other",
            "conn": "o:1",
            "since": 2000.0,
            "channels": ["#x"],
        },
    }
    changes = core.replica.apply_delta(delta, 2000.0)
    [close] = core.on_remote_presence(changes, delta)
    assert close.client is local and close.code == codec.CLOSE_REPLACED
    assert ("w", "alice") not in core.roster.by_name and local.session.name is None


# ---- rate limits -------------------------------------------------------------------------
def message(i: int) -> codec.Envelope:
    return frame({"type": "message", "id": f"m{i}", "payload": {"channel": "#x", "content": "x"}})


def test_messages_over_the_connection_rate_are_refused_and_reading_pauses():
    core, clock = make_core(ws={"msg_rate_per_s": 1.0, "msg_burst": 2})
    c = registered(core, "alice")
    assert core.on_frame(c, message(1)).submit is not None
    assert core.on_frame(c, message(2)).submit is not None
    refused = core.on_frame(c, message(3))
    assert refused.submit is None and core.rate_limited == 1
    error, ack = sent(refused)
    assert error["payload"]["code"] == "RATE_LIMITED" and error["payload"]["ref"] == "m3"
    assert 0 < error["payload"]["retry_after_s"] <= 1.0
    assert "messages per connection" in error["payload"]["detail"]
    assert ack["payload"] == {"status": "error", "ref": "m3", "code": "RATE_LIMITED"}
    assert MIN_READ_PAUSE_S <= refused.pause_s <= 1.0
    clock.advance(1.0)
    assert core.on_frame(c, message(4)).submit is not None


def test_the_workspace_rate_is_shared_by_its_connections():
    core, _ = make_core(ws={"workspace_msg_rate_per_s": 1.0, "workspace_msg_burst": 3})
    a, b = registered(core, "alice"), registered(core, "bob")
    results = [core.on_frame(who, message(i)) for i, who in enumerate((a, b, a, b))]
    assert [r.submit is not None for r in results] == [True, True, True, False]
    assert "messages per workspace" in sent(results[-1])[0]["payload"]["detail"]


def test_other_frames_and_unreadable_ones_draw_on_the_frame_bucket():
    core, clock = make_core(ws={"frame_rate_per_s": 1.0, "frame_burst": 2})
    c = client()
    with pytest.raises(codec.ProtocolError) as bad:
        codec.parse_frame("{nope")
    assert core.on_unreadable(c, bad.value).pause_s == 0.0
    assert on_register(core, c, register_frame("alice")).pause_s == 0.0
    refused = core.on_frame(c, frame({"type": "presence", "id": "p1"}))
    assert kinds(refused) == [("error", "RATE_LIMITED"), ("ack", "RATE_LIMITED")]
    assert refused.pause_s >= MIN_READ_PAUSE_S
    assert core.on_unreadable(c, bad.value).pause_s >= MIN_READ_PAUSE_S
    clock.advance(2.0)
    assert kinds(core.on_frame(c, frame({"type": "presence", "id": "p2"})))[-1] == ("ack", "ok")


# ---- revocation and reaping ---------------------------------------------------------------
def test_revoke_and_reap():
    core, clock = make_core(presence={"reap_after_s": 300.0}, ws={"register_timeout_s": 30.0})
    alice = registered(core, "alice", token="wks_a")
    bob = registered(core, "bob", token="wks_b")
    admin = registered(core, "root", auth=Auth("w", True), token="adm")
    silent = client(conn="gw-test:silent", opened=clock.mono)
    clients = [alice, bob, admin, silent]
    assert core.held_tokens(clients) == {"wks_a", "wks_b", "wks_t"}
    assert [c.client for c in core.revoke(clients, {"wks_a", "adm"}, set())] == [alice]
    assert {c.client.session.name for c in core.revoke(clients, set(), {"w"})} == {
        "alice",
        "bob",
        None,
    }
    clock.advance(31)
    [late] = core.reap(clients)
    assert late.client is silent and late.code == codec.CLOSE_REGISTER_TIMEOUT
    core.on_frame(bob, frame({"type": "heartbeat", "id": "h"}))
    clock.advance(300)
    reaped = {c.client.session.name: c.code for c in core.reap(clients)}
    assert reaped == {
        "alice": codec.CLOSE_REAPED,
        "root": codec.CLOSE_REAPED,
        None: codec.CLOSE_REGISTER_TIMEOUT,
    }
    assert [r["name"] for r in core.snapshot(clients)] == ["alice", "bob", "root"]


# ---- gitea -------------------------------------------------------------------------------
def gitea_frame() -> codec.Envelope:
    return frame(
        {
            "type": "gitea",
            "id": "g1",
            "payload": {"action": "list_issues", "params": {"owner": "lab", "repo": "tool"}},
        }
    )


def test_gitea_without_a_url_or_a_grant_is_refused():
    core, _ = make_core()
    c = registered(core, "alice")
    assert kinds(core.on_frame(c, gitea_frame())) == [
        ("error", "GITEA_NOT_CONFIGURED"),
        ("ack", "GITEA_NOT_CONFIGURED"),
    ]
    core, _ = make_core(gitea={"url": "http://gitea"})
    c = registered(core, "alice")
    f = gitea_frame()
    actions = core.on_frame(c, f)
    assert actions.need == GiteaGrant("wks_t")
    assert kinds(core.resume(c, f, Found().put(GiteaGrant, None))) == [
        ("error", "FORBIDDEN"),
        ("ack", "FORBIDDEN"),
    ]


def test_gitea_asks_the_worker_in_the_background_and_filters_the_answer():
    core, _ = make_core(gitea={"url": "http://gitea"})
    c = registered(core, "alice")
    f = gitea_frame()
    found = Found().put(GiteaGrant, {"owners": ["lab"]})
    actions = core.resume(c, f, found)
    assert isinstance(actions.need, GiteaCall) and actions.need.background
    assert actions.need.body == {
        "ws": "w",
        "sender": "alice",
        "action": "list_issues",
        "params": {"owner": "lab", "repo": "tool"},
    }
    answered = core.resume(c, f, found.put(GiteaCall, {"rid": "r", "result": [{"n": 1}]}))
    result, ack = sent(answered)
    assert result["type"] == "gitea_result" and result["payload"]["ref"] == "g1"
    assert result["payload"]["result"] == [{"n": 1}] and ack["payload"]["status"] == "ok"
    silent = core.resume(c, f, found.fail(GiteaCall, TimeoutError()))
    error, ack = sent(silent)
    assert error["payload"]["code"] == "GITEA_API_ERROR" and ack["payload"]["status"] == "ok"


# ---- deliveries --------------------------------------------------------------------------
def encode(text: str) -> tuple[bytes, bytes]:
    return text.encode(), b"W:" + text.encode()  # any transport's framing: not WebSocket's


def item(
    seq: int, sender: str = "alice", mentions: tuple[str, ...] = (), channel: str = "#x"
) -> dict[str, Any]:
    return {
        "ws": "w",
        "channel": channel,
        "seq": seq,
        "id": f"id{seq}",
        "sender": sender,
        "mentions": list(mentions),
        "frame": f'{{"type":"message","payload":{{"seq":{seq}}}}}',
    }


def delivery_setup() -> tuple[DeliveryCore, dict[str, object]]:
    roster: Roster[object] = Roster()
    conns = {name: object() for name in ("alice", "bob", "carol", "dave", "erin")}
    for name, conn in conns.items():
        roster.bind("w", name, conn)
    for name in ("alice", "bob", "carol", "erin"):
        roster.join("w", "#x", conns[name])
    return DeliveryCore(roster, encode), conns


def seqs(frames: list[tuple[bytes, bytes]]) -> list[int]:
    return [json.loads(text)["payload"]["seq"] for text, _wire in frames]


def test_each_recipient_once_never_the_sender_mentions_included():
    delivery, conns = delivery_setup()
    out, gaps = delivery.offer([item(1, mentions=("dave", "erin", "alice"))])
    assert gaps == []
    assert set(out) == {conns["bob"], conns["carol"], conns["dave"], conns["erin"]}
    text = item(1)["frame"].encode()
    assert all(frames == [(text, b"W:" + text)] for frames in out.values())
    # Framed once: every recipient gets the same bytes object.
    assert len({id(frames[0]) for frames in out.values()}) == 1


def test_one_bus_frame_is_one_batch_per_recipient_and_duplicates_are_dropped():
    delivery, conns = delivery_setup()
    out, _ = delivery.offer([item(1), item(2, sender="bob"), item(3)])
    assert seqs(out[conns["carol"]]) == [1, 2, 3]
    assert seqs(out[conns["bob"]]) == [1, 3] and seqs(out[conns["alice"]]) == [2]
    again, _ = delivery.offer([item(2, sender="bob"), item(3)])  # republished: seen
    assert again == {}


def test_a_gap_is_fetched_once_then_filled_in_order():
    delivery, conns = delivery_setup()
    delivery.offer([item(1)])
    out, gaps = delivery.offer([item(4)])
    assert out == {} and gaps == [("w", "#x")]
    out, gaps = delivery.offer([item(5)])
    assert out == {} and gaps == []  # one fill per gap at a time
    fetch = delivery.gap_fetch(("w", "#x"))
    assert fetch == GapFetch("w", "#x", after_seq=1, upto=4) and fetch.limit == 2
    row = {
        "msg_id": "id2",
        "sender": "bob",
        "channel": "#x",
        "ts": "t",
        "content": "c",
        "mentions": [],
        "seq": 2,
    }
    # Seq 3 is not stored yet; the row at `upto` is ignored (the live one is held).
    out = delivery.fill(fetch, [json.dumps(row), json.dumps({**row, "seq": 4})])
    assert seqs(out[conns["carol"]]) == [2] and conns["bob"] not in out  # bob sent seq 2
    assert json.loads(out[conns["carol"]][0][0])["sender"] == "bob"  # rebuilt from the row
    assert delivery.gap_open(("w", "#x"))
    fetch = delivery.gap_fetch(("w", "#x"))
    assert fetch == GapFetch("w", "#x", after_seq=2, upto=4)
    out = delivery.fill(fetch, [json.dumps({**row, "seq": 3, "msg_id": "id3"})])
    assert seqs(out[conns["carol"]]) == [3, 4, 5] and seqs(out[conns["bob"]]) == [4, 5]
    assert not delivery.gap_open(("w", "#x")) and delivery.gap_fetch(("w", "#x")) is None
    delivery.fill_done(("w", "#x"))
    assert delivery.filling == set()


def test_a_gap_that_cannot_be_filled_is_skipped():
    delivery, conns = delivery_setup()
    delivery.offer([item(1)])
    _, gaps = delivery.offer([item(3), item(4)])
    out = delivery.skip(gaps[0])
    assert seqs(out[conns["bob"]]) == [3, 4]
    delivery.fill_done(gaps[0])
    out, gaps = delivery.offer([item(5)])
    assert seqs(out[conns["bob"]]) == [5] and gaps == []


def test_broadcast_mentions_wake_mention_only_members_at_most_three_a_minute():
    """@all and @<channel> reach the channel's mention-only members (Roster.quiet); a
    sender gets 3 a minute (upstream's default), then the message goes out as a plain one."""
    core, clock = make_core()
    c = registered(core, "alice", ("#ops",))
    sent = []
    for i in range(5):
        f = frame(
            {"type": "message", "id": f"m{i}", "payload": {"channel": "#ops", "content": "@all hi"}}
        )
        sent.append(core.on_frame(c, f).submit)
    assert [s.mentions for s in sent] == [None, None, None, [], []]  # None: the content's
    clock.advance(20)  # one more token after 20 s
    f = frame({"type": "message", "id": "m9", "payload": {"channel": "#ops", "content": "@ops go"}})
    assert core.on_frame(c, f).submit.mentions is None
    plain = frame({"type": "message", "id": "p", "payload": {"channel": "#ops", "content": "@bob"}})
    assert core.on_frame(c, plain).submit.mentions is None  # a name is never limited


def test_the_roster_reaches_quiet_members_by_name_or_broadcast_only():
    roster: Roster[str] = Roster()
    roster.join("w", "#ops", "loud")
    roster.join("w", "#ops", "quiet", quiet=True)
    roster.bind("w", "quiet-agent", "quiet")
    assert roster.recipients("w", "#ops", [], "x") == ["loud"]
    assert sorted(roster.recipients("w", "#ops", ["all"], "x")) == ["loud", "quiet"]
    assert sorted(roster.recipients("w", "#ops", ["ops"], "x")) == ["loud", "quiet"]
    assert sorted(roster.recipients("w", "#ops", ["quiet-agent"], "x")) == ["loud", "quiet"]
    assert roster.recipients("w", "#dev", ["all"], "x") == []  # not a member there
    roster.join("w", "#ops", "quiet")  # back to every message
    assert sorted(roster.recipients("w", "#ops", [], "x")) == ["loud", "quiet"]
    roster.leave("w", "#ops", "quiet")
    assert roster.recipients("w", "#ops", ["all"], "x") == ["loud"]
