"""Every memory bound, measured as resident memory of the real process under load.

Each scenario is one that grew without bound before (figures from the safety review):
the persister's dedupe cache held whole messages, history replies were one frame of
any size, send queues were bounded by frame count only, the auth cache kept every
random token tried, and unacked messages piled up while the persister was away.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from datetime import UTC, datetime

import pytest
import websockets

from scitex_orochi.hub.testing import Hub

from support.agent import RawAgent
from support.util import TIME_SCALE, eventually

pytestmark = pytest.mark.slow

MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def mem_hub(hub_factory):
    def start(**env: str) -> Hub:
        return hub_factory(extra_env={f"SCITEX_OROCHI_{k}": v for k, v in env.items()})

    return start


async def test_persister_remembers_ids_not_messages(mem_hub):
    """It held 100,000 whole messages: 2.6 GB after 2.5 GiB posted."""
    hub = mem_hub(MAX_FRAME_BYTES=str(2 * MB))
    pid = hub.pid("persister")
    agent = await RawAgent.connect(hub.agent_url(), "big-poster", ["#big"])
    await agent.post("#big", "warm-up")
    before = rss_bytes(pid)
    body = "p" * (400 * 1024)
    for i in range(600):  # 240 MB of messages, every one kept by the old cache
        ack = await agent.post("#big", f"{i} {body}", timeout=20)
        assert ack["payload"]["status"] == "ok"
    grown = rss_bytes(pid) - before
    print(f"\npersister RSS grew {grown / MB:.1f} MB after 240 MB posted")
    assert grown < 80 * MB
    await agent.close()


async def test_history_replies_hold_one_page(mem_hub):
    """Three queries of a channel of 1 MB messages held 3 GB in the gateway (381 MB each)."""
    hub = mem_hub()
    from scitex_orochi.hub.store import Store

    store = Store(hub.cfg.db.url)
    now = datetime.now(UTC)
    try:
        store.insert_messages(
            [
                {
                    "msg_id": f"h{i}",
                    "workspace_id": "default",
                    "channel": "#huge",
                    "seq": i,
                    "ts": now.isoformat(),
                    "ts_epoch": now.timestamp(),
                    "sender": "x",
                    "sender_type": "agent",
                    "content": "h" * 900_000,
                    "mentions": [],
                    "metadata": {},
                    "attachments": [],
                }
                for i in range(1, 301)
            ]
        )
    finally:
        store.close()
    pid = hub.pid("gateway_ws:gateway_ws_00")
    readers = [await RawAgent.connect(hub.agent_url(), f"reader-{i}") for i in range(3)]
    before = rss_bytes(pid)
    replies = await asyncio.gather(
        *(
            r.request({"type": "query", "payload": {"channel": "#huge", "limit": 1000}}, timeout=30)
            for r in readers
        )
    )
    grown = rss_bytes(pid) - before
    for reader, frames in zip(readers, replies, strict=True):
        assert frames[0]["payload"]["more"] is True
        assert max(len(raw.encode()) for raw in reader.raw) <= 1_000_000
    print(f"\ngateway RSS grew {grown / MB:.1f} MB for three queries of a 270 MB channel")
    assert grown < 60 * MB
    for reader in readers:
        await reader.close()


async def test_a_non_reading_agent_pins_at_most_its_byte_bound(mem_hub):
    """Frame-count queues let one non-reading agent pin 1.2 GB of the gateway."""
    hub = mem_hub(MAX_FRAME_BYTES=str(2 * MB))
    pid = hub.pid("gateway_ws:gateway_ws_00")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((hub.host, hub.port))
    stalled = await websockets.connect(hub.agent_url(), sock=sock, max_size=None, max_queue=1)
    await stalled.send('{"type":"register","sender":"stalled","payload":{"channels":["#pin"]}}')
    await stalled.recv()
    sender = await RawAgent.connect(hub.agent_url(), "pin-sender", ["#pin"])
    before = rss_bytes(pid)
    peak = before
    for i in range(400):  # 200 MB addressed to the stalled agent
        await sender.post("#pin", f"{i} " + "q" * 500_000, timeout=20)
        if i % 20 == 0:
            peak = max(peak, rss_bytes(pid))
    peak = max(peak, rss_bytes(pid))
    print(f"\ngateway RSS peaked {(peak - before) / MB:.1f} MB above its start")
    assert peak - before < 60 * MB

    async def gone() -> bool:  # closed as a slow consumer (after its close grace at most)
        seen = await sender.request({"type": "presence"})
        return "stalled" not in seen[0]["payload"]["agents"]

    await eventually(gone, 40, "the stalled agent closed")
    sock.close()
    await sender.close()


async def test_random_tokens_do_not_grow_the_auth_cache(mem_hub):
    """The gateway kept every random token ever tried: +167 MB per 20,000 handshakes."""
    hub = mem_hub(MAX_CONNECTIONS_PER_ADDR="100000")
    pid = hub.pid("gateway_ws:gateway_ws_00")
    before = rss_bytes(pid)
    sem = asyncio.Semaphore(50)

    async def attempt() -> None:
        async with sem:
            url = f"{hub.ws_url}/?token=wks_{uuid.uuid4().hex}{'x' * 4000}"
            ws = await websockets.connect(url)
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
            await ws.close()

    await asyncio.gather(*(attempt() for _ in range(6000)))
    grown = rss_bytes(pid) - before
    print(f"\ngateway RSS grew {grown / MB:.1f} MB after 6,000 refused handshakes")
    assert grown < 15 * MB


async def test_unacked_messages_are_bounded_while_the_persister_is_away(mem_hub):
    """With the persister stopped, a gateway held every unacked message (and republished
    each every second): now it holds up to its byte bound and refuses with OVERLOADED."""
    hub = mem_hub(INGEST_PENDING_MAX_BYTES=str(32 * MB), MAX_FRAME_BYTES=str(2 * MB))
    gw = hub.pid("gateway_ws:gateway_ws_00")
    persister = hub.pid("persister")
    agent = await RawAgent.connect(hub.agent_url(), "while-away", ["#away"])
    before = rss_bytes(gw)
    os.kill(persister, signal.SIGSTOP)
    try:
        ids = [
            await agent.send(
                {
                    "type": "message",
                    "payload": {"channel": "#away", "content": f"{i} " + "a" * 500_000},
                }
            )
            for i in range(200)
        ]
        overloaded = await agent.wait(
            lambda f: f["type"] == "error" and f["payload"].get("code") == "OVERLOADED", 30
        )
        assert overloaded["payload"]["retry_after_s"] > 0
        grown = rss_bytes(gw) - before
    finally:
        os.kill(persister, signal.SIGCONT)
    print(f"\ngateway RSS grew {grown / MB:.1f} MB holding unacked messages (bound 32 MB)")
    assert grown < 90 * MB

    # Back: every message is answered, refused ones with OVERLOADED, the others stored.
    def answered(ref: str) -> dict | None:
        return next(
            (f for f in agent.frames if f["type"] == "ack" and f["payload"].get("ref") == ref), None
        )

    await eventually(
        lambda: all(answered(i) for i in ids),
        60 * TIME_SCALE,
        "every message answered after SIGCONT",
    )
    stored = [i for i in ids if answered(i)["payload"]["status"] == "ok"]
    refused = [i for i in ids if answered(i)["payload"]["status"] == "error"]
    assert stored and refused and len(stored) + len(refused) == len(ids)
    assert len(stored) * 500_000 < 40 * MB  # what the byte bound let in
    history = await agent.request(
        {"type": "query", "payload": {"channel": "#away", "after_seq": 0, "limit": 1000}}
    )
    assert history[0]["payload"]["history"][0]["content"].startswith("0 ")
    await agent.close()
