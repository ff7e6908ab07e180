"""The persister as a process: real broker, real persister, a test-side bus client.

Inbound bodies are republished until acked, as a gateway does, so a slow
joiner or a restart loses nothing; everything waits on conditions with deadlines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persister.rows import (
    InvalidInbound,
    build_message,
    delivery_from_row,
    parse_inbound,
    ts_and_epoch,
)
from persister.service import Persister
from scitex_orochi.hub.bus import SyncBus, new_origin
from scitex_orochi.hub.store import INSERT_COLUMNS, Store
from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.protocol import topics

from support.util import REPO, TIME_SCALE, wait_for

REPUBLISH_EVERY_S = 1.0
STOP_DEADLINE_S = 2.5


class Harness:
    """A broker and a persister as subprocesses, plus a bus client standing in for a gateway."""

    def __init__(self, db_url: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oro"))
        self.db_url = db_url
        self.env = {
            **os.environ,
            "SCITEX_OROCHI_DATA_DIR": str(self.dir / "data"),
            "SCITEX_OROCHI_RUN_DIR": str(self.dir),
            "SCITEX_OROCHI_DB": db_url,
            "SCITEX_OROCHI_LOG_LEVEL": "INFO",
        }
        for name in ("SCITEX_OROCHI_ADMIN_TOKEN", "SCITEX_OROCHI_TOKEN", "SCITEX_OROCHI_BUS_IN",
                     "SCITEX_OROCHI_BUS_OUT"):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen] = []
        self.starts = 0
        self.broker = self._spawn("broker")
        self.persister: subprocess.Popen | None = None
        self.origin = new_origin("test")
        self.bus = SyncBus(f"ipc://{self.dir}/bus-in.sock", f"ipc://{self.dir}/bus-out.sock",
                           self.origin)
        self.bus.subscribe(topics.DELIVER, topics.ack(self.origin))
        self.bus.wait_ready(10 * TIME_SCALE)
        self.acks: dict[str, list[dict]] = {}
        self.dlvs: dict[str, list[dict]] = {}
        self.events: list[tuple[str, str]] = []  # ("dlv"|"ack", id) in arrival order
        self.reader = Store(db_url, readonly=True)

    def _spawn(self, module: str) -> subprocess.Popen:
        self.starts += 1
        log = open(self.dir / f"{module}-{self.starts}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc.log_path = self.dir / f"{module}-{self.starts}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def log_text(self, proc: subprocess.Popen) -> str:
        return proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]

    def start_persister(self) -> subprocess.Popen:
        proc = self._spawn("persister")
        self.persister = proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"persister exited {proc.returncode}:\n{self.log_text(proc)}\n"
                    f"broker (exit {self.broker.poll()}):\n{self.log_text(self.broker)}")
            return "persister ready" in self.log_text(proc)

        wait_for(ready, 20, "persister ready")
        return proc

    # -- traffic -------------------------------------------------------------------------
    def publish(self, body: dict) -> None:
        self.bus.publish(topics.inbound(body["ws"]), body)

    def pump(self, timeout_s: float = 0.05) -> None:
        for topic, body in self.bus.recv_burst(limit=10_000, timeout_s=timeout_s):
            if topic.startswith(topics.ACK):
                for item in body["items"]:
                    self.acks.setdefault(item["id"], []).append(item)
                    self.events.append(("ack", item["id"]))
                    self.on_ack(item)
            elif topic.startswith(topics.DELIVER):
                for item in body["items"]:
                    self.dlvs.setdefault(item["id"], []).append(item)
                    self.events.append(("dlv", item["id"]))

    def on_ack(self, body: dict) -> None:
        """Hook for tests that inspect the database the moment an ack arrives."""

    def send_until_acked(self, bodies: list[dict], timeout: float = 20.0) -> None:
        pending = {b["frame"]["id"]: b for b in bodies}
        for body in bodies:
            self.publish(body)
        deadline = time.monotonic() + timeout * TIME_SCALE
        next_republish = time.monotonic() + REPUBLISH_EVERY_S
        while True:
            self.pump()
            for msg_id in [i for i in pending if i in self.acks]:
                del pending[msg_id]
            if not pending:
                return
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"{len(pending)} messages never acked")
            if now >= next_republish:
                for body in pending.values():
                    self.publish(body)
                next_republish = now + REPUBLISH_EVERY_S

    def stored(self, ws: str, channel: str) -> list[dict]:
        return self.reader.history(ws, channel, after_seq=0, limit=1000)

    def count(self) -> int:
        with self.reader.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM messages").scalar()

    def close(self) -> None:
        self.bus.close()
        self.reader.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def inbound(origin: str, *, ws: str = "default", channel: str = "#general",
            content: str = "hello", sender: str = "alice", msg_id: str | None = None) -> dict:
    return {
        "origin": origin, "ws": ws, "sender_type": "agent",
        "mentions": ["bob"] if "@bob" in content else [],
        "frame": {"type": "message", "sender": sender, "id": msg_id or str(uuid.uuid4()),
                  "ts": "2025-01-02T03:04:05.678901+00:00",
                  "payload": {"channel": channel, "content": content, "metadata": {"k": "v"},
                              "attachments": [], "extra": 1}},
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request):
    if request.param == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="orodb")) / "orochi.db"
        yield f"sqlite:///{path}"
        shutil.rmtree(path.parent, ignore_errors=True)
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def ph(db_url):
    """A broker and a persister (not the whole supervised hub of conftest)."""
    h = Harness(db_url)
    h.start_persister()
    yield h
    h.close()


def test_ack_means_stored_and_seq_per_channel(ph):
    missing_at_ack: list[str] = []

    def check(body: dict) -> None:
        if not ph.reader.find_messages([(body["ws"], body["id"])]):
            missing_at_ack.append(body["id"])

    ph.on_ack = check
    plan = [("default", "#a"), ("default", "#b"), ("ws2", "#a"), ("default", "#a")] * 6
    bodies = [inbound(ph.origin, ws=ws, channel=ch, content=f"m{i} @bob")
              for i, (ws, ch) in enumerate(plan)]
    ph.send_until_acked(bodies)
    assert missing_at_ack == []

    for ws, ch in {(ws, ch) for ws, ch in plan}:
        sent = [b["frame"]["id"] for b in bodies
                if (b["ws"], b["frame"]["payload"]["channel"]) == (ws, ch)]
        rows = ph.stored(ws, ch)
        assert [r["msg_id"] for r in rows] == sent
        assert [r["seq"] for r in rows] == list(range(1, len(sent) + 1))
        assert [ph.acks[i][0]["seq"] for i in sent] == list(range(1, len(sent) + 1))

    for body in bodies:
        msg_id = body["frame"]["id"]
        ack = ph.acks[msg_id][0]
        assert ack["dup"] is False and ack["ws"] == body["ws"]
        assert ph.events.index(("dlv", msg_id)) < ph.events.index(("ack", msg_id))
        dlv = ph.dlvs[msg_id][0]
        assert (dlv["ws"], dlv["channel"], dlv["seq"], dlv["sender"]) == (
            body["ws"], body["frame"]["payload"]["channel"], ack["seq"], "alice")
        assert dlv["mentions"] == ["bob"]
        frame = json.loads(dlv["frame"])
        assert frame["payload"]["seq"] == ack["seq"]
        assert frame["payload"]["mentions"] == ["bob"]
        assert frame["payload"]["extra"] == 1 and frame["payload"]["metadata"] == {"k": "v"}
        assert frame["id"] == msg_id and frame["ts"] == body["frame"]["ts"]
        assert frame["sender"] == "alice" and frame["type"] == "message"
        assert ", " not in dlv["frame"]  # compact encoding
    row = ph.stored("default", "#a")[0]
    assert row["ts"] == "2025-01-02T03:04:05.678901+00:00" and row["mentions"] == ["bob"]


def test_resent_id_is_acked_again_and_stored_once(ph):
    body = inbound(ph.origin, channel="#dup")
    ph.send_until_acked([body])
    msg_id = body["frame"]["id"]
    first = ph.acks[msg_id][0]
    assert first["dup"] is False and first["seq"] == 1
    ph.publish(body)
    ph.publish(body)
    wait_for(lambda: ph.pump() or len(ph.acks[msg_id]) >= 3, 10, "dup acks")
    assert [a["dup"] for a in ph.acks[msg_id]] == [False, True, True]
    assert {a["seq"] for a in ph.acks[msg_id]} == {1}
    assert [d["seq"] for d in ph.dlvs[msg_id]] == [1, 1, 1]
    # A dup's delivery is read back from the database (the persister remembers ids, not
    # messages): the stored message, without the payload keys the row does not keep.
    original, again = (json.loads(d["frame"]) for d in ph.dlvs[msg_id][:2])
    original["payload"].pop("extra")
    assert again == original
    # The same id claimed by another sender is refused, not delivered as theirs.
    thief = inbound(ph.origin, channel="#dup", sender="mallory", msg_id=msg_id)
    ph.publish(thief)
    wait_for(lambda: ph.pump() or len(ph.acks[msg_id]) >= 4, 10, "thief ack")
    assert ph.acks[msg_id][3]["error"]["code"] == "DUPLICATE_ID"
    follow = inbound(ph.origin, channel="#dup")
    ph.send_until_acked([follow])
    assert ph.acks[follow["frame"]["id"]][0]["seq"] == 2
    assert [r["msg_id"] for r in ph.stored("default", "#dup")] == [msg_id, follow["frame"]["id"]]


def test_malformed_body_gets_error_ack_and_nothing_is_stored(ph):
    no_channel = inbound(ph.origin)
    del no_channel["frame"]["payload"]["channel"]
    bad_content = inbound(ph.origin)
    bad_content["frame"]["payload"]["content"] = {"not": "text"}
    bad_ws = inbound(ph.origin, ws="a.b")
    bad_ids = [b["frame"]["id"] for b in (no_channel, bad_content, bad_ws)]
    ph.bus.publish(topics.inbound("default"), ["not", "a", "map"])
    ph.bus.publish(topics.inbound("default"), {"ws": "default", "frame": {"id": "x"}})
    for body in (no_channel, bad_content):
        ph.publish(body)
    ph.bus.publish(topics.inbound("default"), bad_ws)
    wait_for(lambda: ph.pump() or all(i in ph.acks for i in bad_ids), 10, "error acks")
    for msg_id in bad_ids:
        assert ph.acks[msg_id][0]["error"]["code"] == "INVALID_MESSAGE"
        assert ph.acks[msg_id][0]["error"]["detail"]
        assert msg_id not in ph.dlvs
    good = inbound(ph.origin)
    ph.send_until_acked([good])
    assert ph.acks[good["frame"]["id"]][0]["seq"] == 1
    assert ph.count() == 1
    assert ph.persister.poll() is None


def test_batching_5000_messages(ph):
    bodies = [inbound(ph.origin, channel="#load", content=f"n{i}") for i in range(5000)]
    started = time.monotonic()
    ph.send_until_acked(bodies, timeout=40)
    elapsed = time.monotonic() - started
    rows = ph.reader.history("default", "#load", after_seq=0, limit=1000)
    assert len(rows) == 1000
    assert ph.count() == 5000
    assert ph.reader.max_seq("default", "#load") == 5000
    assert sorted(a[0]["seq"] for a in ph.acks.values()) == list(range(1, 5001))
    assert all(not a[0]["dup"] for a in ph.acks.values())
    assert elapsed < 20 * TIME_SCALE


def test_kill9_mid_stream_then_restart_loses_and_duplicates_nothing(ph):
    bodies = [inbound(ph.origin, channel=f"#c{i % 2}", content=f"n{i}") for i in range(4000)]
    sent = 0
    deadline = time.monotonic() + 20 * TIME_SCALE
    while len(ph.acks) < 300:
        assert time.monotonic() < deadline, "no acks before the kill"
        for body in bodies[sent:sent + 50]:
            ph.publish(body)
        sent = min(sent + 50, len(bodies))
        ph.pump(0.001)
    ph.persister.send_signal(signal.SIGKILL)
    ph.persister.wait(5)
    acked_before = {i: a[0]["seq"] for i, a in ph.acks.items()}
    assert 0 < len(acked_before) < len(bodies)
    for body in bodies[sent:]:
        ph.publish(body)  # nobody is listening: dropped, republished below
    ph.start_persister()
    ph.send_until_acked(bodies, timeout=40)

    for ch in ("#c0", "#c1"):
        ids = [b["frame"]["id"] for b in bodies if b["frame"]["payload"]["channel"] == ch]
        n = ph.reader.max_seq("default", ch)
        assert n == len(ids)
        seen: dict[str, int] = {}
        for after in range(0, n, 1000):
            for row in ph.reader.history("default", ch, after_seq=after, limit=1000):
                assert row["msg_id"] not in seen
                seen[row["msg_id"]] = row["seq"]
        assert sorted(seen.values()) == list(range(1, n + 1))
        assert set(seen) == set(ids)
        for msg_id in ids:
            if msg_id in acked_before:
                assert seen[msg_id] == acked_before[msg_id]
            assert {a["seq"] for a in ph.acks[msg_id]} == {seen[msg_id]}
    assert ph.count() == len(bodies)


def test_sigterm_exits_zero_within_deadline(ph):
    ph.send_until_acked([inbound(ph.origin) for _ in range(10)])
    started = time.monotonic()
    ph.persister.send_signal(signal.SIGTERM)
    assert ph.persister.wait(STOP_DEADLINE_S * TIME_SCALE) == 0
    assert time.monotonic() - started < STOP_DEADLINE_S * TIME_SCALE
    log = ph.log_text(ph.persister)
    assert "persister stopped" in log and "Traceback" not in log


def test_first_start_bootstraps_tokens(ph):
    admin_file = ph.dir / "data" / "admin_token"
    assert admin_file.exists()
    assert (admin_file.stat().st_mode & 0o777) == 0o600
    log = ph.log_text(ph.persister)
    assert "generated the admin token" in log and "created workspace 'default'" in log
    token = ph.reader.list_tokens("default")[0]["token"]
    assert token not in log and admin_file.read_text().strip() not in log  # never logged
    auth = ph.reader.authenticate(token, admin_file.read_text().strip())
    assert auth is not None and auth.workspace_id == "default"


def test_no_ack_while_another_writer_holds_the_lock(ph):
    locker = Store(ph.db_url)
    bodies = [inbound(ph.origin, channel="#locked") for _ in range(5)]
    with write_tx(locker.engine) as conn:  # SQLite: BEGIN IMMEDIATE holds the write lock
        if locker.dialect == "postgresql":
            conn.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")
        for body in bodies:
            ph.publish(body)
        quiet_until = time.monotonic() + 0.7
        while time.monotonic() < quiet_until:
            ph.pump(0.05)
        assert not any(b["frame"]["id"] in ph.acks for b in bodies)
    locker.close()
    ph.send_until_acked(bodies)
    assert [r["msg_id"] for r in ph.stored("default", "#locked")] == [
        b["frame"]["id"] for b in bodies]


@pytest.mark.postgres
def test_database_down_then_back_nothing_acked_meanwhile(pg_cluster, pg_url):
    h = Harness(pg_url)
    try:
        h.start_persister()
        before = [inbound(h.origin, channel="#r") for _ in range(20)]
        h.send_until_acked(before)
        pg_cluster.stop()
        during = [inbound(h.origin, channel="#r") for _ in range(20)]
        for body in during:
            h.publish(body)
        wait_for(lambda: "retrying" in h.log_text(h.persister), 10, "a failed commit")
        h.pump(0.2)
        assert not any(b["frame"]["id"] in h.acks for b in during)
        pg_cluster.start()
        h.send_until_acked(during, timeout=30)
        rows = h.stored("default", "#r")
        assert [r["msg_id"] for r in rows] == [b["frame"]["id"] for b in before + during]
        assert [r["seq"] for r in rows] == list(range(1, 41))
        assert h.persister.poll() is None
    finally:
        if not pg_cluster.running:
            pg_cluster.start()
        h.close()


# -- the pure row mapping -------------------------------------------------------------------
def test_parse_inbound_rejections_name_the_problem():
    good = inbound("gw-1")
    assert parse_inbound(good).channel == "#general"
    cases = {
        "origin": lambda b: b.pop("origin"),
        "ws": lambda b: b.update(ws="a|b"),
        "frame.type": lambda b: b["frame"].update(type="register"),
        "frame.sender": lambda b: b["frame"].update(sender=""),
        "payload.channel": lambda b: b["frame"]["payload"].pop("channel"),
        "payload.metadata": lambda b: b["frame"]["payload"].update(metadata=[1]),
        "payload.attachments": lambda b: b["frame"]["payload"].update(attachments="x"),
        "sender_type": lambda b: b.update(sender_type="robot"),
        "mentions": lambda b: b.update(mentions=[1]),
        "frame.id": lambda b: b["frame"].pop("id"),
    }
    for what, spoil in cases.items():
        body = json.loads(json.dumps(good))
        spoil(body)
        with pytest.raises(InvalidInbound, match=what.replace(".", r"\.")) as info:
            parse_inbound(body)
        assert info.value.origin == (None if what == "origin" else "gw-1")
    with pytest.raises(InvalidInbound):
        parse_inbound([1, 2])
    missing = json.loads(json.dumps(good))
    del missing["mentions"]
    missing["frame"]["payload"]["content"] = "hi @carol and a@b.com"
    assert parse_inbound(missing).mentions == ["carol"]


def row_of(params: tuple) -> dict:
    """build_message's insert parameters as the row Store.find_messages returns."""
    row = dict(zip(INSERT_COLUMNS, params, strict=True))
    for key in ("mentions", "metadata", "attachments"):
        row[key] = json.loads(row[key])
    return row


