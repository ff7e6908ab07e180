"""The gateway's side of the persister, for tests: inbound bodies out, acks and deliveries in.

`BusSide` is a bus client standing in for a gateway: it republishes inbound bodies until
they are acked, as a gateway does, and records every ack and delivery in arrival order.
The e2e tier puts it beside a broker and a persister as subprocesses; the component tier
beside a broker in a thread (support.broker) and a `Persister` in this process
(`PersisterThread`).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import uuid

from persister.service import Persister
from scitex_orochi.hub.bus import SyncBus, new_origin
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.store import Store
from scitex_orochi.protocol import topics

from support.util import TIME_SCALE

REPUBLISH_EVERY_S = 1.0


def inbound(
    origin: str,
    *,
    ws: str = "default",
    channel: str = "#general",
    content: str = "hello",
    sender: str = "alice",
    msg_id: str | None = None,
) -> dict:
    """An `in.` body as a gateway publishes it."""
    return {
        "origin": origin,
        "ws": ws,
        "sender_type": "agent",
        "mentions": ["bob"] if "@bob" in content else [],
        "frame": {
            "type": "message",
            "sender": sender,
            "id": msg_id or str(uuid.uuid4()),
            "ts": "2025-01-02T03:04:05.678901+00:00",
            "payload": {
                "channel": channel,
                "content": content,
                "metadata": {"k": "v"},
                "attachments": [],
                "extra": 1,
            },
        },
    }


class BusSide:
    """A bus client standing in for a gateway, and a read-only store to check the rows."""

    def __init__(self, bus_in: str, bus_out: str, db_url: str) -> None:
        self.db_url = db_url
        self.origin = new_origin("test")
        self.bus = SyncBus(bus_in, bus_out, self.origin)
        self.bus.subscribe(topics.DELIVER, topics.ack(self.origin))
        self.bus.wait_ready(10 * TIME_SCALE)
        self.acks: dict[str, list[dict]] = {}
        self.dlvs: dict[str, list[dict]] = {}
        self.events: list[tuple[str, str]] = []  # ("dlv"|"ack", id) in arrival order
        self.reader = Store(db_url, readonly=True)

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


class PersisterThread:
    """`persister.service.Persister` on its loop in a thread of this process, started the
    way `python -m persister` starts it (subscribe, prove both sockets, announce), minus
    the signal handlers and logging set-up of a process. The store must be migrated.

    `Persister.run` tunes the interpreter for a process of its own (gc thresholds, a
    frozen heap, the switch interval); `stop()` puts the test process's settings back.
    """

    def __init__(self, cfg: Config) -> None:
        self.store = Store(cfg.db.url, sqlite_sync=cfg.db.sqlite_sync)
        self.bus = SyncBus.from_config(cfg, new_origin("persister"))
        self.persister = Persister(
            self.store, self.bus, cfg.db.persist_batch_max, cfg.db.dedupe_ids_max
        )
        self._thread = threading.Thread(target=self.persister.run, name="persister", daemon=True)
        self._gc_threshold = gc.get_threshold()
        self._switch_interval = sys.getswitchinterval()

    def start(self) -> PersisterThread:
        self.bus.subscribe(*Persister.TOPICS)
        self.bus.wait_ready(10 * TIME_SCALE)
        self.bus.wait_ready(10 * TIME_SCALE, via=self.persister.announcer)
        self.bus.publish(topics.PERSISTER_READY, {"origin": self.bus.origin})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.persister.stop()
            self._thread.join(10 * TIME_SCALE)
            assert not self._thread.is_alive(), "the persister thread did not stop"
        else:
            self.persister.close()
        self.bus.close()
        self.store.close()
        gc.unfreeze()
        gc.set_threshold(*self._gc_threshold)
        sys.setswitchinterval(self._switch_interval)
