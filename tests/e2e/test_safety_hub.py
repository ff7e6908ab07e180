"""Safe to share, against a real supervised hub: ids per workspace, immediate revocation,
validation at the edge, identity and pinned tokens, bounded replies and queues, and the
compatibility gaps the published project's clients and wire tests found."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from scitex_orochi.hub.testing import Hub

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import TIME_SCALE, eventually

REPLY_LIMIT = 65536


@pytest.fixture(scope="module")
def safe_hub():
    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_MAX_REPLY_BYTES": str(REPLY_LIMIT),
            "SCITEX_OROCHI_MAX_CHANNELS_PER_AGENT": "8",
            "SCITEX_OROCHI_MAX_PRESENCE_RECORD_BYTES": "4096",
            "SCITEX_OROCHI_REGISTER_TIMEOUT_S": "1.5",
            "SCITEX_OROCHI_SEND_QUEUE_MAX_BYTES": str(256 * 1024),
            "SCITEX_OROCHI_REVOCATION_SWEEP_S": "0.5",
        }
    ).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


@pytest.fixture
async def api(safe_hub):
    client = Api(safe_hub.http_url, safe_hub.admin_token)
    yield client
    await client.close()


async def new_workspace(api: Api, name: str) -> tuple[str, str]:
    status, body = await api.post("/api/workspaces", {"name": f"{name}-{uuid.uuid4().hex[:6]}"})
    assert status == 201, body
    return body["id"], body["token"]


def observer_url(hub: Hub, token: str) -> str:
    return f"ws://{hub.host}:{hub.dashboard_port}/ws?token={token}"


def errors(agent: RawAgent, ref: str) -> list[dict]:
    return [f for f in agent.frames if f["type"] == "error" and f["payload"].get("ref") == ref]


# ---- 1. ids per workspace ------------------------------------------------------------
async def test_same_id_in_two_workspaces_is_two_messages_each_acked_to_its_sender(safe_hub, api):
    """Ids were global: the second workspace got the first's ack (with its private channel
    name) for a message never stored in its own workspace, and the first got nothing."""
    ws_b, token_b = await new_workspace(api, "same-id")
    a = await RawAgent.connect(safe_hub.agent_url(), "alice-ids", ["#a-private"])
    b = await RawAgent.connect(safe_hub.agent_url(token_b), "bob-ids", ["#b-room"])
    for round_ in range(5):
        msg_id = f"shared-{round_}-{uuid.uuid4().hex[:6]}"
        ack_a, ack_b = await asyncio.gather(
            a.post("#a-private", f"secret {round_}", msg_id=msg_id),
            b.post("#b-room", f"hello {round_}", msg_id=msg_id),
        )
        assert ack_a["payload"]["status"] == "ok" and ack_b["payload"]["status"] == "ok"
        assert ack_a["payload"]["channel"] == "#a-private"
        assert ack_b["payload"]["channel"] == "#b-room"
    _, rows_a = await api.get("/api/history/a-private", params={"workspace": "default"})
    _, rows_b = await api.get("/api/history/b-room", params={"workspace": ws_b})
    assert [r["content"] for r in rows_a] == [f"secret {i}" for i in reversed(range(5))]
    assert [r["content"] for r in rows_b] == [f"hello {i}" for i in reversed(range(5))]
    # DUPLICATE_ID only ever concerns the sender's own workspace.
    taken = f"taken-{uuid.uuid4().hex[:6]}"
    assert (await a.post("#a-private", "first", msg_id=taken))["payload"]["status"] == "ok"
    assert (await b.post("#b-room", "mine too", msg_id=taken))["payload"]["status"] == "ok"
    c = await RawAgent.connect(safe_hub.agent_url(token_b), "carol-ids", ["#b-room"])
    refused = await c.post("#b-room", "not bob's", msg_id=taken)
    assert refused["payload"]["status"] == "error"
    assert errors(c, taken)[0]["payload"]["code"] == "DUPLICATE_ID"
    for agent in (a, b, c):
        await agent.close()


async def test_resent_id_in_flight_gets_two_acks_one_delivery(safe_hub):
    sender = await RawAgent.connect(safe_hub.agent_url(), "resender", ["#inflight"])
    reader = await RawAgent.connect(safe_hub.agent_url(), "inflight-reader", ["#inflight"])
    frame = {
        "type": "message",
        "id": f"twice-{uuid.uuid4().hex[:6]}",
        "payload": {"channel": "#inflight", "content": "once"},
    }
    await sender.send(dict(frame))
    await sender.send(dict(frame))  # before the first is durable
    acks = await sender.wait_count(
        lambda f: f["type"] == "ack" and f["payload"].get("ref") == frame["id"], 2
    )
    assert [x["payload"]["status"] for x in acks] == ["ok", "ok"]
    assert {x["payload"]["seq"] for x in acks} == {1}
    await reader.wait(lambda f: f["type"] == "message" and f["id"] == frame["id"])
    marker = await sender.post("#inflight", "after")
    await reader.wait(lambda f: f["type"] == "message" and f["id"] == marker["payload"]["ref"])
    assert len([f for f in reader.messages("#inflight") if f["id"] == frame["id"]]) == 1
    await sender.close()
    await reader.close()


# ---- 10. compatibility gaps ------------------------------------------------------------
async def test_unknown_type_is_acked_ok_after_its_error(safe_hub):
    agent = await RawAgent.connect(safe_hub.agent_url(), "unknown-type")
    replies = await agent.request({"type": "teleport", "payload": {}})
    assert [f["type"] for f in replies] == ["error", "ack"]
    assert replies[0]["payload"]["code"] == "UNKNOWN_TYPE"
    assert replies[1]["payload"] == {"status": "ok", "ref": replies[1]["payload"]["ref"]}
    # A message that is not stored keeps its error ack.
    bad = await agent.request({"type": "message", "payload": {"channel": "#x", "content": 5}})
    assert bad[-1]["payload"]["status"] == "error"
    await agent.close()


async def test_a_registered_agent_is_listed_on_the_very_next_request(safe_hub, api):
    for i in range(15):
        name = f"visible-{i}-{uuid.uuid4().hex[:4]}"
        agent = await RawAgent.connect(safe_hub.agent_url(), name, [f"#vis{i}"])
        _, agents = await api.get("/api/agents")
        _, channels = await api.get("/api/channels")
        assert name in [row["name"] for row in agents], i
        assert name in channels.get(f"#vis{i}", []), i
        await agent.close()


async def test_agent_rows_carry_the_published_field_names(safe_hub, api):
    agent = await RawAgent.connect(safe_hub.agent_url(), "fields-agent")
    _, rows = await api.get("/api/agents")
    row = next(r for r in rows if r["name"] == "fields-agent")
    assert row["workspace_id"] == "default"
    for key in ("last_heartbeat", "registered_at"):
        assert isinstance(row[key], str) and row[key].endswith("+00:00")
    await agent.close()


# ---- 3. validation at the edge; background loops survive ------------------------------------
async def test_a_lone_surrogate_is_refused_and_presence_keeps_working(safe_hub, api):
    """One heartbeat whose cpu_model held a lone surrogate killed the snapshot loop: six
    seconds later every agent of every workspace vanished from /api/agents."""
    witness = await RawAgent.connect(safe_hub.agent_url(), "witness", ["#ok"])
    agent = await RawAgent.connect(safe_hub.agent_url(), "surrogate-sender", ["#ok"])
    ref = str(uuid.uuid4())
    await agent.send_raw(
        '{"type":"heartbeat","id":"' + ref + '","payload":{"cpu_model":"x\\ud800"}}'
    )
    ack = await agent.ack_of(ref)
    assert ack["payload"]["status"] == "error"
    assert errors(agent, ref)[0]["payload"]["code"] == "INVALID_FIELD"
    assert "payload.cpu_model" in errors(agent, ref)[0]["payload"]["detail"]
    # A failed register joins nothing.
    loner = await RawAgent.connect(safe_hub.agent_url(), register=False)
    ref2 = str(uuid.uuid4())
    await loner.send_raw(
        '{"type":"register","id":"' + ref2 + '","sender":"surr-reg",'
        '"payload":{"channels":["#surr-joined"],"machine":"m\\udfff"}}'
    )
    assert (await loner.ack_of(ref2))["payload"]["status"] == "error"
    # Presence snapshots go on: everyone stays listed for several expiry periods
    # (snapshots every 0.5 s, expiry 1.5 s in the test hub).
    deadline = time.monotonic() + 4.0 * TIME_SCALE
    while time.monotonic() < deadline:
        _, rows = await api.get("/api/agents")
        names = {r["name"] for r in rows}
        assert {"witness", "surrogate-sender"} <= names
        assert "surr-reg" not in names
        await asyncio.sleep(0.25)
    _, channels = await api.get("/api/channels")
    assert "#surr-joined" not in channels
    # History and the message path still work.
    assert (await witness.post("#ok", "still here"))["payload"]["status"] == "ok"
    for a in (witness, agent, loner):
        await a.close()


@pytest.mark.parametrize(
    "raw_payload, field",
    [
        ('{"channel":"#bad","metadata":{"v":NaN}}', "payload.metadata.v"),
        ('{"channel":"#bad","metadata":{"v":Infinity}}', "payload.metadata.v"),
        ('{"channel":"#bad","metadata":{"v":123456789012345678901234}}', "payload.metadata.v"),
        ('{"channel":"#bad","attachments":[{"url":7}]}', "payload.attachments[0].url"),
        ('{"channel":"#bad","attachments":["x"]}', "payload.attachments[0]"),
        ('{"channel":"#bad","content":"\\udc80"}', "payload.content"),
    ],
)
async def test_values_that_cannot_be_carried_are_refused_and_nothing_is_stored(
    safe_hub, api, raw_payload, field
):
    agent = await RawAgent.connect(safe_hub.agent_url(), f"bad-values-{uuid.uuid4().hex[:4]}")
    ref = str(uuid.uuid4())
    await agent.send_raw('{"type":"message","id":"' + ref + '","payload":' + raw_payload + "}")
    assert (await agent.ack_of(ref))["payload"]["status"] == "error"
    err = errors(agent, ref)[0]["payload"]
    assert err["code"] == "INVALID_FIELD" and err["detail"].startswith(field)
    _, rows = await api.get("/api/history/bad")
    assert rows == []
    await agent.close()


# ---- 6. identity ------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["orochi-server", "api", "telegram", "bi\u202edi", " pad", "zero\u200bwidth", "all"]
)
async def test_reserved_and_spoofing_names_cannot_register(safe_hub, name):
    agent = await RawAgent.connect(safe_hub.agent_url(), register=False)
    replies = await agent.request({"type": "register", "sender": name, "payload": {}})
    assert replies[0]["payload"]["code"] == "INVALID_FIELD"
    assert replies[-1]["payload"]["status"] == "error"
    await agent.close()


async def test_pinned_tokens_and_workspaces_that_require_them(safe_hub, api):
    ws_id, open_token = await new_workspace(api, "pinned")
    status, pinned = await api.post(f"/api/workspaces/{ws_id}/tokens", {"agent_name": "lead"})
    assert status == 201 and pinned["agent_name"] == "lead"

    async def register(token: str, name: str) -> list[dict]:
        agent = await RawAgent.connect(safe_hub.agent_url(token), register=False)
        replies = await agent.request({"type": "register", "sender": name, "payload": {}})
        await agent.close()
        return replies

    other = await register(pinned["token"], "intruder")
    assert other[0]["payload"]["code"] == "FORBIDDEN" and "pinned" in other[0]["payload"]["detail"]
    squat = await register(open_token, "lead")  # its first use: looked up fresh
    assert squat[0]["payload"]["code"] == "FORBIDDEN"
    assert (await register(pinned["token"], "lead"))[-1]["payload"]["status"] == "ok"
    assert (await register(open_token, "helper"))[-1]["payload"]["status"] == "ok"
    status, ws = await api.request(
        "PATCH", f"/api/workspaces/{ws_id}", json_body={"require_pinned": True}
    )
    assert status == 200 and ws["require_pinned"] is True

    # A policy change reaches every gateway on the bus (ctl.auth), and within the token
    # cache's lifetime (2 s) in any case.
    async def helper_refused() -> dict | None:
        replies = await register(open_token, "helper")
        return replies[0]["payload"] if replies[0]["type"] == "error" else None

    refused = await eventually(helper_refused, 3, "the policy applied")
    assert refused["code"] == "FORBIDDEN" and "requires" in refused["detail"]
    assert (await register(pinned["token"], "lead"))[-1]["payload"]["status"] == "ok"


async def test_frames_for_people_say_who_typed_them(safe_hub, api):
    """An admin posting under an agent's name is never indistinguishable from the agent."""
    agent = await RawAgent.connect(safe_hub.agent_url(), "typist", ["#who"])
    reader = await RawAgent.connect(safe_hub.agent_url(), "who-reader", ["#who"])
    obs = await RawAgent.connect(observer_url(safe_hub, safe_hub.admin_token), register=False)
    await agent.post("#who", "from the agent")
    status, _ = await api.post(
        "/api/messages",
        {"sender": "typist", "payload": {"channel": "#who", "content": "from a person"}},
    )
    assert status == 201
    for watcher in (reader, obs):
        got = await watcher.wait_count(
            lambda f: f["type"] == "message" and f["payload"].get("channel") == "#who", 2
        )
        kinds = {f["payload"]["content"]: f["payload"]["sender_type"] for f in got}
        assert kinds == {"from the agent": "agent", "from a person": "human"}
    for a in (agent, reader, obs):
        await a.close()


