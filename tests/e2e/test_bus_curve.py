"""The bus over tcp runs with CURVE: only peers with authorized keys publish or subscribe.

Against the real supervised hub with both bus endpoints on tcp://127.0.0.1. Every
refusal is shown next to its positive control (the same socket with the right keys
gets through), and each refused socket is first seen reaching the broker and having
its handshake refused, so "received nothing" is not "had not connected yet".
Keys and configuration without a hub: tests/component/test_bus_keys.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import zmq
from click.testing import CliRunner
from zmq.auth import load_certificate
from zmq.utils.monitor import recv_monitor_message

from scitex_orochi.cli import main as cli_main
from scitex_orochi.hub.bus import SyncBus, new_origin, pack, unpack
from scitex_orochi.hub.bus_keys import CurveClient, load_client
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.errors import BusError
from scitex_orochi.hub.testing import Hub, free_port
from scitex_orochi.protocol import topics

from support.agent import RawAgent
from support.util import TIME_SCALE, eventually, wait_for

REFUSED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
)
QUIET_WINDOW_S = 1.0  # after the positive control got through, the refused socket still waits


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tcp_env() -> dict[str, str]:
    return {
        "SCITEX_OROCHI_BUS_IN": f"tcp://127.0.0.1:{free_port()}",
        "SCITEX_OROCHI_BUS_OUT": f"tcp://127.0.0.1:{free_port()}",
    }


@pytest.fixture(scope="module")
def curve_hub():
    hub = Hub(extra_env=tcp_env())
    try:
        yield hub.start()
    finally:
        hub.stop()
        hub.cleanup()


class Peer:
    """A raw ZeroMQ socket to the bus, optionally a CURVE client, with its handshake events."""

    def __init__(self, kind: int, endpoint: str, keys: CurveClient | None) -> None:
        self.sock = zmq.Context.instance().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            keys.apply(self.sock)
        self.monitor = self.sock.get_monitor_socket(REFUSED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.events: list[int] = []
        if kind == zmq.SUB:
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.received: list[tuple[bytes, object]] = []

    def poll_events(self) -> list[int]:
        while True:
            try:
                self.events.append(recv_monitor_message(self.monitor, zmq.NOBLOCK)["event"])
            except zmq.Again:
                return self.events

    def refused(self) -> bool:
        return any(e & REFUSED for e in self.poll_events())

    def admitted(self) -> bool:
        return zmq.EVENT_HANDSHAKE_SUCCEEDED in self.poll_events()

    def drain(self) -> list[tuple[bytes, object]]:
        while True:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.received
            if parts[0].startswith(topics.PROBE):
                continue  # readiness probes and barriers carry raw bytes, not msgpack
            self.received.append((parts[0], unpack(parts[1]) if len(parts) > 1 else None))

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


def stranger_keys(cfg: Config) -> CurveClient:
    """A well-formed keypair that is not in the authorized dir, with the right server key."""
    public, secret = zmq.curve_keypair()
    good = load_client(cfg)
    return replace(good, public=public, secret=secret)


def inbound(msg_id: str, channel: str, sender: str) -> bytes:
    """An `in.` body exactly as a gateway publishes it (docs/internals.md, parse_inbound)."""
    frame = {
        "type": "message",
        "sender": sender,
        "id": msg_id,
        "ts": datetime.now(UTC).isoformat(),
        "payload": {
            "channel": channel,
            "content": f"from {sender}",
            "metadata": {},
            "attachments": [],
        },
    }
    return pack(
        {
            "origin": new_origin("curve-test"),
            "ws": "default",
            "sender_type": "agent",
            "mentions": [],
            "frame": frame,
        }
    )


def publish(peer: Peer, body: bytes) -> None:
    peer.sock.send_multipart([topics.inbound("default"), body], zmq.NOBLOCK)


def delivered_ids(peer: Peer) -> set[str]:
    return {
        item["id"]
        for topic, body in peer.drain()
        if topic.startswith(b"dlv.")
        for item in body["items"]
    }


# ---- on the real hub ------------------------------------------------------------


async def test_message_round_trip_with_curve_on(curve_hub):
    assert curve_hub.cfg.bus.curve
    assert "(curve)" in curve_hub.log()  # the broker says it is a CURVE server
    a = await RawAgent.connect(curve_hub.agent_url(), uid("a"), ["#curve"])
    b = await RawAgent.connect(curve_hub.agent_url(), uid("b"), ["#curve"])
    ack = await a.post("#curve", "over an encrypted bus")
    assert ack["type"] == "ack" and ack["payload"]["seq"] >= 1  # acked = stored
    got = await b.wait(lambda f: f.get("id") == ack["payload"]["ref"])
    assert got["payload"]["content"] == "over an encrypted bus"
    store = curve_hub.store()
    try:
        key = ("default", ack["payload"]["ref"])
        assert key in store.find_messages([key])
    finally:
        store.close()
    await a.close()
    await b.close()


async def test_sub_without_keys_reads_nothing_with_keys_reads_traffic(curve_hub):
    plain = Peer(zmq.SUB, curve_hub.cfg.bus.out_endpoint, None)
    keyed = Peer(zmq.SUB, curve_hub.cfg.bus.out_endpoint, load_client(curve_hub.cfg))
    agent = await RawAgent.connect(curve_hub.agent_url(), uid("talker"), ["#secret"])
    try:
        await eventually(plain.refused, 10, "the keyless SUB's handshake refused")
        await eventually(keyed.admitted, 10, "the keyed SUB admitted")
        await eventually(lambda: keyed.drain(), 10, "traffic (snapshots) on the keyed SUB")
        refs = {(await agent.post("#secret", f"secret {i}"))["payload"]["ref"] for i in range(5)}
        await eventually(lambda: refs <= delivered_ids(keyed), 10, "keyed SUB sees the messages")
        deadline = time.monotonic() + QUIET_WINDOW_S * TIME_SCALE
        while time.monotonic() < deadline:
            assert plain.drain() == []
            plain.sock.poll(50)
        assert plain.drain() == [], "a SUB without keys read bus traffic"
        assert not plain.admitted()
    finally:
        await agent.close()
        plain.close()
        keyed.close()


def test_pub_without_keys_stores_nothing_with_keys_is_stored(curve_hub):
    plain = Peer(zmq.PUB, curve_hub.cfg.bus.in_endpoint, None)
    keyed = Peer(zmq.PUB, curve_hub.cfg.bus.in_endpoint, load_client(curve_hub.cfg))
    watcher = Peer(zmq.SUB, curve_hub.cfg.bus.out_endpoint, load_client(curve_hub.cfg))
    watcher.sock.setsockopt(zmq.UNSUBSCRIBE, b"")
    watcher.sock.setsockopt(zmq.SUBSCRIBE, topics.deliver("default", "#forged"))
    intruder_id, insider_id = uuid.uuid4().hex, uuid.uuid4().hex
    store = curve_hub.store()
    try:
        wait_for(plain.refused, 10, "the keyless PUB's handshake refused")
        wait_for(watcher.admitted, 10, "the watching SUB admitted")

        def insider_through() -> bool:
            # Both publish on every poll: republishing defeats the slow joiner for both alike
            # (a duplicate is delivered again, so the watcher sees the insider either way).
            publish(plain, inbound(intruder_id, "#forged", "intruder"))
            publish(keyed, inbound(insider_id, "#forged", "insider"))
            return insider_id in delivered_ids(watcher)

        wait_for(insider_through, 10, "the keyed PUB's message delivered")
        assert ("default", insider_id) in store.find_messages([("default", insider_id)])
        deadline = time.monotonic() + QUIET_WINDOW_S * TIME_SCALE
        while time.monotonic() < deadline:  # a stored intruder would be delivered at once
            publish(plain, inbound(intruder_id, "#forged", "intruder"))
            assert intruder_id not in delivered_ids(watcher)
            watcher.sock.poll(50)
        assert store.find_messages([("default", intruder_id)]) == {}, (
            "a PUB without keys wrote a message"
        )
        assert [m["sender"] for m in store.history("default", "#forged")] == ["insider"]
    finally:
        store.close()
        for peer in (plain, keyed, watcher):
            peer.close()


async def test_unauthorized_keypair_gets_nothing_until_authorized(curve_hub):
    cfg = curve_hub.cfg
    stranger = stranger_keys(cfg)
    sub = Peer(zmq.SUB, cfg.bus.out_endpoint, stranger)
    pub = Peer(zmq.PUB, cfg.bus.in_endpoint, stranger)
    agent = await RawAgent.connect(curve_hub.agent_url(), uid("talker"), ["#closed"])
    store = curve_hub.store()
    forged = uuid.uuid4().hex
    try:
        await eventually(sub.refused, 10, "the stranger SUB refused")
        await eventually(pub.refused, 10, "the stranger PUB refused")
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in sub.events  # refused by ZAP, by key
        ack = await agent.post("#closed", "not for strangers")
        publish(pub, inbound(forged, "#closed", "stranger"))
        # The bus client says why, within its timeout, instead of hanging.
        bus = SyncBus(
            cfg.bus.in_endpoint, cfg.bus.out_endpoint, new_origin("stranger"), curve=stranger
        )
        started = time.monotonic()
        with pytest.raises(BusError, match="refused this client's CURVE key"):
            bus.wait_ready(2.0)
        assert time.monotonic() - started < 2.0 + 2.0 * TIME_SCALE
        bus.close()
        assert sub.drain() == [] and not sub.admitted()
        assert store.find_messages([("default", forged)]) == {}

        # Positive control: the same path with a keypair minted by `bus-keys add-client`
        # works at once, without restarting the broker.
        result = CliRunner().invoke(
            cli_main, ["bus-keys", "add-client", "gw-test", "--json"], env=curve_hub.env
        )
        assert result.exit_code == 0, result.output
        secret_file = cfg.bus.keys_dir / "clients" / "gw-test.key_secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        public, secret = load_certificate(secret_file)
        minted = replace(stranger, public=public, secret=secret)
        bus = SyncBus(cfg.bus.in_endpoint, cfg.bus.out_endpoint, new_origin("minted"), curve=minted)
        bus.subscribe(topics.DELIVER)
        bus.wait_ready(10)
        ack2 = await agent.post("#closed", "for the authorized")
        got = wait_for(
            lambda: [
                i
                for _t, b in bus.recv_burst(100, 0.05)
                for i in b.get("items", ())
                if i["id"] == ack2["payload"]["ref"]
            ],
            10,
            "the minted key reads deliveries",
        )
        assert got[0]["seq"] == ack2["payload"]["seq"]
        bus.close()
        assert ack["payload"]["ref"] != ack2["payload"]["ref"]
    finally:
        store.close()
        await agent.close()
        sub.close()
        pub.close()


def test_wrong_server_key_is_a_clear_error(curve_hub):
    cfg = curve_hub.cfg
    wrong_server, _ = zmq.curve_keypair()
    keys = replace(load_client(cfg), server_public=wrong_server)
    bus = SyncBus(cfg.bus.in_endpoint, cfg.bus.out_endpoint, new_origin("wrong"), curve=keys)
    try:
        with pytest.raises(BusError, match="CURVE") as err:
            bus.wait_ready(1.0)
    finally:
        bus.close()
    assert str(cfg.bus.server_key) in str(err.value)


async def test_broker_stops_cleanly_and_clients_rejoin_after_restart(curve_hub):
    """SIGTERM also stops the ZAP thread in time; after a restart every CURVE client
    handshakes again and the message path works."""
    started = time.monotonic()
    result = curve_hub.ctl("stop", "broker")
    assert result.returncode == 0, result.stdout + result.stderr

    def exit_line() -> str:
        return next(
            (line for line in reversed(curve_hub.log().splitlines()) if "stopped: broker " in line),
            "",
        )

    assert "(exit status 0)" in wait_for(exit_line, 20, "broker stop line")
    assert time.monotonic() - started < 10 * TIME_SCALE
    assert curve_hub.ctl("start", "broker").returncode == 0
    agent = await RawAgent.connect(curve_hub.agent_url(), uid("after"), ["#again"])
    try:
        ack = await agent.post("#again", "after the broker restart", timeout=30)
        assert ack["payload"]["seq"] == 1
    finally:
        await agent.close()


# ---- a remote process without keys ------------------------------------------------
def test_remote_gateway_process_exits_with_the_reason(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCITEX_OROCHI_")}
    env.update(
        {
            "SCITEX_OROCHI_DATA_DIR": str(tmp_path / "remote"),
            **tcp_env(),
            "SCITEX_OROCHI_PORT": str(free_port()),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway_ws"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30 * TIME_SCALE,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'remote' / 'bus-keys' / 'server.key'} is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