def test_build_message_and_rebuild_from_row_agree():
    body = inbound("gw-1", content="hi @bob")
    del body["frame"]["payload"]["extra"]
    params, delivery = build_message(parse_inbound(body), 7)
    row = row_of(params)
    assert row["seq"] == 7 and row["ts_epoch"] == 1735787045.678901
    assert row["mentions"] == ["bob"] and row["metadata"] == {"k": "v"}
    frame = json.loads(delivery["frame"])
    assert frame["payload"]["seq"] == 7 and frame["payload"]["mentions"] == ["bob"]
    assert body["frame"]["payload"].get("seq") is None  # the inbound body is not mutated
    # Live delivery and history replay are byte for byte the same envelope.
    assert delivery_from_row(row) == delivery


def test_build_message_keeps_what_the_agent_sent():
    """Unknown keys and odd values survive; missing documented fields are added."""
    body = inbound("gw-1", content="hi")  # payload carries "extra": 1
    body["frame"]["reply_to"] = "m-1"
    frame = json.loads(build_message(parse_inbound(body), 3)[1]["frame"])
    assert frame["reply_to"] == "m-1" and frame["payload"]["extra"] == 1
    assert frame["payload"]["seq"] == 3 and frame["payload"]["content"] == "hi"

    bare = inbound("gw-1")
    bare["frame"]["payload"] = {"channel": "#general", "content": None, "metadata": None}
    params, delivery = build_message(parse_inbound(bare), 1)
    payload = json.loads(delivery["frame"])["payload"]
    assert payload["content"] is None and payload["metadata"] is None  # as sent
    assert payload["attachments"] == [] and payload["mentions"] == []  # added
    assert row_of(params)["content"] == "" and row_of(params)["metadata"] == {}


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
json_leaf = st.none() | st.booleans() | st.integers(-10**6, 10**6) | text
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(sender=text.filter(bool), channel=text.filter(lambda c: c and "|" not in c),
       content=text, metadata=st.dictionaries(text, json_value, max_size=3),
       attachments=st.lists(json_value, max_size=3),
       mentions=st.lists(text, max_size=3), seq=st.integers(1, 2**53))
