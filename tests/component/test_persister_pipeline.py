"""The persister's commit pipeline in this process: a `Persister` on a broker in a thread
and a real SQLite file, driven step by step so a test can hold a batch in flight while the
next one is prepared."""

from __future__ import annotations

import json

from persister.rows import build_message, parse_inbound

from support.persister import BusSide, inbound
from support.util import wait_for


def pump_until(h: BusSide, ids: list[str]) -> None:
    wait_for(lambda: h.pump(0.02) or all(i in h.acks for i in ids), 10, "acks")


def parsed(bodies: list[dict]) -> list:
    return [parse_inbound(b) for b in bodies]


def test_a_resend_of_the_batch_in_flight_is_a_duplicate(pipeline):
    h, p, _store = pipeline
    first = [inbound(h.origin, content=f"a{i}") for i in range(3)]
    again = [json.loads(json.dumps(first[1])), inbound(h.origin, content="b")]
    p._advance(parsed(first))
    assert p._inflight is not None  # the first batch is committing...
    p._advance(parsed(again))  # ...while this one is prepared against it
    p._settle()
    ids = [b["frame"]["id"] for b in first + again[1:]]
    pump_until(h, ids)
    assert [r["msg_id"] for r in h.stored("default", "#general")] == ids
    assert [r["seq"] for r in h.stored("default", "#general")] == [1, 2, 3, 4]
    dup_id = first[1]["frame"]["id"]
    assert [a["dup"] for a in h.acks[dup_id]] == [False, True]
    assert {a["seq"] for a in h.acks[dup_id]} == {2}
    assert (p.stored, p.dups) == (4, 1)


def test_a_failed_commit_in_flight_redoes_both_batches_in_order(pipeline):
    """An id already in the database but not in the LRU (stored before a restart) makes
    the batch in flight fail on the unique index; the batch prepared behind it counted
    on its seqs. Both are redone: the old id acked as a duplicate, no seq gap."""
    h, p, store = pipeline
    old = inbound(h.origin, content="stored before the restart")
    old_msg = parse_inbound(old)
    store.insert_params([build_message(old_msg, 1, 1)[0]])
    first = [inbound(h.origin, content="x"), old, inbound(h.origin, content="y")]
    second = [inbound(h.origin, content="z"), inbound(h.origin, channel="#other")]
    p._advance(parsed(first))
    p._advance(parsed(second))
    p._settle()
    ids = [b["frame"]["id"] for b in first + second]
    pump_until(h, ids)
    rows = h.stored("default", "#general")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert [r["msg_id"] for r in rows] == [old_msg.msg_id] + [
        b["frame"]["id"] for b in (first[0], first[2], second[0])
    ]
    assert [r["seq"] for r in h.stored("default", "#other")] == [1]
    assert h.acks[old_msg.msg_id][-1]["dup"] and h.acks[old_msg.msg_id][-1]["seq"] == 1
    assert all(len(h.acks[i]) == 1 for i in ids if i != old_msg.msg_id)
