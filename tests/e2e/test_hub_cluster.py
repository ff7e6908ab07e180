"""Several gateways, process faults and clean shutdown, on the real supervised stack."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from support.agent import RawAgent
from support.util import TIME_SCALE, eventually, wait_for

MAX_CONNECT_TRIES = 60


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def connect_on(hub, gateways: dict[str, list[RawAgent]], want: int, channels) -> None:
    """Connect agents until `want` distinct gateways hold at least one (SO_REUSEPORT spreads)."""
    for _ in range(MAX_CONNECT_TRIES):
        if len([g for g, agents in gateways.items() if agents]) >= want:
            return
        agent = await RawAgent.connect(hub.agent_url(), None, register=False)
        agent.name = uid("ag")
        replies = await agent.request(
            {"type": "register", "sender": agent.name, "payload": {"channels": channels}}
        )
        gateways.setdefault(replies[-1]["payload"]["gateway"], []).append(agent)
    raise AssertionError(f"agents landed on only {list(gateways)} after {MAX_CONNECT_TRIES}")


async def presence_of(agent: RawAgent) -> dict:
    return (await agent.request({"type": "presence"}))[0]["payload"]["agents"]


@pytest.fixture
def hub2(hub_factory):
    return hub_factory(ws_procs=2)


async def test_agents_on_different_gateways_see_each_other(hub2):
    gateways: dict[str, list[RawAgent]] = {}
    await connect_on(hub2, gateways, 2, ["#mesh"])
    (g1, on1), (g2, on2) = list(gateways.items())[:2]
    a, b = on1[0], on2[0]

    async def both_visible():
        p = await presence_of(a)
        return a.name in p and b.name in p

    await eventually(both_visible, 5, "cross-gateway presence")
    ack = await a.post("#mesh", f"hello @{b.name}")
    got = await b.wait(lambda f: f.get("id") == ack["payload"]["ref"])
    assert got["payload"]["seq"] == ack["payload"]["seq"]
    # A mention reaches an agent on the other gateway that is not in the channel.
    c = next(iter(x for x in on2 if x is not b), None)
    if c is None:
        c = await RawAgent.connect(hub2.agent_url(), uid("lonely"), ["#solo"])
    else:
        await c.request({"type": "unsubscribe", "payload": {"channel": "#mesh"}})
    ack = await a.post("#mesh", f"ping @{c.name}")
    await c.wait(lambda f: f.get("id") == ack["payload"]["ref"])
    for agents in gateways.values():
        for agent in agents:
            await agent.close()


async def test_duplicate_name_on_another_gateway_closes_the_older(hub2):
    gateways: dict[str, list[RawAgent]] = {}
    await connect_on(hub2, gateways, 2, ["#dupe"])
    (g1, on1), (g2, on2) = list(gateways.items())[:2]
    old = on1[0]
    # Connect with old's name until the new socket lands on the other gateway.
    for _ in range(MAX_CONNECT_TRIES):
        new = await RawAgent.connect(hub2.agent_url(), None, register=False)
        new.name = old.name
        replies = await new.request(
            {"type": "register", "sender": old.name, "payload": {"channels": ["#dupe"]}}
        )
        if replies[-1]["payload"]["gateway"] == g2:
            break
        # Landed on the same gateway: that replaced `old` locally; use it as the old one.
        old = new
    else:
        raise AssertionError("could not land a duplicate on the other gateway")
    code, reason = await asyncio.wait_for(old.closed, 10 * TIME_SCALE)
    assert (code, reason) == (4000, "Replaced by new connection")
    assert not new.closed.done()
    p = await presence_of(on2[0])
    assert p.get(new.name) == ["#dupe"]


async def test_killed_gateway_expires_from_the_others(hub2):
    gateways: dict[str, list[RawAgent]] = {}
    await connect_on(hub2, gateways, 2, ["#k"])
    victims_gw, victims = next(iter(gateways.items()))
    survivors = [a for g, agents in gateways.items() if g != victims_gw for a in agents]
    watcher = survivors[0]

    async def listed():
        p = await presence_of(watcher)
        return all(v.name in p for v in victims)

    await eventually(listed, 5, "victims listed")
    program = next(
        p
        for p, (_, pid) in hub2.status().items()
        if p.startswith("gateway_ws") and str(pid) in victims_gw.split("-")
    )
    old_pid = hub2.kill(program, signal.SIGKILL)
    started = time.monotonic()

    async def gone():
        p = await presence_of(watcher)
        return not any(v.name in p for v in victims)

    await eventually(gone, 10, "victims expired")
    elapsed = time.monotonic() - started
    # expiry = 3 x 0.5 s snapshots in the test hub; allow scheduling slack.
    assert elapsed < 5 * TIME_SCALE, elapsed
    for v in victims:
        assert v.closed.done() or await asyncio.wait_for(v.closed, 5)
    hub2.wait_restarted(program, old_pid)


def supervisord_exit_line(hub, program: str) -> str:
    def line():
        for text in reversed(hub.log().splitlines()):
            if f"stopped: {program} " in text:
                return text
        return ""

    return wait_for(line, 20, f"{program} stop line")


@pytest.mark.parametrize(
    "program", ["broker", "persister", "gateway_ws:gateway_ws_00", "gateway_http"]
)
def test_sigterm_exits_cleanly_within_the_deadline(hub, program):
    started = time.monotonic()
    result = hub.ctl("stop", program)
    assert result.returncode == 0, result.stdout + result.stderr
    name = program.split(":")[-1]
    line = supervisord_exit_line(hub, name)
    assert "(exit status 0)" in line, line
    assert time.monotonic() - started < 10
    hub.ctl("start", program)


async def test_persister_and_broker_restarts_lose_nothing_acked(hub):
    store = hub.store()
    sender = await RawAgent.connect(hub.agent_url(), uid("s"), ["#durable"])
    receiver = await RawAgent.connect(hub.agent_url(), uid("r"), ["#durable"])
    acked: dict[str, int] = {}

    async def send_batch(n: int, timeout: float) -> None:
        ids = []
        for i in range(n):
            ids.append(
                await sender.send(
                    {
                        "type": "message",
                        "payload": {"channel": "#durable", "content": f"m{len(acked) + i}"},
                    }
                )
            )
        for mid in ids:
            ack = await sender.ack_of(mid, timeout)
            acked[mid] = ack["payload"]["seq"]

    await send_batch(20, 5)
    for program in ("persister", "broker"):
        old = hub.kill(program, signal.SIGKILL)
        # Messages sent while the process is down are acked once it is back.
        await send_batch(20, 30)
        hub.wait_restarted(program, old)
        await send_batch(20, 30)
    rows = store.history("default", "#durable", after_seq=0, limit=1000)
    stored = [r["msg_id"] for r in rows]
    assert sorted(stored) == sorted(acked), "every acked message stored exactly once"
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert sorted(acked.values()) == list(range(1, len(acked) + 1))

    # The receiver stayed connected: it has every message, in seq order, once
    # (gaps left by the broker restart are filled from the database).
    async def complete():
        return len(receiver.messages("#durable")) >= len(acked)

    await eventually(complete, 20, "receiver complete")
    seqs = [m["payload"]["seq"] for m in receiver.messages("#durable")]
    assert seqs == list(range(1, len(acked) + 1))


def test_tail_prints_bus_traffic(hub):
    env = dict(hub.env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scitex_orochi.cli",
            "tail",
            "dlv.",
            "--json",
            "-n",
            "1",
            "--timeout",
            "30",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner: list[str] = []
    reader = threading.Thread(target=lambda: banner.append(proc.stderr.readline()), daemon=True)
    reader.start()
    try:
        # tail prints its banner once its subscription has made the round trip.
        wait_for(
            lambda: proc.poll() is not None or any("tailing" in b for b in banner), 10, "tail ready"
        )

        async def post():
            agent = await RawAgent.connect(hub.agent_url(), uid("t"), ["#tail"])
            ack = await agent.post("#tail", "seen by tail")
            await agent.close()
            return ack

        ack = asyncio.run(post())
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    line = json.loads(out.strip().splitlines()[-1])
    assert line["topic"] == "dlv.default.#tail|"
    item = line["body"]["items"][0]
    assert item["id"] == ack["payload"]["ref"]
    assert json.loads(item["frame"])["payload"]["content"] == "seen by tail"


def test_tail_human_output(hub):
    result = subprocess.run(
        [sys.executable, "-m", "scitex_orochi.cli", "tail", "snap|", "-n", "1", "--timeout", "20"],
        env=hub.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "snap| gw=gw-" in result.stdout


async def test_status_and_heartbeats_travel_over_the_bus(hub):
    from scitex_orochi.hub.bus import SyncBus, new_origin

    bus = SyncBus(hub.cfg.bus.in_endpoint, hub.cfg.bus.out_endpoint, new_origin("test"))
    bus.subscribe(b"pres.default|")
    bus.wait_ready(10)
    agent = await RawAgent.connect(hub.agent_url(), uid("st"), ["#s"], machine="box")
    await agent.request(
        {"type": "status_update", "payload": {"status": "busy", "current_task": "compiling"}}
    )
    await agent.request(
        {"type": "heartbeat", "payload": {"cpu_count": 8, "mem_used_percent": 12.5}}
    )
    events = {}
    deadline = time.monotonic() + 10
    while len(events) < 3 and time.monotonic() < deadline:
        for _topic, body in bus.recv_burst(100, timeout_s=0.2):
            if body["agent"]["name"] == agent.name:
                events[body["event"]] = body["agent"]
    bus.close()
    assert events["connected"]["agent_id"] == f"{agent.name}@box"
    assert events["status"]["status"] == "busy"
    assert events["status"]["current_task"] == "compiling"
    assert events["heartbeat"]["resources"] == {"cpu_count": 8, "mem_used_percent": 12.5}
    await agent.close()


async def test_silent_agents_are_reaped(hub_factory):
    hub = hub_factory(extra_env={"SCITEX_OROCHI_REAP_AFTER_S": "1.0"})
    silent = await RawAgent.connect(hub.agent_url(), uid("quiet"), ["#r"])
    code, reason = await asyncio.wait_for(silent.closed, 10 * TIME_SCALE)
    assert (code, reason) == (4002, "Idle timeout")
