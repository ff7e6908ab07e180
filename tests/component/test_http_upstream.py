"""Stable and dev dashboards in the component tier (gateway_http/upstream.py): the observer
socket's browser-origin rule, the CORS answers a following dashboard needs, and what a
following hub tells its page (`/upstream`, the CSP). The two-hub browser test is
tests/e2e/test_dashboard_upstream.py."""

from __future__ import annotations

import base64
import os

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from gateway_http.app import create_app

DEV = "http://dev.example:8560"
CORS = "SCITEX_OROCHI_CORS_ORIGINS"
UPSTREAM = "SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM"


async def served(bed):
    client = TestClient(TestServer(create_app(bed.cfg), host="127.0.0.1"))
    await client.start_server()
    return client


def own_origin(client: TestClient) -> str:
    return f"http://127.0.0.1:{client.port}"


async def opens(client: TestClient, token: str, headers: dict[str, str]) -> bool:
    """Whether `/ws` upgrades for these headers (and then authenticates the token)."""
    try:
        ws = await client.ws_connect("/ws", params={"token": token}, headers=headers)
    except WSServerHandshakeError as exc:
        assert exc.status == 403, exc
        return False
    try:
        await ws.send_json({"type": "message", "sender": "x", "payload": {}})  # a live socket
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] in ("error", "ack"), frame
    finally:
        await ws.close()
    return True


async def test_observer_socket_takes_browsers_of_its_own_and_listed_origins_only(make_bed):
    # Listed with a trailing slash and capitals: compared as browsers send origins.
    bed = make_bed(**{CORS: "HTTP://Dev.Example:8560/"})
    client = await served(bed)
    try:
        token = bed.default_token
        assert await opens(client, token, {})  # agents, CLI: no Origin, as before
        assert await opens(client, token, {"Origin": own_origin(client)})
        assert await opens(client, token, {"Origin": DEV})
        assert not await opens(client, token, {"Origin": "http://evil.example"})
        assert not await opens(client, token, {"Origin": "http://dev.example:8561"})
        assert not await opens(client, token, {"Origin": "null"})
        # Behind a proxy that rewrites Host, the name the browser used is X-Forwarded-Host.
        proxied = {"Origin": "https://orochi.example.com", "X-Forwarded-Host": "orochi.example.com"}
        assert await opens(client, token, proxied)
        assert not await opens(client, token, {"Origin": "https://orochi.example.com"})
    finally:
        await client.close()


async def test_a_refused_origin_gets_a_json_403_naming_the_setting(http):
    key = base64.b64encode(os.urandom(16)).decode()
    resp = await http.get(
        "/ws",
        headers={
            "Origin": "http://evil.example",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": key,
        },
    )
    body = await resp.json()
    assert resp.status == 403 and body["status"] == 403
    assert "http://evil.example" in body["error"] and CORS in body["error"]
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_star_lets_any_origin_open_the_socket(make_bed):
    bed = make_bed(**{CORS: "*"})
    client = await served(bed)
    try:
        assert await opens(client, bed.default_token, {"Origin": "http://anywhere.example"})
    finally:
        await client.close()


async def test_cors_answers_the_reads_and_the_ticket_of_a_following_dashboard(make_bed):
    bed = make_bed(**{CORS: DEV + "/"})
    client = await served(bed)
    try:
        auth = {"Authorization": f"Bearer {bed.default_token}"}
        for path, method in (("/api/ws-ticket", "POST"), ("/api/history/general", "GET")):
            pre = {
                "Origin": DEV,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization",
            }
            resp = await client.options(path, headers=pre)
            assert resp.status == 204, path
            assert resp.headers["Access-Control-Allow-Origin"] == DEV
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert method in resp.headers["Access-Control-Allow-Methods"]
            resp = await client.options(path, headers={**pre, "Origin": "http://evil.example"})
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
        resp = await client.post("/api/ws-ticket", headers={**auth, "Origin": DEV})
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == DEV
        assert resp.headers["Vary"] == "Origin"
        ticket = (await resp.json())["ticket"]
        ws = await client.ws_connect("/ws", params={"ticket": ticket}, headers={"Origin": DEV})
        await ws.close()
        resp = await client.get("/api/config", headers={**auth, "Origin": "http://evil.example"})
        assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    finally:
        await client.close()


async def test_a_hub_that_follows_none_says_so_and_keeps_its_csp(http):
    resp = await http.get("/upstream")  # no token: the page asks before sign-in
    assert resp.status == 200 and await resp.json() == {"upstream": None}
    resp = await http.get("/")
    assert "connect-src 'self' ws: wss:;" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("setting", "origin", "ws", "host"),
    [
        (
            "ws://127.0.0.1:8559",
            "http://127.0.0.1:8559",
            "ws://127.0.0.1:8559/ws",
            "127.0.0.1:8559",
        ),
        (
            "https://Orochi.Example.com/",
            "https://orochi.example.com",
            "wss://orochi.example.com/ws",
            "orochi.example.com",
        ),
        (
            "wss://orochi.example.com:443/ws",
            "https://orochi.example.com",
            "wss://orochi.example.com/ws",
            "orochi.example.com",
        ),
    ],
)
async def test_a_following_hub_names_its_upstream_and_lets_its_page_reach_it(
    make_bed, setting, origin, ws, host
):
    bed = make_bed(**{UPSTREAM: setting})
    client = await served(bed)
    try:
        body = await (await client.get("/upstream")).json()
        assert body["upstream"] == {
            "url": setting.rstrip("/"),
            "origin": origin,
            "ws": ws,
            "host": host,
        }
        csp = (await client.get("/")).headers["Content-Security-Policy"]
        assert f"connect-src 'self' {origin} ws: wss:;" in csp
        auth = {"Authorization": f"Bearer {bed.admin_token}"}
        config = await (await client.get("/api/config", headers=auth)).json()
        assert config["ws_upstream"] == setting.rstrip("/")
    finally:
        await client.close()