# ---- 2. revocation ------------------------------------------------------------
async def test_deleting_a_token_or_workspace_closes_its_sessions_within_2s(safe_hub, api):
    ws_id, token = await new_workspace(api, "revoke")
    _, second = await api.post(f"/api/workspaces/{ws_id}/tokens", {"label": "second"})
    agent = await RawAgent.connect(safe_hub.agent_url(token), "doomed", ["#r"])
    obs = await RawAgent.connect(observer_url(safe_hub, token), register=False)
    survivor = await RawAgent.connect(safe_hub.agent_url(second["token"]), "survivor", ["#r"])
    started = time.monotonic()
    status, _ = await api.delete(f"/api/workspaces/{ws_id}/tokens/{token}")
    assert status == 200
    assert (await asyncio.wait_for(agent.closed, 2 * TIME_SCALE))[0] == 4001
    assert (await asyncio.wait_for(obs.closed, 2 * TIME_SCALE))[0] == 4001
    assert time.monotonic() - started < 2 * TIME_SCALE
    assert not survivor.closed.done()
    # The whole workspace: its other token's sessions close too.
    status, _ = await api.delete(f"/api/workspaces/{ws_id}")
    assert status == 200
    assert (await asyncio.wait_for(survivor.closed, 2 * TIME_SCALE))[0] == 4001
    _, rows = await api.get("/api/history/r", params={"workspace": ws_id})
    assert rows == []


