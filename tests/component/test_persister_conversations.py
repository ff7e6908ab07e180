"""The persister's conversation path (docs/conversations.md): reactions, edits, deletes,
replies and DMs written in the channel's seq stream, acked once committed, refused with
a code naming the problem and nothing stored. A `Persister` in this process on a broker
in a thread and a real SQLite file (the `pipeline` fixture)."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from scitex_orochi.hub import tables

from support.persister import inbound
from support.util import wait_for


def change(origin: str, kind: str, message, *, sender: str = "alice", admin=False, **payload):
    """A react/edit/delete `in.` body as a gateway publishes it."""
    body = {
        "origin": origin,
        "ws": payload.pop("ws", "default"),
        "sender_type": "agent",
        "mentions": [],
        "frame": {
            "type": kind,
            "sender": sender,
            "id": payload.pop("ref", None) or str(uuid.uuid4()),
            "ts": "2025-01-02T03:04:05+00:00",
            "payload": {"message": message, **payload},
        },
    }
    if admin:
        body["admin"] = True
    return body


def pump_until(h, ids: list[str]) -> None:
    wait_for(lambda: h.pump(0.02) or all(i in h.acks for i in ids), 10, "acks")


def run(h, p, bodies):
    p._dispatch(p._parse(bodies))
    p._settle()
    pump_until(h, [b["frame"]["id"] for b in bodies])
    return [h.acks[b["frame"]["id"]][-1] for b in bodies]


def events(store) -> list[tuple]:
    ev = tables.channel_events.c
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(sa.select(ev.channel, ev.seq, ev.kind, ev.actor).order_by(ev.pk))
        ]


def test_reactions_take_seqs_once_each_and_fold_into_history(pipeline):
    h, p, store = pipeline
    root = inbound(h.origin, content="deploy done")
    (ack,) = run(h, p, [root])
    num = ack["num"]
    mid = root["frame"]["id"]
    acks = run(
        h,
        p,
        [
            change(h.origin, "react", mid, sender="healer", emoji="👀"),
            change(h.origin, "react", num, sender="healer", emoji="👀"),  # twice: one
            change(h.origin, "react", num, sender="bob", emoji="👀"),
            change(h.origin, "react", mid, sender="healer", emoji="✅"),
            change(h.origin, "react", mid, sender="bob", emoji="👀", action="remove"),
            change(h.origin, "react", mid, sender="bob", emoji="🎉", action="remove"),
        ],
    )
    assert [a.get("outcome") for a in acks] == [
        "added",
        "existed",
        "added",
        "added",
        "removed",
        "not_found",
    ]
    assert [a.get("seq") for a in acks] == [2, None, 3, 4, 5, None]
    assert {a["num"] for a in acks} == {num}
    (row,) = h.stored("default", "#general")
    assert row["reactions"] == {"👀": ["healer"], "✅": ["healer"]}
    assert [e[1:] for e in events(store)] == [
        (2, "reaction", "healer"),
        (3, "reaction", "bob"),
        (4, "reaction", "healer"),
        (5, "reaction", "bob"),
    ]
    delivered = [d for ds in h.dlvs.values() for d in ds if d.get("event")]
    assert sorted(d["seq"] for d in delivered) == [2, 3, 4, 5]
    first = json.loads(next(d for d in delivered if d["seq"] == 2)["frame"])
    assert first["type"] == "reaction_update" and first["sender"] == "orochi-server"
    assert first["payload"] == {
        "channel": "#general",
        "seq": 2,
        "message": mid,
        "num": num,
        "emoji": "👀",
        "reactor": "healer",
        "action": "add",
    }


def test_only_the_sender_edits_and_deletes_and_a_tombstone_stays_one(pipeline):
    h, p, store = pipeline
    root = inbound(h.origin, content="first draft", sender="alice")
    (ack,) = run(h, p, [root])
    num = ack["num"]
    acks = run(
        h,
        p,
        [
            change(h.origin, "edit", num, sender="mallory", content="pwned"),
            change(h.origin, "edit", num, sender="alice", content="second draft"),
            change(h.origin, "delete", num, sender="mallory"),
            change(h.origin, "edit", 999_999, sender="alice", content="x"),
            change(h.origin, "react", num, sender="bob", emoji="👍", channel="#other"),
        ],
    )
    assert acks[0]["error"]["code"] == "FORBIDDEN"
    assert acks[1]["outcome"] == "edited" and acks[1]["seq"] == 2
    assert acks[2]["error"]["code"] == "FORBIDDEN"
    assert acks[3]["error"]["code"] == "UNKNOWN_MESSAGE"
    assert acks[4]["error"]["code"] == "INVALID_FIELD" and "#other" in acks[4]["error"]["detail"]
    (row,) = h.stored("default", "#general")
    assert row["content"] == "second draft" and row["edited_at"]
    with store.engine.connect() as conn:
        edits = conn.execute(sa.select(tables.message_edits.c.previous_content)).scalars()
        assert list(edits) == ["first draft"]
    acks = run(
        h,
        p,
        [
            change(h.origin, "delete", num, sender="admin-says", admin=True),
            change(h.origin, "edit", num, sender="alice", content="back from the dead"),
            change(h.origin, "react", num, sender="bob", emoji="👍"),
        ],
    )
    assert acks[0]["outcome"] == "deleted" and acks[0]["seq"] == 3
    assert [a["error"]["code"] for a in acks[1:]] == ["MESSAGE_DELETED", "MESSAGE_DELETED"]
    (row,) = h.stored("default", "#general")
    assert row["deleted"] is True and row["content"] == "" and row["attachments"] == []
    assert [e[1:3] for e in events(store)] == [(2, "edit"), (3, "delete")]  # refusals: none


def test_a_republished_change_is_stored_once(pipeline):
    h, p, store = pipeline
    (ack,) = run(h, p, [inbound(h.origin, content="x")])
    body = change(h.origin, "react", ack["num"], sender="bob", emoji="👍")
    run(h, p, [body])
    run(h, p, [json.loads(json.dumps(body))])
    first, again = h.acks[body["frame"]["id"]]
    assert (first["seq"], first.get("dup")) == (2, None)
    assert (again["seq"], again["dup"], again["outcome"]) == (2, True, "added")
    assert len(events(store)) == 1


def test_replies_join_the_roots_thread_in_seq_order_with_plain_messages(pipeline):
    """A burst mixing messages, replies and reactions keeps arrival order in seqs; a reply
    to a reply joins its root's thread; a reply_to naming nothing stays metadata."""
    h, p, _store = pipeline
    root = inbound(h.origin, content="root")
    rid = root["frame"]["id"]
    reply = inbound(h.origin, content="reply 1")
    reply["frame"]["payload"]["metadata"] = {"reply_to": rid}
    plain = inbound(h.origin, content="unrelated")
    react = change(h.origin, "react", rid, sender="bob", emoji="👀")
    acks = run(h, p, [root, reply, plain, react])
    assert [a["seq"] for a in acks] == [1, 2, 3, 4]
    deep = inbound(h.origin, content="reply to reply")
    deep["frame"]["payload"]["metadata"] = {"reply_to": acks[1]["num"]}
    stray = inbound(h.origin, content="stray")
    stray["frame"]["payload"]["metadata"] = {"reply_to": "no-such-message"}
    run(h, p, [deep, stray])
    frame = json.loads(h.dlvs[deep["frame"]["id"]][0]["frame"])
    assert frame["payload"]["thread"] == {"root": rid, "num": acks[0]["num"]}
    assert "thread" not in json.loads(h.dlvs[stray["frame"]["id"]][0]["frame"])["payload"]
    rows = {r["content"]: r for r in h.stored("default", "#general")}
    assert rows["root"]["reply_count"] == 2 and rows["root"]["reactions"] == {"👀": ["bob"]}
    assert rows["reply 1"]["thread"] == {"root": rid, "num": acks[0]["num"]}
    assert "thread" not in rows["stray"] and "reply_count" not in rows["unrelated"]
    assert [r["seq"] for r in h.stored("default", "#general")] == [1, 2, 3, 5, 6]


def test_a_dm_records_its_participants_on_its_first_write(pipeline):
    h, p, store = pipeline
    dm = "dm:agent:alice|agent:bob"
    run(h, p, [inbound(h.origin, channel=dm, content="psst")])
    run(h, p, [inbound(h.origin, channel=dm, content="again")])
    d = tables.dm_participants.c
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(d.channel, d.participant).order_by(d.participant)).all()
    assert [tuple(r) for r in got] == [(dm, "agent:alice"), (dm, "agent:bob")]
    assert [r["content"] for r in h.stored("default", dm)] == ["psst", "again"]
    # A change by someone outside the DM is refused even with the message's id.
    (msg,) = [b for b in h.stored("default", dm) if b["content"] == "psst"]
    (ack,) = run(h, p, [change(h.origin, "react", msg["num"], sender="eve", emoji="👀")])
    assert ack["error"]["code"] == "NOT_A_MEMBER"
