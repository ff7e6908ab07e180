"""The HTTP gateway's pure pieces, with literal inputs: agent health classes, REST envelopes,
the connection guard, Host policy, access-log redaction, observer tickets, upload file
names, and an observer's bounded queue against a socket that never drains."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gateway_http.accesslog import redact_target
from gateway_http.auth import Scope
from gateway_http.edge import ConnectionGuard
from gateway_http.errors import ApiError
from gateway_http.health import classify
from gateway_http.hosts import HostPolicy, host_name
from gateway_http.observers import Observer
from gateway_http.posting import build_envelope
from gateway_http.service import Counters
from gateway_http.tickets import TicketStore
from gateway_http.uploads import safe_filename
from scitex_orochi.hub.config import Config


def test_health_classes_follow_last_seen_and_status():
    now = 1000.0
    assert classify({"last_seen": now - 5, "status": "busy"}, now).health == "healthy"
    assert classify({"last_seen": now - 5, "status": "idle"}, now).health == "idle"
    assert classify({"last_seen": now - 5, "status": "error"}, now).health == "stale"
    assert classify({"last_seen": now - 61, "status": "busy"}, now).health == "stale"
    assert classify({"last_seen": now - 301, "status": "busy"}, now).health == "dead"
    assert classify({"last_seen": now - 1}, now, online=False).health == "dead"


def test_build_envelope_validates_like_the_agent_protocol():
    env = build_envelope({"sender": "ann", "payload": {"channel": "general", "content": "hi"}})
    assert env["payload"]["channel"] == "#general" and env["sender"] == "ann"
    assert env["payload"]["metadata"] == {} and env["payload"]["attachments"] == []
    with pytest.raises(ApiError) as exc:
        build_envelope({"sender": "ann", "payload": {"content": "hi"}})
    assert exc.value.message == "payload.channel is required"
    with pytest.raises(ApiError) as exc:
        build_envelope({"sender": "ann", "payload": {"channel": "#g", "content": 5}})
    assert exc.value.body["field"] == "payload.content"
    with pytest.raises(ApiError) as exc:
        build_envelope({"sender": 7, "payload": {"channel": "#g"}})
    assert exc.value.body["field"] == "sender"


def test_guard_counts_per_address_and_in_total():
    guard = ConnectionGuard(max_per_addr=2, max_total=3)
    assert guard.admit("a") is None and guard.admit("a") is None
    assert guard.admit("a") == "per_address"
    assert guard.admit("b") is None
    assert guard.admit("c") == "total"
    guard.release("a")
    assert guard.admit("c") is None
    assert guard.open == 3 and guard.by_addr == {"a": 1, "b": 1, "c": 1}
    assert guard.refused == {"per_address": 1, "total": 1}
    for addr in ("a", "b", "c"):
        guard.release(addr)
    assert guard.open == 0 and guard.by_addr == {}


def test_host_names_and_policy():
    assert host_name("Hub.Example.:8559") == "hub.example"
    assert host_name("[::1]:8559") == "::1" and host_name("[fe80::1]") == "fe80::1"
    assert host_name("127.0.0.1:80") == "127.0.0.1"
    policy = HostPolicy("127.0.0.1", ("hub.example", ".corp.example"))
    for ok in (
        "127.0.0.1",
        "127.0.0.1:8559",
        "10.1.2.3",
        "[::1]:8559",
        "[::1]",
        "localhost",
        "LOCALHOST:8559",
        "hub.example",
        "hub.example:443",
        "corp.example",
        "a.b.corp.example",
        None,
    ):
        assert policy.allows(ok), ok
    for bad in (
        "evil.example",
        "evil.example:8559",
        "hub.example.evil.example",
        "xcorp.example",
        "2130706433",
        "",
        "localhost.evil.example",
    ):
        assert not policy.allows(bad), bad
    assert HostPolicy("127.0.0.1", ("*",)).allows("anything.example")


def test_redact_target_takes_out_every_secret():
    token = "wks_" + "ab" * 16
    cases = {
        f"/api/agents?token={token}&limit=5": "/api/agents?token=***&limit=5",
        "/ws?ticket=wst_abcdefghijklmnop&workspace=lab": "/ws?ticket=***&workspace=lab",
        "/?TOKEN=s3cr3t-admin": "/?TOKEN=***",
        "/x?bot_token=1&access_token=2&password=3": "/x?bot_token=***&access_token=***"
        "&password=***",
        f"/api/workspaces/lab/tokens/{token}": "/api/workspaces/lab/tokens/***",
        "/api/workspaces/lab/invites/inv_abcdefgh123": "/api/workspaces/lab/invites/***",
        "/api/invites/redeem": "/api/invites/redeem",
        f"/media/2026-01/x.png?t={token}": "/media/2026-01/x.png?t=wks_***",
    }
    for raw, safe in cases.items():
        assert redact_target(raw) == safe, raw


def test_tickets_are_single_use_expire_and_are_bounded():
    now = [100.0]
    store = TicketStore(ttl_s=30.0, max_tickets=3, clock=lambda: now[0])
    first = store.issue("tok-a")
    assert first.startswith("wst_") and len(first) > 30
    assert store.redeem(first) == "tok-a"
    assert store.redeem(first) is None  # once
    late = store.issue("tok-b")
    now[0] += 30.0
    assert store.redeem(late) is None  # expired
    tickets = [store.issue(f"tok-{i}") for i in range(5)]
    assert len(store) == 3  # the oldest outstanding ones gave way
    assert store.redeem(tickets[0]) is None and store.redeem(tickets[-1]) == "tok-4"
    now[0] += 31.0
    store.issue("tok-x")
    assert len(store) == 1  # expired ones are dropped as new ones are issued


def test_client_file_names_never_reach_the_file_system():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\win.ini") == "win.ini"
    assert safe_filename("") == "upload"
    assert safe_filename('a"<b>.png') == "ab.png"


class _StuckSocket:
    """A socket whose sends never complete: the slowest possible browser."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.closed_with: int | None = None

    async def send_str(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, message: bytes = b"") -> None:
        self.closed_with = code
        self.closed.set()


async def test_a_slow_observer_is_closed_with_4008():
    hub = SimpleNamespace(
        cfg=Config.load({}, {"ws": {"send_queue_max_frames": 3}}), counters=Counters()
    )
    stuck = _StuckSocket()
    slow = Observer(stuck, Scope("t", False, "default"), hub)
    slow.start()
    # enqueue is synchronous: fan-out never waits on a socket, however slow.
    results = [slow.enqueue(f"frame {i}") for i in range(6)]
    assert results[:3] == [True, True, True] and results[-1] is False
    await asyncio.wait_for(stuck.closed.wait(), 5)
    assert stuck.closed_with == 4008
    assert hub.counters.observer_slow_closes == 1
    assert not slow.enqueue("after close")
    await slow.stop()