async def test_a_token_deleted_behind_the_hubs_back_closes_its_sessions(safe_hub, api):
    """The sweep, not only the REST route: a token removed by any means stops working."""
    ws_id, token = await new_workspace(api, "sweep")
    agent = await RawAgent.connect(safe_hub.agent_url(token), "swept", ["#s"])
    from scitex_orochi.hub.store import Store

    store = Store(safe_hub.cfg.db.url)
    try:
        assert store.delete_token(ws_id, token)
    finally:
        store.close()
    assert (await asyncio.wait_for(agent.closed, 2 * TIME_SCALE))[0] == 4001


# ---- 4. bounds ------------------------------------------------------------
async def test_history_replies_are_paged_within_the_frame_limit(safe_hub):
    agent = await RawAgent.connect(safe_hub.agent_url(), "pager", ["#pages"])
    for i in range(12):
        await agent.post("#pages", f"{i:02d} " + "y" * 20_000)
    start = len(agent.raw)
    replies = await agent.request({"type": "query", "payload": {"channel": "#pages", "limit": 100}})
    reply = replies[0]
    raw = next(r for r in agent.raw[start:] if '"history"' in r)
    assert len(raw.encode()) <= REPLY_LIMIT
    assert reply["payload"]["more"] is True
    newest = [r["seq"] for r in reply["payload"]["history"]]
    assert newest == sorted(newest, reverse=True) and newest[0] == 12
    older = (
        await agent.request(
            {
                "type": "query",
                "payload": {"channel": "#pages", "limit": 100, "before_seq": newest[-1]},
            }
        )
    )[0]["payload"]
    assert older["history"][0]["seq"] == newest[-1] - 1
    seen, after = [], 0
    while True:  # resume paging: after_seq, oldest first, until `more` is false
        page = (
            await agent.request(
                {
                    "type": "query",
                    "payload": {"channel": "#pages", "limit": 1000, "after_seq": after},
                }
            )
        )[0]["payload"]
        seen += [r["seq"] for r in page["history"]]
        after = seen[-1]
        if not page["more"]:
            break
    assert seen == list(range(1, 13))
    # REST pages the same way, saying so in a header (its answer is the published array).
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{safe_hub.http_url}/api/history/pages?limit=100",
            headers={"Authorization": f"Bearer {safe_hub.admin_token}"},
        ) as resp:
            body = await resp.read()
            assert resp.headers["X-Orochi-More"] == "true"
        assert len(body) <= REPLY_LIMIT and json.loads(body)[0]["seq"] == 12
        async with http.get(
            f"{safe_hub.http_url}/api/messages?limit=500",
            headers={"Authorization": f"Bearer {safe_hub.admin_token}"},
        ) as resp:
            body = await resp.read()
            assert resp.headers["X-Orochi-More"] == "true" and len(body) <= REPLY_LIMIT
    await agent.close()


