"""The pure pieces behind the hub's bounds and fairness, with literal inputs and an
injected clock: token cache, token buckets, republish backoff, names, values, paging."""

from __future__ import annotations

import json
import logging
import random

import msgpack
import pytest

from gateway_ws.limits import Limits
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.errors import IngestFull
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.loops import ErrorOnce
from scitex_orochi.hub.ratelimit import BucketMap, TokenBucket
from scitex_orochi.hub.tokens import TokenCache
from scitex_orochi.protocol import codec


# ---- token cache -----------------------------------------------------------------------
def test_token_cache_keeps_successes_only_and_is_bounded():
    cache: TokenCache[str] = TokenCache(max_entries=3, ttl_s=2.0)
    for i in range(1000):
        cache.put(f"random-{i}", None, now=0.0)  # failed lookups
    assert len(cache) == 0
    for i in range(10):
        cache.put(f"tok{i}", f"auth{i}", now=0.0)
    assert len(cache) == 3 and cache.get("tok9", 1.0) == "auth9"
    assert cache.get("tok0", 1.0) is None  # the oldest went first
    assert cache.get("tok9", 2.5) is None  # expired
    cache.put("a", "ws1", 0.0)
    cache.put("b", "ws2", 0.0)
    cache.forget(where=lambda v: v == "ws1")
    assert cache.get("a", 0.1) is None and cache.get("b", 0.1) == "ws2"


# ---- token buckets ---------------------------------------------------------------------
def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate_per_s=10.0, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    wait = bucket.take(0.0)
    assert wait == pytest.approx(0.1)
    assert bucket.take(0.1) == 0.0  # one token refilled
    assert bucket.take(100.0) == 0.0 and bucket.tokens == 4.0  # refill is capped at burst


def test_bucket_map_is_bounded_and_forgets_full_buckets_first():
    buckets = BucketMap(rate_per_s=1.0, burst=2, max_keys=3)
    for key in "abc":
        buckets.get(key, 0.0).take(0.0)
    buckets.get("d", 10.0)  # a, b, c have refilled by now: they are forgotten
    assert set(buckets._buckets) == {"d"}


def test_limits_message_and_workspace_buckets():
    cfg = Config.from_env(
        {
            "SCITEX_OROCHI_MSG_RATE_PER_S": "1",
            "SCITEX_OROCHI_MSG_BURST": "2",
            "SCITEX_OROCHI_WORKSPACE_MSG_RATE_PER_S": "1",
            "SCITEX_OROCHI_WORKSPACE_MSG_BURST": "3",
        }
    )
    limits = Limits(cfg)
    one, two = limits.buckets(0.0), limits.buckets(0.0)
    assert limits.check(one, "ws", True, 0.0) == (0.0, "")
    assert limits.check(one, "ws", True, 0.0) == (0.0, "")
    wait, which = limits.check(one, "ws", True, 0.0)
    assert wait > 0 and which == "messages per connection"
    assert limits.check(two, "ws", True, 0.0) == (0.0, "")  # the workspace's third
    wait, which = limits.check(two, "ws", True, 0.0)
    assert which == "messages per workspace"
    assert limits.check(two, "other", True, 0.0) == (0.0, "")  # another workspace is unaffected
    # A refused message spends nothing of the connection's own bucket.
    assert two.messages.tokens == 0.0


def test_connection_counts_per_address_and_token():
    cfg = Config.from_env(
        {
            "SCITEX_OROCHI_MAX_CONNECTIONS_PER_ADDR": "2",
            "SCITEX_OROCHI_MAX_CONNECTIONS_PER_TOKEN": "1",
        }
    )
    limits = Limits(cfg)
    assert limits.refuse_address("10.0.0.1") is None
    limits.opened("10.0.0.1", "t1")
    assert "MAX_CONNECTIONS_PER_TOKEN" in (limits.refuse_token("t1") or "")
    limits.opened("10.0.0.1", "t2")
    assert "MAX_CONNECTIONS_PER_ADDR" in (limits.refuse_address("10.0.0.1") or "")
    assert limits.refuse_address("10.0.0.2") is None
    limits.closed("10.0.0.1", "t1")
    assert limits.refuse_address("10.0.0.1") is None and limits.refuse_token("t1") is None
    assert limits.by_token == {"t2": 1}


