"""The HTTP gateway's app (`create_app(cfg)`) in this process on aiohttp's TestServer, its
bus client on a broker in a thread, the persister in a thread when a test needs one, and
the SQLite file `prepare` made: tokens, body limits, durable posts and the 503 without a
persister. (The same contract against the supervised hub: tests/e2e/test_http_api.py,
tests/e2e/test_http_edge.py.)"""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient, TestServer

from gateway_http.app import create_app
from gateway_http.bodies import ADMIN_BODY_MAX_BYTES

from support.persister import PersisterThread
from support.util import eventually

WRONG_TOKEN = "wks_" + "0" * 32
READ_ROUTES = (
    "/api/agents",
    "/api/channels",
    "/api/stats",
    "/api/history/general",
    "/api/messages",
    "/api/workspaces",
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(channel: str, content: str, msg_id: str | None = None) -> dict:
    body = {"sender": "ywatanabe", "payload": {"channel": channel, "content": content}}
    if msg_id:
        body["id"] = msg_id
    return body


async def test_healthz_without_a_token_and_metrics(http):
    resp = await http.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await http.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    assert "\norochi_http_messages_in_total 0\n" in text and "\norochi_http_ingest_pending" in text


async def test_reads_need_a_valid_token(http, bed):
    for path in READ_ROUTES:
        resp = await http.get(path)
        body = await resp.json()
        assert resp.status == 401 and body["status"] == 401 and "token" in body["error"], path
        resp = await http.get(path, headers=bearer(WRONG_TOKEN))
        assert resp.status == 401, path
    resp = await http.get("/api/stats", headers=bearer(bed.default_token))
    assert resp.status == 200
    resp = await http.get("/api/stats", params={"token": bed.default_token})
    assert resp.status == 200
    resp = await http.get("/api/whoami", headers=bearer(bed.admin_token))
    assert await resp.json() == {"admin": True, "workspace": None}


async def test_posting_needs_the_admin_token_and_stores_nothing_without_it(http, bed):
    for headers in ({}, bearer(bed.default_token), bearer(WRONG_TOKEN)):
        resp = await http.post("/api/messages", json=message("#adm", "refused"), headers=headers)
        assert resp.status == 401, headers
    resp = await http.post(
        "/api/messages", json=message("#adm", "refused"), headers=bearer(bed.default_token)
    )
    assert "admin token" in (await resp.json())["error"]
    assert bed.history("#adm") == []


async def test_bodies_over_their_limit_are_413(http, bed):
    # An admin route's small limit, from Content-Length alone, before any body is read...
    resp = await http.post(
        "/api/invites/redeem",
        data=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(10**9)},
    )
    body = await resp.json()
    assert resp.status == 413 and body["limit"] == ADMIN_BODY_MAX_BYTES

    # ...and of a chunked body, as soon as it passes the limit.
    async def chunks(total: int):
        for _ in range(total // 16384):
            yield b" " * 16384

    resp = await http.post(
        "/api/invites/redeem",
        data=chunks(ADMIN_BODY_MAX_BYTES + 32768),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413 and (await resp.json())["limit"] == ADMIN_BODY_MAX_BYTES
    # A message may be as large as a frame, once the admin token is proven.
    resp = await http.post(
        "/api/messages",
        data=chunks(bed.cfg.ws.max_frame_bytes + 65536),
        headers={"Content-Type": "application/json", **bearer(bed.admin_token)},
    )
    assert resp.status == 413 and (await resp.json())["limit"] == bed.cfg.ws.max_frame_bytes
    assert bed.history("#general") == []


async def test_bad_json_and_unknown_routes_are_json_errors(http, bed):
    admin = {"Content-Type": "application/json", **bearer(bed.admin_token)}
    for raw, field in (
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"sender": "x", "payload": {"channel": "#a", "content": 3}}', "payload.content"),
    ):
        resp = await http.post("/api/messages", data=raw, headers=admin)
        body = await resp.json()
        assert resp.status == 400 and body["status"] == 400, raw
        if field:
            assert body["field"] == field
    resp = await http.get("/api/nope", headers=bearer(bed.admin_token))
    assert resp.status == 404 and "no such route" in (await resp.json())["error"]


async def test_a_post_is_acked_once_the_persister_stored_it(http, bed, persister):
    resp = await http.post(
        "/api/messages", json=message("rest", "hello @rest-reader"), headers=bearer(bed.admin_token)
    )
    body = await resp.json()
    assert resp.status == 201, body
    assert (body["status"], body["seq"], body["channel"]) == ("ok", 1, "#rest")
    rows = bed.history("#rest")  # 201 means it is in the file already
    assert [(r["msg_id"], r["seq"], r["sender_type"]) for r in rows] == [(body["id"], 1, "human")]
    resp = await http.post(
        "/api/messages", json=message("#rest", "again", body["id"]), headers=bearer(bed.admin_token)
    )
    again = await resp.json()
    assert resp.status == 201 and again["duplicate"] is True and again["seq"] == 1
    assert len(bed.history("#rest")) == 1


async def test_without_a_persister_a_post_is_503_then_stored_once_it_is_back(make_bed):
    bed = make_bed(SCITEX_OROCHI_HTTP_POST_TIMEOUT_S="0.5")
    msg_id = str(uuid.uuid4())
    async with TestClient(TestServer(create_app(bed.cfg), host="127.0.0.1")) as http:
        resp = await http.post(
            "/api/messages",
            json=message("#outage", "queued", msg_id),
            headers=bearer(bed.admin_token),
        )
        body = await resp.json()
        assert resp.status == 503 and body["id"] == msg_id and "queued" in body["error"]
        assert bed.history("#outage") == []
        persister = PersisterThread(bed.cfg).start()  # republished to it once it is ready
        try:
            rows = await eventually(lambda: bed.history("#outage"), 10, "the queued message")
            assert [r["msg_id"] for r in rows] == [msg_id]
            resp = await http.post(
                "/api/messages",
                json=message("#outage", "queued", msg_id),
                headers=bearer(bed.admin_token),
            )
            assert resp.status == 201 and (await resp.json())["duplicate"] is True
            assert len(bed.history("#outage")) == 1
        finally:
            persister.stop()