async def test_channels_per_agent_and_presence_record_size_are_bounded(safe_hub):
    agent = await RawAgent.connect(safe_hub.agent_url(), register=False)
    too_many = await agent.request(
        {
            "type": "register",
            "sender": "greedy",
            "payload": {"channels": [f"#c{i}" for i in range(9)]},
        }
    )
    assert too_many[0]["payload"]["code"] == "LIMIT_EXCEEDED"
    assert "MAX_CHANNELS_PER_AGENT" in too_many[0]["payload"]["detail"]
    ok = await agent.request(
        {
            "type": "register",
            "sender": "greedy",
            "payload": {"channels": [f"#c{i}" for i in range(8)]},
        }
    )
    assert ok[-1]["payload"]["status"] == "ok"
    ninth = await agent.request({"type": "subscribe", "payload": {"channel": "#c9"}})
    assert ninth[0]["payload"]["code"] == "LIMIT_EXCEEDED"
    big = await agent.request(
        {
            "type": "status_update",
            "payload": {
                "status": "busy",
                "role": "r" * 900,
                "project": "p" * 900,
                "model": "m" * 900,
                "machine": "h" * 900,
                "current_task": "t" * 900,
            },
        }
    )
    assert big[0]["payload"]["code"] == "LIMIT_EXCEEDED"
    await agent.close()