# ---- republish backoff -----------------------------------------------------------------
class RecordingBus:
    """What Ingest needs of a bus: an origin and a raw publish (recorded)."""

    origin = "gw-test"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict]] = []

    def publish_raw(self, topic: bytes, data: bytes) -> None:
        self.sent.append((topic, msgpack.unpackb(data)))


def _envelope(msg_id: str, content: str = "hi") -> dict:
    return {
        "type": "message",
        "sender": "a",
        "id": msg_id,
        "ts": "t",
        "payload": {"channel": "#c", "content": content},
    }


def test_acks_are_matched_by_ticket_not_by_the_senders_id():
    bus = RecordingBus()
    ingest = Ingest(bus, 1.0)  # type: ignore[arg-type]
    heard: list[tuple[str, dict]] = []
    # Two workspaces (or two connections) send the same id: two tickets.
    tk_a = ingest.submit("ws-a", _envelope("same"), "agent", lambda b: heard.append(("a", b)))
    tk_b = ingest.submit("ws-b", _envelope("same"), "agent", lambda b: heard.append(("b", b)))
    assert tk_a != tk_b and [body["tk"] for _, body in bus.sent] == [tk_a, tk_b]
    # An ack naming only the id settles nothing; B's ticket settles B's message only.
    assert not ingest.on_ack({"id": "same", "ws": "ws-b", "seq": 1})
    assert ingest.on_ack({"tk": tk_b, "id": "same", "ws": "ws-b", "seq": 1})
    assert [who for who, _ in heard] == ["b"]
    assert ingest.on_ack({"tk": tk_a, "id": "same", "ws": "ws-a", "seq": 7})
    assert [who for who, _ in heard] == ["b", "a"] and ingest.pending_bytes == 0


def test_republish_backs_off_with_jitter_up_to_the_cap():
    bus = RecordingBus()
    ingest = Ingest(bus, 1.0, republish_max_s=8.0, rng=random.Random(7))  # type: ignore[arg-type]
    ingest.submit("ws", _envelope("m"), "agent", lambda b: None, now=0.0)
    times = []
    now = 0.0
    while now < 60.0:
        now += 0.05
        if ingest.republish_due(now):
            times.append(now)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[0] == pytest.approx(1.0, abs=0.06)
    # Doubling (2, 4, 8) with +-25% jitter, then capped at 8 s (+-25%).
    assert 1.5 <= gaps[1] <= 2.6 and 3.0 <= gaps[2] <= 5.1
    assert all(5.9 <= g <= 10.1 for g in gaps[3:]) and len(gaps) < 12
    # A persister announcing itself gets everything at once, and the backoff restarts.
    bus.sent.clear()
    assert ingest.on_persister_ready(now) == 1 and len(bus.sent) == 1


def test_ingest_refuses_past_its_byte_bound():
    bus = RecordingBus()
    ingest = Ingest(bus, 1.0, max_pending_bytes=10_000)  # type: ignore[arg-type]
    with pytest.raises(IngestFull):
        for i in range(100):
            ingest.submit("ws", _envelope(f"m{i}", "x" * 500), "agent", lambda b: None)
    assert 10_000 < ingest.pending_bytes < 11_000


