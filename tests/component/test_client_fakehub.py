"""The agent client (OrochiClient, SyncOrochiClient) over a real socket against
`support.fakehub.FakeHub`, a scripted hub in this process speaking PROTOCOL.md
(the client's pure rules are tests/unit/test_client_unit.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.core import Backoff
from scitex_orochi.client.errors import (
    AuthError,
    ConnectionFailed,
    Replaced,
    RequestTimeout,
    ServerError,
)
from scitex_orochi.client.sync import SyncOrochiClient

from support.fakehub import FakeHub

FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05)
WAIT_S = 10.0


def client(hub: FakeHub, name: str, **kw) -> OrochiClient:
    kw.setdefault("channels", ["#g"])
    return OrochiClient(
        name,
        host="127.0.0.1",
        port=hub.port,
        token=kw.pop("token", hub.token),
        backoff=FAST,
        timeout=WAIT_S,
        connect_timeout=WAIT_S,
        **kw,
    )


async def test_send_is_acked_with_seq_and_delivered_to_others():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        sent = await a.send("#g", "hello @b")
        assert (sent.channel, sent.seq, sent.dup) == ("#g", 1, False)
        msg = await b.recv(WAIT_S)
        assert (msg.sender, msg.content, msg.seq, msg.mentions) == ("a", "hello @b", 1, ["b"])
        assert set(await a.who()) == {"a", "b"}
        history = await b.query_history("#g", limit=5)
        assert [m.content for m in history] == ["hello @b"]


@pytest.mark.parametrize("refs", [True, False])
async def test_concurrent_calls_stay_in_step_while_messages_arrive(refs):
    async with FakeHub(refs_on_replies=refs) as hub, client(hub, "a") as a, client(hub, "b") as b:
        for i in range(5):
            hub.post("x", "#h", f"h{i}")

        async def flood():
            for i in range(30):
                await b.send("#g", f"m{i}")

        calls = [a.query_history("#h", limit=i + 1) for i in range(5)]
        calls += [a.who() for _ in range(5)] + [a.send("#g", f"s{i}") for i in range(5)]
        results, _ = await asyncio.gather(asyncio.gather(*calls), flood())
        assert [len(r) for r in results[:5]] == [1, 2, 3, 4, 5]
        assert all(isinstance(r, dict) and "a" in r for r in results[5:10])
        assert sorted(r.content for r in [await a.recv(WAIT_S) for _ in range(30)]) == sorted(
            f"m{i}" for i in range(30)
        )


async def test_bad_token_raises_auth_error_without_retrying():
    async with FakeHub(token="right") as hub:
        with pytest.raises(AuthError, match="refused the token"):
            await client(hub, "a", token="wrong").connect()
        assert hub.registrations == 0


async def test_cannot_connect_names_the_url():
    async with FakeHub() as hub:
        port = hub.port
    with pytest.raises(ConnectionFailed, match=f"ws://127.0.0.1:{port}/") as info:
        await OrochiClient("a", port=port, token="t", connect_timeout=2).connect()
    assert "token" not in str(info.value)


async def test_second_register_of_a_name_replaces_the_first():
    async with FakeHub() as hub, client(hub, "a") as first:
        async with client(hub, "a"):
            with pytest.raises(Replaced):
                await asyncio.wait_for(first.recv(), WAIT_S)
            with pytest.raises(Replaced):
                await first.who()


async def test_unknown_request_type_is_a_server_error():
    async with FakeHub() as hub, client(hub, "a") as a:
        with pytest.raises(ServerError, match="UNKNOWN_TYPE"):
            await a._request("bogus", {})


async def test_unacked_request_times_out_clearly():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.hold_acks = True
        with pytest.raises(RequestTimeout, match="no reply to message"):
            await a.send("#g", "x", timeout=0.2)


async def test_resume_after_a_drop_yields_each_missed_message_once_in_order():
    async with FakeHub() as hub, client(hub, "a", channels=["#g", "#k"]) as a:
        await hub.deliver("x", "#g", "before")
        assert (await a.recv(WAIT_S)).content == "before"
        await hub.drop_all()
        for i in range(5):  # stored while `a` is away
            hub.post("x", "#g", f"g{i}")
            hub.post("x", "#k", f"k{i}")
        hub.post("x", "#other", "not for a")
        hub.post("x", "#other", "for @a")
        await hub.wait_registrations(2)
        await hub.deliver("x", "#g", "live")
        got = [await a.recv(WAIT_S) for _ in range(11)]
        per = {c: [m.content for m in got if m.channel == c] for c in ("#g", "#k")}
        assert per["#g"] == [f"g{i}" for i in range(5)] + ["live"]
        assert per["#k"] == [f"k{i}" for i in range(5)]
        assert a.pending_messages() == 0 and a.reconnects == 1


async def test_unacked_send_is_resent_with_the_same_id_after_a_drop():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.hold_acks = True
        task = asyncio.create_task(a.send("#g", "once"))
        await hub.wait_stored("#g", 1)
        hub.hold_acks = False
        await hub.drop_all()
        sent = await asyncio.wait_for(task, WAIT_S)
        assert sent.dup and sent.seq == 1 and len(hub.rows["#g"]) == 1
        sends = [f for f in hub.frames if f["type"] == "message"]
        assert len(sends) == 2 and sends[0]["id"] == sends[1]["id"] == sent.id


async def test_a_gap_in_live_seq_is_filled_from_history():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.post("x", "#g", "skipped")  # stored, never delivered live
        await hub.deliver("x", "#g", "seen")
        got = [await a.recv(WAIT_S) for _ in range(2)]
        assert [(m.seq, m.content) for m in got] == [(1, "skipped"), (2, "seen")]


async def test_heartbeat_carries_metrics_and_subscribe_changes_membership():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        await a.heartbeat()
        beat = next(f for f in hub.frames if f["type"] == "heartbeat")
        assert "cpu_count" in beat["payload"]
        await a.subscribe("#new")
        await a.update_status("busy", current_task="testing")
        await b.send("#new", "on new")
        assert (await a.recv(WAIT_S)).channel == "#new"
        await a.unsubscribe("#new")
        assert "a" not in hub.members["#new"]


async def test_listen_ends_when_the_client_closes():
    async with FakeHub() as hub:
        a = await client(hub, "a").connect()
        seen: list[str] = []

        async def consume():
            async for msg in a.listen():
                seen.append(msg.content)

        task = asyncio.create_task(consume())
        await hub.deliver("x", "#g", "one")
        await a.close()
        await asyncio.wait_for(task, WAIT_S)
        assert seen == ["one"]


def test_sync_client_in_a_script():
    ready = threading.Event()
    stop: asyncio.Future | None = None
    box: dict = {}

    def run_hub():
        async def main():
            nonlocal stop
            async with FakeHub() as hub:
                box["hub"] = hub
                stop = asyncio.get_running_loop().create_future()
                box["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop

        asyncio.run(main())

    thread = threading.Thread(target=run_hub, daemon=True)
    thread.start()
    assert ready.wait(WAIT_S)
    hub = box["hub"]
    try:
        with (
            SyncOrochiClient("s", port=hub.port, token=hub.token, channels=["#g"]) as a,
            SyncOrochiClient("t", port=hub.port, token=hub.token, channels=["#g"]) as b,
        ):
            sent = a.send("#g", "from a script")
            assert sent.seq == 1
            assert b.recv(timeout=WAIT_S).content == "from a script"
            assert set(a.who()) == {"s", "t"}
            assert [m.content for m in b.query_history("#g")] == ["from a script"]
    finally:
        box["loop"].call_soon_threadsafe(stop.set_result, None)
        thread.join(WAIT_S)