def test_spliced_envelope_is_the_json_of_the_frame(sender, channel, content, metadata,
                                                  attachments, mentions, seq):
    """The fast path spells the envelope out by hand: it must decode to exactly the frame
    as sent plus seq, mentions and sender_type, for any text (quotes, controls,
    non-ASCII)."""
    sent = {"type": "message", "sender": sender, "id": "m\"1\u2028",
            "ts": "2025-01-02T03:04:05+00:00",
            "payload": {"channel": channel, "content": content, "metadata": metadata,
                        "attachments": attachments}}
    body = {"origin": "gw-1", "ws": "default", "sender_type": "agent",
            "mentions": mentions, "frame": sent}
    delivery = build_message(parse_inbound(body), seq)[1]
    expected = json.loads(json.dumps(sent))
    expected["payload"].update(seq=seq, mentions=mentions, sender_type="agent")
    assert json.loads(delivery["frame"]) == expected


def test_unparsable_ts_is_kept_with_now_as_epoch():
    assert ts_and_epoch("2025-01-01T00:00:00Z")[1] == 1735689600.0
    assert ts_and_epoch("garbage", now=5.0) == ("garbage", 5.0)
    ts, epoch = ts_and_epoch(None, now=5.0)
    assert epoch == 5.0 and ts == "1970-01-01T00:00:05+00:00"


