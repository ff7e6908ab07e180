"""The persister as a process: real broker, real persister, a test-side bus client.
(The row mapping is tests/unit/test_persister_rows.py; the commit pipeline in this
process is tests/component/test_persister_pipeline.py.)

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
from pathlib import Path

import pytest

from scitex_orochi.hub.store import Store
from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.protocol import topics

from support.persister import BusSide, inbound
from support.util import REPO, TIME_SCALE, wait_for

STOP_DEADLINE_S = 2.5


class Harness(BusSide):
    """A broker and a persister as subprocesses, plus a bus client standing in for a gateway."""

    def __init__(self, db_url: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oro"))
        self.env = {
            **os.environ,
            "SCITEX_OROCHI_DATA_DIR": str(self.dir / "data"),
            "SCITEX_OROCHI_RUN_DIR": str(self.dir),
            "SCITEX_OROCHI_DB": db_url,
            "SCITEX_OROCHI_LOG_LEVEL": "INFO",
        }
        for name in (
            "SCITEX_OROCHI_ADMIN_TOKEN",
            "SCITEX_OROCHI_TOKEN",
            "SCITEX_OROCHI_BUS_IN",
            "SCITEX_OROCHI_BUS_OUT",
        ):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen] = []
        self.starts = 0
        self.broker = self._spawn("broker")
        self.persister: subprocess.Popen | None = None
        super().__init__(f"ipc://{self.dir}/bus-in.sock", f"ipc://{self.dir}/bus-out.sock", db_url)

    def _spawn(self, module: str) -> subprocess.Popen:
        self.starts += 1
        log = open(self.dir / f"{module}-{self.starts}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
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
                    f"broker (exit {self.broker.poll()}):\n{self.log_text(self.broker)}"
                )
            return "persister ready" in self.log_text(proc)

        wait_for(ready, 20, "persister ready")
        return proc

    def close(self) -> None:
        super().close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


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
    bodies = [
        inbound(ph.origin, ws=ws, channel=ch, content=f"m{i} @bob")
        for i, (ws, ch) in enumerate(plan)
    ]
    ph.send_until_acked(bodies)
    assert missing_at_ack == []

    for ws, ch in {(ws, ch) for ws, ch in plan}:
        sent = [
            b["frame"]["id"]
            for b in bodies
            if (b["ws"], b["frame"]["payload"]["channel"]) == (ws, ch)
        ]
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
            body["ws"],
            body["frame"]["payload"]["channel"],
            ack["seq"],
            "alice",
        )
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
        for body in bodies[sent : sent + 50]:
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
        b["frame"]["id"] for b in bodies
    ]


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
        assert [r["msg_id"] for r in h.stored("default", "#ok")] == [b["frame"]["id"] for b in good]
        assert [h.acks[b["frame"]["id"]][0]["seq"] for b in good] == [1, 2, 3]
    finally:
        h.close()
