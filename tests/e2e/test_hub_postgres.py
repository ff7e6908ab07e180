"""The same hub on PostgreSQL: protocol round trip, durability across a persister kill."""

from __future__ import annotations

import signal
import uuid

import pytest

from support.agent import RawAgent

pytestmark = pytest.mark.postgres


async def test_hub_on_postgres_routes_persists_and_resumes(hub_factory, pg_url):
    hub = hub_factory(db_url=pg_url)
    assert hub.cfg.db.url.startswith("postgresql")
    a = await RawAgent.connect(hub.agent_url(), f"pa-{uuid.uuid4().hex[:6]}", ["#pg"])
    b = await RawAgent.connect(hub.agent_url(), f"pb-{uuid.uuid4().hex[:6]}", ["#pg"])
    acks = [await a.post("#pg", f"m{i}") for i in range(10)]
    old = hub.kill("persister", signal.SIGKILL)
    acks += [await a.post("#pg", f"m{i}", timeout=30) for i in range(10, 20)]
    hub.wait_restarted("persister", old)
    seqs = [x["payload"]["seq"] for x in acks]
    assert seqs == list(range(1, 21))
    got = await b.wait_count(
        lambda f: f["type"] == "message" and f["payload"].get("channel") == "#pg", 20
    )
    assert [m["payload"]["seq"] for m in got] == seqs
    rows = (await b.request({"type": "query", "payload": {"channel": "#pg", "after_seq": 15}}))[0]
    assert [r["content"] for r in rows["payload"]["history"]] == [f"m{i}" for i in range(15, 20)]
    store = hub.store()
    assert len(store.history("default", "#pg", after_seq=0, limit=1000)) == 20
    await a.close()
    await b.close()