# ---- values and names at the edge ------------------------------------------------------
@pytest.mark.parametrize(
    "text, where",
    [
        ('{"type":"heartbeat","payload":{"cpu_model":"x\\ud800"}}', "payload.cpu_model"),
        (
            '{"type":"message","payload":{"channel":"#a","metadata":{"v":NaN}}}',
            "payload.metadata.v",
        ),
        (
            '{"type":"message","payload":{"channel":"#a","metadata":{"v":-Infinity}}}',
            "payload.metadata.v",
        ),
        (
            '{"type":"message","payload":{"channel":"#a","metadata":{"v":1e400}}}',
            "payload.metadata.v",
        ),
        (
            '{"type":"message","payload":{"channel":"#a","metadata":{"n":[1,123456789012345678901]}}}',
            "payload.metadata.n[1]",
        ),
        ('{"type":"status_update","payload":{"\\udc00k":"v"}}', "payload"),
    ],
)
def test_values_the_hub_cannot_carry_are_refused_naming_the_field(text, where):
    with pytest.raises(codec.ProtocolError) as err:
        codec.parse_frame(text)
    assert err.value.code == "INVALID_FIELD" and err.value.detail.startswith(where + " ")
    assert err.value.ref is not None  # the frame parsed: the ack rule applies


def test_valid_escapes_and_numbers_pass():
    frame = codec.parse_frame(
        '{"type":"message","payload":{"channel":"#a","content":'
        '"\\ud83d\\ude00 NaN Infinity 1e400","metadata":'
        '{"big":18446744073709551615,"f":1.5e300}}}'
    )
    assert frame.payload["content"].startswith("\U0001f600")
    assert frame.payload["metadata"]["big"] == 2**64 - 1


@pytest.mark.parametrize(
    "attachments, detail",
    [
        ([1], "payload.attachments[0] must be an object"),
        ([{"url": 5}], "payload.attachments[0].url must be a string"),
        ([{"url": "/m", "x": {"a": 1}}], "payload.attachments[0].x must be a string or a number"),
        ([{}] * 33, "payload.attachments holds at most 32"),
    ],
)
def test_attachments_are_objects_of_strings(attachments, detail):
    frame = json.dumps(
        {"type": "message", "payload": {"channel": "#a", "attachments": attachments}}
    )
    with pytest.raises(codec.ProtocolError) as err:
        codec.parse_frame(frame)
    assert err.value.detail.startswith(detail)


@pytest.mark.parametrize(
    "name",
    [
        "orochi-server",
        "Orochi-Server",
        "api",
        "telegram",
        "all",
        "agent:x",
        "human:bob",
        " lead",
        "trail ",
        "bi\u202edi",
        "zero\u200bwidth",
        "ctl\x07",
        "pipe|name",
        "",
        "x" * 129,
        "\ufeffbom",
    ],
)
def test_reserved_and_malformed_agent_names_are_refused(name):
    with pytest.raises(codec.ProtocolError) as err:
        codec.check_name(name)
    assert err.value.code == "INVALID_FIELD" and err.value.detail.startswith("sender")


def test_names_are_nfc_and_people_may_post_as_api():
    decomposed = "Jose\u0301"
    assert codec.check_name(decomposed) == "Jos\u00e9"
    frame = codec.parse_frame(json.dumps({"type": "register", "sender": decomposed}))
    assert frame.sender == "Jos\u00e9"
    assert codec.check_name("api", agent=False) == "api"
    with pytest.raises(codec.ProtocolError):
        codec.check_name("orochi-server", agent=False)


def test_history_pages_fit_the_reply_limit_and_say_more():
    rows = [{"msg_id": f"m{i}", "seq": i, "content": "é" * 3000} for i in range(1, 50)]
    encoded, more = codec.page_rows(iter(rows), 20_000)
    reply = codec.history_reply_encoded("#c", encoded, "ref", more)
    assert more and len(reply.encode()) <= 20_000
    assert [r["seq"] for r in json.loads(reply)["payload"]["history"]] == [1, 2, 3]
    one, more = codec.page_rows(iter([{"content": "x" * 50_000, "metadata": {}}]), 20_000)
    assert not more and json.loads(one[0])["truncated"] is True
    assert len(codec.history_reply_encoded("#c", one, "r", False)) <= 20_000


def test_error_once_logs_each_distinct_error_once(caplog):
    report = ErrorOnce(logging.getLogger("test.loops"), "snapshot")
    with caplog.at_level(logging.ERROR, "test.loops"):
        for _ in range(50):
            report(ValueError("bad record"))
        report(KeyError("other"))
    assert len(caplog.records) == 2 and report.seen["ValueError: bad record"] == 50
