"""REST contract of the HTTP gateway (PROTOCOL.md §6) against a real supervised hub."""

from __future__ import annotations

import uuid

import pytest

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import eventually

ALLOWED_ORIGIN = "http://allowed.example"


@pytest.fixture(scope="module")
def http_hub():
    """One hub for the module, with CORS on and a short persist deadline for the 503 test."""
    from scitex_orochi.hub.testing import Hub

    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_CORS_ORIGINS": ALLOWED_ORIGIN,
            "SCITEX_OROCHI_HTTP_POST_TIMEOUT_S": "2",
        }
    ).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


@pytest.fixture
async def admin(http_hub):
    api = Api(http_hub.http_url, http_hub.admin_token)
    yield api
    await api.close()


async def test_healthz_and_metrics(admin):
    status, body = await admin.get("/healthz", token=None)
    assert status == 200 and body["status"] == "ok"
    async with admin.session.get(admin.base_url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    for name in (
        "observers_connected",
        "agents_online",
        "messages_in_total",
        "observer_frames_out_total",
        "bus_published_total",
        "bus_drops_total",
        "ingest_pending",
        "persist_lag_seconds",
    ):
        assert f"\norochi_http_{name}" in text, name
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2, line


async def test_reads_need_a_valid_token(admin, http_hub):
    for path in (
        "/api/agents",
        "/api/channels",
        "/api/stats",
        "/api/history/general",
        "/api/messages",
        "/api/workspaces",
        "/api/resources",
        "/api/agents/health",
    ):
        status, body = await admin.get(path, token=None)
        assert status == 401 and "token" in body["error"] and body["status"] == 401, path
        status, body = await admin.get(path, token="wks_" + "0" * 32)
        assert status == 401, path
    status, _ = await admin.get("/api/stats", token=None, params={"token": http_hub.default_token})
    assert status == 200


async def test_whoami_tells_admin_from_workspace_tokens(admin, http_hub):
    status, body = await admin.get("/api/whoami")
    assert status == 200 and body == {"admin": True, "workspace": None}
    status, body = await admin.get("/api/whoami", params={"workspace": "default"})
    assert body == {"admin": True, "workspace": "default"}
    status, body = await admin.get("/api/whoami", token=http_hub.default_token)
    assert status == 200 and body == {"admin": False, "workspace": "default"}
    status, body = await admin.get("/api/whoami", token=None)
    assert status == 401 and "token" in body["error"]


async def test_posting_needs_the_admin_token(admin, http_hub):
    channel = f"#adm-{uuid.uuid4().hex[:6]}"
    body = {"sender": "eve", "payload": {"channel": channel, "content": "not allowed"}}
    for token in (http_hub.default_token, None, "wks_" + "0" * 32):
        status, answer = await admin.post("/api/messages", body, token=token)
        assert status == 401 and answer["status"] == 401, token
    status, answer = await admin.post("/api/messages", body, token=http_hub.default_token)
    assert "admin token" in answer["error"]
    # Also with the workspace token in the query string rather than the header.
    status, _ = await admin.post(
        "/api/messages", body, token=None, params={"token": http_hub.default_token}
    )
    assert status == 401
    assert http_hub.store().history("default", channel) == []
    status, answer = await admin.post(
        "/api/messages",
        {**body, "payload": {"channel": channel, "content": "from the admin"}},
        token=None,
        params={"token": http_hub.admin_token},
    )
    assert status == 201 and answer["workspace"] == "default"
    rows = http_hub.store().history("default", channel)
    assert [r["content"] for r in rows] == ["from the admin"]


async def test_post_is_durable_and_reaches_an_agent(admin, http_hub):
    agent = await RawAgent.connect(http_hub.agent_url(), "rest-reader", ["#rest"])
    try:
        status, body = await admin.post(
            "/api/messages",
            {
                "sender": "ywatanabe",
                "payload": {
                    "channel": "#rest",
                    "content": "hello @rest-reader",
                    "metadata": {"k": 1},
                },
            },
        )
        assert status == 201, body
        assert body["status"] == "ok" and body["seq"] >= 1 and body["channel"] == "#rest"
        # 201 means it is on disk already.
        rows = http_hub.store().history("default", "#rest", limit=5)
        assert rows[0]["msg_id"] == body["id"] and rows[0]["sender_type"] == "human"
        frame = await agent.wait(lambda f: f.get("id") == body["id"])
        assert frame["sender"] == "ywatanabe" and frame["payload"]["seq"] == body["seq"]
    finally:
        await agent.close()


async def test_history_orders_and_resume(admin):
    channel = f"#hist-{uuid.uuid4().hex[:6]}"
    ids = []
    for i in range(5):
        status, body = await admin.post(
            "/api/messages", {"sender": "h", "payload": {"channel": channel, "content": f"m{i}"}}
        )
        assert status == 201
        ids.append(body["id"])
    status, rows = await admin.get(f"/api/history/{channel[1:]}", params={"limit": "3"})
    assert status == 200 and [r["content"] for r in rows] == ["m4", "m3", "m2"]
    status, rows = await admin.get(
        f"/api/history/{channel.replace('#', '%23')}", params={"after_seq": "2"}
    )
    assert [r["seq"] for r in rows] == [3, 4, 5]
    status, rows = await admin.get(
        f"/api/history/{channel[1:]}", params={"before_seq": "4", "limit": "2"}
    )
    assert [r["seq"] for r in rows] == [3, 2]
    status, rows = await admin.get("/api/messages", params={"limit": "3"})
    assert [r["msg_id"] for r in rows] == ids[-3:]  # oldest first
    status, rows = await admin.get("/api/messages", params={"limit": "100000"})
    assert status == 200 and len(rows) <= 500
    status, summary = await admin.get("/api/channels/summary")
    assert {"name": channel, "members": [], "last_seq": 5} in summary["channels"]


async def test_bad_input_gets_json_errors_and_stores_nothing(admin, http_hub):
    before = len(http_hub.store().recent(None, 1000))
    cases = [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"sender": "x", "payload": {"content": "no channel"}}', 400, None),
        (b'{"sender": "x", "payload": {"channel": "#a", "content": 3}}', 400, "payload.content"),
        (b'{"sender": "x", "payload": {"channel": "#a", "metadata": []}}', 400, "payload.metadata"),
        (b'{"sender": "x", "payload": "text"}', 400, "payload"),
        (b'{"sender": "", "payload": {"channel": "#a"}}', 400, "sender"),
    ]
    for raw, want, field in cases:
        status, body = await admin.request(
            "POST", "/api/messages", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == want and isinstance(body["error"], str) and body["status"] == want, raw
        if field:
            assert body["field"] == field, (raw, body)
    status, body = await admin.post("/api/messages", {"sender": "x", "payload": {}})
    assert body["error"] == "payload.channel is required"
    status, body = await admin.get("/api/nope")
    assert status == 404 and "no such route" in body["error"]
    status, body = await admin.request("PUT", "/api/messages")
    assert status == 405 and body["status"] == 405
    status, body = await admin.get("/api/history/general", params={"limit": "ten"})
    assert status == 400 and body["field"] == "limit"
    status, body = await admin.get("/api/history/general", params={"since": "yesterday"})
    assert status == 400 and body["field"] == "since"
    assert len(http_hub.store().recent(None, 1000)) == before


async def test_agents_channels_stats_resources_health(admin, http_hub):
    agent = await RawAgent.connect(
        http_hub.agent_url(),
        "worker-1",
        ["#ops", "#general"],
        machine="nas",
        role="builder",
        project="orochi",
    )
    try:
        await agent.request(
            {
                "type": "heartbeat",
                "payload": {
                    "cpu_count": 8,
                    "load_avg_1m": 2.0,
                    "mem_used_percent": 41.5,
                    "disk_used_percent": 70,
                    "orochi_current_task": "compiling",
                },
            }
        )
        await agent.request({"type": "status_update", "payload": {"status": "busy"}})

        async def listed():
            _, rows = await admin.get("/api/agents")
            hit = [r for r in rows if r["name"] == "worker-1"]
            return hit and hit[0]["status"] == "busy" and hit[0]["resources"] and hit[0]

        row = await eventually(listed, what="worker-1 in /api/agents")
        assert row["machine"] == "nas" and row["current_task"] == "compiling"
        assert row["health"] == "healthy" and "conn" not in row
        _, chans = await admin.get("/api/channels")
        assert "worker-1" in chans["#ops"]
        _, stats = await admin.get("/api/stats")
        assert stats["agents_online"] >= 1 and "#ops" in stats["channels"]
        assert "observers_connected" in stats and "channels_active" in stats
        _, res = await admin.get("/api/resources")
        assert res["worker-1"]["mem_used_percent"] == 41.5
        await agent.request({"type": "status_update", "payload": {"status": "idle"}})

        async def idle():
            _, h = await admin.get("/api/agents/health")
            hit = [e for e in h["agents"] if e["name"] == "worker-1"]
            return hit and hit[0]["health"] == "idle" and hit[0]

        entry = await eventually(idle, what="worker-1 idle")
        assert entry["last_seen_s_ago"] < 60 and entry["resources"]["cpu_count"] == 8
    finally:
        await agent.close()

    async def dead():
        _, h = await admin.get("/api/agents/health")
        return [e for e in h["agents"] if e["name"] == "worker-1" and e["health"] == "dead"]

    await eventually(dead, what="worker-1 dead after disconnect")
    _, reg = await admin.get("/api/agents/registry")
    assert any(r["name"] == "worker-1" and r["online"] is False for r in reg)


async def test_workspace_tokens_and_invites(admin, http_hub):
    anon = Api(http_hub.http_url, http_hub.default_token)
    try:
        status, body = await anon.post("/api/workspaces", {"name": "nope"})
        assert status == 401
        status, body = await admin.post("/api/workspaces", {"name": 5})
        assert status == 400 and body["field"] == "name"
        name = f"lab-{uuid.uuid4().hex[:6]}"
        status, created = await admin.post("/api/workspaces", {"name": name, "channels": ["#lab"]})
        assert status == 201 and created["token"].startswith("wks_")
        ws_id = created["workspace"]["id"]
        status, _ = await admin.post("/api/workspaces", {"name": name})
        assert status == 409
        # Tokens are never listed without admin auth.
        status, _ = await anon.get(f"/api/workspaces/{ws_id}/tokens")
        assert status == 401
        _, listed = await anon.get("/api/workspaces")
        assert [w["id"] for w in listed["workspaces"]] == ["default"]
        assert "token" not in str(listed)
        _, listed = await admin.get("/api/workspaces")
        assert ws_id in [w["id"] for w in listed["workspaces"]]
        status, tok = await admin.post(f"/api/workspaces/{ws_id}/tokens", {"label": "ci"})
        assert status == 201
        _, tokens = await admin.get(f"/api/workspaces/{ws_id}/tokens")
        assert tok["token"] in [t["token"] for t in tokens["tokens"]]
        # The new token reads its own workspace only, and may not post to it: the admin
        # posts there with ?workspace=.
        scoped = Api(http_hub.http_url, tok["token"])
        try:
            status, refused = await scoped.post(
                "/api/messages",
                {
                    "sender": "p",
                    "payload": {"channel": "#lab", "content": "from the workspace token"},
                },
            )
            assert status == 401 and "admin token" in refused["error"]
            status, posted = await admin.post(
                "/api/messages",
                {"sender": "p", "payload": {"channel": "#lab", "content": "inside"}},
                params={"workspace": ws_id},
            )
            assert status == 201 and posted["workspace"] == ws_id
            _, rows = await scoped.get("/api/history/lab")
            assert [r["content"] for r in rows] == ["inside"]
            _, rows = await anon.get("/api/history/lab")
            assert rows == []
            status, _ = await scoped.get("/api/workspaces/default")
            assert status == 404
            status, _ = await admin.delete(f"/api/workspaces/{ws_id}/tokens/{tok['token']}")
            assert status == 200
            status, _ = await scoped.get("/api/stats")
            assert status == 401
        finally:
            await scoped.close()
        # Invites: redeeming gives a working workspace token.
        status, invite = await admin.post(f"/api/workspaces/{ws_id}/invites", {"max_uses": 1})
        assert status == 201 and invite["token"].startswith("inv_")
        _, invites = await admin.get(f"/api/workspaces/{ws_id}/invites")
        assert [i["token"] for i in invites["invites"]] == [invite["token"]]
        status, redeemed = await admin.post(
            "/api/invites/redeem", {"invite": invite["token"]}, token=None
        )
        assert status == 201 and redeemed["workspace_id"] == ws_id
        agent = await RawAgent.connect(http_hub.agent_url(redeemed["token"]), "invitee", ["#lab"])
        try:
            ack = await agent.post("#lab", "joined via invite")
            assert ack["payload"]["status"] == "ok"
        finally:
            await agent.close()
        status, body = await admin.post(
            "/api/invites/redeem", {"invite": invite["token"]}, token=None
        )
        assert status == 410 and "used up" in body["error"]
        status, _ = await admin.post("/api/invites/redeem", {"invite": "inv_nope"}, token=None)
        assert status == 404
        status, inv2 = await admin.post(f"/api/workspaces/{ws_id}/invites")
        status, _ = await admin.delete(f"/api/workspaces/{ws_id}/invites/{inv2['token']}")
        assert status == 200
        status, _ = await admin.delete("/api/workspaces/default")
        assert status == 409
        status, _ = await admin.delete(f"/api/workspaces/{ws_id}")
        assert status == 200
        status, _ = await admin.get(f"/api/workspaces/{ws_id}")
        assert status == 404
        status, _ = await admin.get("/api/stats", token=redeemed["token"])
        assert status == 401
    finally:
        await anon.close()


async def test_cors_allows_configured_origins_only(http_hub):
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        pre = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
        async with api.session.options(api.base_url + "/api/messages", headers=pre) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        async with api.session.options(
            api.base_url + "/api/messages", headers={**pre, "Origin": "http://evil.example"}
        ) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
        async with api.session.get(
            api.base_url + "/api/stats",
            headers={"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {http_hub.admin_token}"},
        ) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    finally:
        await api.close()


async def test_post_without_persister_is_503_then_stored_once(http_hub):
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        assert http_hub.ctl("stop", "persister").returncode == 0
        msg_id = str(uuid.uuid4())
        status, body = await api.post(
            "/api/messages",
            {
                "id": msg_id,
                "sender": "op",
                "payload": {"channel": "#outage", "content": "while the persister is down"},
            },
        )
        assert status == 503 and body["id"] == msg_id and "queued" in body["error"]
        assert http_hub.store().history("default", "#outage") == []
        assert http_hub.ctl("start", "persister").returncode == 0

        async def stored():
            return http_hub.store().history("default", "#outage")

        rows = await eventually(stored, timeout=15, what="the queued message stored")
        assert [r["msg_id"] for r in rows] == [msg_id]
        # Re-posting the same id after a 503 is safe: answered, not stored twice.
        status, body = await api.post(
            "/api/messages",
            {
                "id": msg_id,
                "sender": "op",
                "payload": {"channel": "#outage", "content": "while the persister is down"},
            },
        )
        assert status == 201 and body["duplicate"] is True
        assert len(http_hub.store().history("default", "#outage")) == 1

        async def metrics():
            async with api.session.get(api.base_url + "/metrics") as resp:
                text = await resp.text()
            return "orochi_http_ingest_pending 0\n" in text and text

        text = await eventually(metrics, what="no pending messages in /metrics")
        assert "orochi_http_messages_timed_out_total 1\n" in text
        assert "orochi_http_ingest_republished_total 0\n" not in text
    finally:
        await api.close()