@pytest.mark.postgres
def test_a_message_the_database_refuses_does_not_block_the_batch(pg_url):
    h = Harness(pg_url)
    try:
        h.start_persister()
        good = [inbound(h.origin, channel="#ok") for _ in range(3)]
        bad = inbound(h.origin, channel="#" + "x" * 300)  # over the column's 255 characters
        bodies = [good[0], bad, good[1], good[2]]
        h.send_until_acked(bodies)  # published back to back: one batch
        assert h.acks[bad["frame"]["id"]][0]["error"]["code"] == "INVALID_MESSAGE"
        assert [r["msg_id"] for r in h.stored("default", "#ok")] == [
            b["frame"]["id"] for b in good]
        assert [h.acks[b["frame"]["id"]][0]["seq"] for b in good] == [1, 2, 3]
    finally:
        h.close()


# -- the commit pipeline, driven in-process against a real broker and SQLite file ------
@pytest.fixture
def pipeline():
    """A Persister object in this process (no persister subprocess) on the harness's
    broker, so a test can hold a batch in flight while the next one is prepared."""
    h = Harness(f"sqlite:///{tempfile.mkdtemp(prefix='orodb')}/orochi.db")
    store = Store(h.db_url)
    store.migrate()
    bus = SyncBus(h.bus.bus_in, h.bus.bus_out, new_origin("persister-test"))
    p = Persister(store, bus, batch_max=1000)
    bus.wait_ready(10 * TIME_SCALE, via=p.announcer)
    yield h, p, store
    p.close()
    bus.close()
    store.close()
    h.close()


def pump_until(h: Harness, ids: list[str]) -> None:
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
    store.insert_params([build_message(old_msg, 1)[0]])
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
        b["frame"]["id"] for b in (first[0], first[2], second[0])]
    assert [r["seq"] for r in h.stored("default", "#other")] == [1]
    assert h.acks[old_msg.msg_id][-1]["dup"] and h.acks[old_msg.msg_id][-1]["seq"] == 1
    assert all(len(h.acks[i]) == 1 for i in ids if i != old_msg.msg_id)
