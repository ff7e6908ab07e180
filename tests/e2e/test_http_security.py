"""Who may see what on the dashboard port, against a real supervised hub: the Host check
(DNS rebinding), tokens kept out of the log, observer tickets, /metrics labels, and media
served only to its own workspace."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scitex_orochi.hub.media_meta import read_sidecar, sidecar_path

from support import rawhttp
from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import TIME_SCALE, eventually

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
ALLOWED = "hub.example,.corp.example"


@pytest.fixture(scope="module")
def sec_hub():
    from scitex_orochi.hub.testing import Hub

    hub = Hub(extra_env={"SCITEX_OROCHI_ALLOWED_HOSTS": ALLOWED}).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


@pytest.fixture
async def admin(sec_hub):
    api = Api(sec_hub.http_url, sec_hub.admin_token)
    yield api
    await api.close()


async def new_workspace(admin: Api) -> tuple[str, str]:
    status, created = await admin.post("/api/workspaces", {"name": f"w-{uuid.uuid4().hex[:8]}"})
    assert status == 201
    return created["workspace"]["id"], created["token"]


async def test_unknown_hosts_are_refused_with_the_setting_to_change(sec_hub):
    port = sec_hub.dashboard_port
    for host in ("evil.example", "evil.example:8559", "hub.example.evil.example"):
        for target in ("/healthz", "/", f"/api/agents?token={sec_hub.admin_token}"):
            resp = await rawhttp.request(port, "GET", target, host=host)
            assert resp.status == 421, (host, target)
            body = resp.json()
            assert body["status"] == 421 and body["setting"] == "SCITEX_OROCHI_ALLOWED_HOSTS"
            assert "SCITEX_OROCHI_ALLOWED_HOSTS" in body["error"]
    # The observer socket too: a rebinding page must not open it.
    resp = await rawhttp.request(
        port,
        "GET",
        f"/ws?token={sec_hub.admin_token}",
        host="evil.example",
        Upgrade="websocket",
        Sec_WebSocket_Version="13",
        Sec_WebSocket_Key=base64.b64encode(b"x" * 16).decode(),
    )
    assert resp.status == 421
    for host in (
        "127.0.0.1",
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "[::1]:8559",
        "hub.example",
        "lab.corp.example:443",
    ):
        assert (await rawhttp.request(port, "GET", "/healthz", host=host)).status == 200, host


async def test_no_token_appears_in_the_log(sec_hub, admin):
    ws_id, token = await new_workspace(admin)
    status, extra = await admin.post(f"/api/workspaces/{ws_id}/tokens", {"label": "gone"})
    assert status == 201
    status, invite = await admin.post(f"/api/workspaces/{ws_id}/invites")
    assert status == 201
    wrong = "wrong-" + uuid.uuid4().hex
    port = sec_hub.dashboard_port
    for target in (
        f"/api/agents?token={token}",
        f"/api/stats?limit=1&token={token}",
        f"/?token={token}",
        f"/media/2026-01/{'a' * 32}.png?token={token}",
        f"/api/agents?token={wrong}",
        f"/metrics?token={sec_hub.admin_token}",
        f"/api/whoami?token={sec_hub.admin_token}&workspace={ws_id}",
    ):
        await rawhttp.request(port, "GET", target)
    await rawhttp.request(port, "GET", "/api/agents", Authorization=f"Bearer {token}")
    await rawhttp.request(
        port,
        "DELETE",
        f"/api/workspaces/{ws_id}/tokens/{extra['token']}",
        Authorization=f"Bearer {sec_hub.admin_token}",
    )
    await rawhttp.request(
        port,
        "DELETE",
        f"/api/workspaces/{ws_id}/invites/{invite['token']}",
        Authorization=f"Bearer {sec_hub.admin_token}",
    )
    obs = await RawAgent.connect(f"ws://127.0.0.1:{port}/ws?token={token}", register=False)
    await obs.close()
    # Requests aiohttp cannot parse: its own error lines quoted the raw request.
    for raw in (
        f"GET /?token={token} HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
        f"GET /?token={token}\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        f"GET /?token={token}{'a' * 9000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\x7f\r\n\r\n",
    ):
        reader, writer = await rawhttp.connect(port)
        writer.write(raw.encode())
        resp = await rawhttp.read_response(reader)
        writer.close()
        assert resp.status == 400 and resp.json()["status"] == 400, raw[:40]
        assert resp.headers["content-type"].startswith("application/json")
    status, ticket = await Api(sec_hub.http_url, token).post("/api/ws-ticket")
    assert status == 200
    obs = await RawAgent.connect(
        f"ws://127.0.0.1:{port}/ws?ticket={ticket['ticket']}", register=False
    )
    await obs.close()
    marker = f"/healthz?end={uuid.uuid4().hex}"
    await rawhttp.request(port, "GET", marker)

    def text() -> str:
        return sec_hub.log_path.read_text(errors="replace")

    await eventually(lambda: marker in text(), 10, "the access lines written")
    log = text()
    assert "GET /api/agents?token=*** HTTP/1.1" in log and "/ws?ticket=***" in log
    assert f"/api/workspaces/{ws_id}/tokens/***" in log
    for secret in (
        token,
        extra["token"],
        invite["token"],
        wrong,
        ticket["ticket"],
        sec_hub.admin_token,
        "Bearer ",
    ):
        assert secret not in log, secret


async def test_observer_tickets(sec_hub, admin):
    port = sec_hub.dashboard_port
    status, body = await admin.post("/api/ws-ticket", token=None)
    assert status == 401
    status, body = await admin.post("/api/ws-ticket", token="wks_" + "0" * 32)
    assert status == 401
    reader = Api(sec_hub.http_url, sec_hub.default_token)
    try:
        status, body = await reader.post("/api/ws-ticket")
    finally:
        await reader.close()
    assert status == 200 and body["expires_in_s"] == 30 and body["ticket"].startswith("wst_")
    url = f"ws://127.0.0.1:{port}/ws?ticket={body['ticket']}"
    obs = await RawAgent.connect(url, register=False)
    try:
        channel = f"#tk-{uuid.uuid4().hex[:6]}"
        status, posted = await admin.post(
            "/api/messages",
            {"sender": "ops", "payload": {"channel": channel, "content": "seen through a ticket"}},
        )
        assert status == 201
        got = await obs.wait(lambda f: f.get("id") == posted["id"], timeout=10)
        assert got["payload"]["content"] == "seen through a ticket"
    finally:
        await obs.close()
    for bad in (url, f"ws://127.0.0.1:{port}/ws?ticket=wst_nope"):  # used, unknown
        again = await RawAgent.connect(bad, register=False)
        code, _reason = await asyncio.wait_for(again.closed, 10 * TIME_SCALE)
        assert code == 4001 and again.frames[0]["payload"]["code"] == "AUTH_FAILED"


async def test_metrics_show_workspaces_to_the_admin_only(sec_hub):
    agent = await RawAgent.connect(sec_hub.agent_url(), "metered", ["#general"])
    try:

        async def text(token: str | None) -> str:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return (
                await rawhttp.request(sec_hub.dashboard_port, "GET", "/metrics", **headers)
            ).body.decode()

        async def labelled() -> bool:
            return 'orochi_http_agents_online{workspace="default"} 1' in await text(
                sec_hub.admin_token
            )

        await eventually(labelled, 10, "the agent in the admin's metrics")
        for token in (None, sec_hub.default_token, "wks_" + "0" * 32):
            body = await text(token)
            assert 'workspace="' not in body, token
            assert "\norochi_http_agents_online 1\n" in body, token
    finally:
        await agent.close()


async def _upload(admin: Api, workspace: str | None) -> str:
    params = {"workspace": workspace} if workspace else None
    status, body = await admin.post(
        "/api/upload-base64",
        {"data": base64.b64encode(PNG).decode(), "filename": "dot.png"},
        params=params,
    )
    assert status == 201, body
    return body["url"]


async def test_media_is_served_only_to_its_workspace(sec_hub, admin):
    other_ws, other_token = await new_workspace(admin)
    mine = await _upload(admin, None)  # the admin's upload goes to the default workspace
    theirs = await _upload(admin, other_ws)
    root = Path(sec_hub.cfg.http.media_root)
    meta = read_sidecar(root / mine[len("/media/") :])
    assert meta is not None and meta["workspace"] == "default"
    assert meta["mime_type"] == "image/png" and meta["size"] == len(PNG)
    assert meta["filename"] == "dot.png" and len(meta["sha256"]) == 64
    assert read_sidecar(root / theirs[len("/media/") :])["workspace"] == other_ws

    async def fetch(url: str, token: str | None, *, query: bool = False) -> int:
        if query and token:
            return (await admin.get(url, token=None, params={"token": token}))[0]
        return (await admin.get(url, token=token))[0]

    assert await fetch(mine, None) == 401
    assert await fetch(mine, "wks_" + "0" * 32) == 401
    assert await fetch(mine, sec_hub.default_token) == 200
    assert await fetch(mine, sec_hub.default_token, query=True) == 200  # the fleet's client
    assert await fetch(mine, other_token) == 404  # another workspace: as if it did not exist
    assert await fetch(mine, sec_hub.admin_token) == 200
    assert await fetch(theirs, other_token) == 200
    assert await fetch(theirs, sec_hub.default_token) == 404
    # A missing file answers the same 404; without a token, 401 before anything is looked up.
    month = datetime.now(UTC).strftime("%Y-%m")
    assert await fetch(f"/media/{month}/{'0' * 32}.png", sec_hub.default_token) == 404
    assert await fetch(f"/media/{month}/{'0' * 32}.png", None) == 401
    # Sidecars are never served, not even to the admin.
    assert await fetch(mine + ".meta.json", sec_hub.admin_token) == 404
    # Files stored before sidecars existed: the admin's only.
    old = root / month / f"{uuid.uuid4().hex}.png"
    old.write_bytes(PNG)
    assert not sidecar_path(old).exists()
    old_url = f"/media/{month}/{old.name}"
    assert await fetch(old_url, sec_hub.default_token) == 404
    assert await fetch(old_url, sec_hub.admin_token) == 200
    status, body = await admin.get(mine, token=sec_hub.default_token)
    assert body == PNG