async def test_a_connection_that_never_registers_is_closed(safe_hub):
    silent = await RawAgent.connect(safe_hub.agent_url(), register=False)
    code, reason = await asyncio.wait_for(silent.closed, 8 * TIME_SCALE)
    assert code == 4003 and "register" in reason.lower()


async def test_a_non_reading_agent_is_closed_at_the_byte_bound(safe_hub):
    """Send queues were bounded by frame count only: one non-reading agent pinned 1.2 GB."""
    import socket

    import websockets

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((safe_hub.host, safe_hub.port))
    stalled = await websockets.connect(safe_hub.agent_url(), sock=sock, max_size=None, max_queue=1)
    await stalled.send(
        json.dumps(
            {"type": "register", "sender": "stalled", "payload": {"channels": ["#flood-bytes"]}}
        )
    )
    await stalled.recv()  # its ack; from now on it reads nothing
    sender = await RawAgent.connect(safe_hub.agent_url(), "byte-flooder", ["#flood-bytes"])
    for _ in range(80):
        await sender.post("#flood-bytes", "z" * 200_000)

    # The gateway gave up on it: the transport is aborted after the close grace period at
    # the latest, but the close frame is queued at once. Read everything and find 4008.
    async def drained() -> int | None:
        try:
            while True:
                await stalled.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    assert await asyncio.wait_for(drained(), 40 * TIME_SCALE) == 4008
    await sender.close()


async def test_a_non_reading_observer_is_closed_at_the_byte_bound(safe_hub):
    import socket

    import websockets

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((safe_hub.host, safe_hub.dashboard_port))
    # compression=None: deflate would shrink the filler to nothing on the wire.
    watcher = await websockets.connect(
        observer_url(safe_hub, safe_hub.default_token),
        sock=sock,
        max_size=None,
        max_queue=1,
        compression=None,
    )
    sender = await RawAgent.connect(safe_hub.agent_url(), "obs-flooder", ["#obs-bytes"])
    for _ in range(80):
        await sender.post("#obs-bytes", "o" * 200_000)

    async def drained() -> int | None:
        try:
            while True:
                await watcher.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    assert await asyncio.wait_for(drained(), 40 * TIME_SCALE) == 4008
    await sender.close()


async def test_gitea_without_gitea_configured_is_answered_at_once(safe_hub):
    agent = await RawAgent.connect(safe_hub.agent_url(safe_hub.admin_token), "no-gitea")
    started = time.monotonic()
    replies = await agent.request({"type": "gitea", "payload": {"action": "get_version"}})
    assert time.monotonic() - started < 2
    assert replies[0]["payload"]["code"] == "GITEA_NOT_CONFIGURED"
    await agent.close()
