"""The HTTP gateway's web push routes (gateway_http/api_push.py) in this process, with the
persister in a thread: the VAPID public key is the data dir's, subscriptions are added,
listed and removed through the persister, validated at the edge (endpoint, key sizes,
person), bounded per person, admin-only, and absent while push is off."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_http.api_push import check_endpoint, check_key
from gateway_http.app import create_app
from gateway_http.errors import ApiError
from scitex_orochi.hub import store_push, webpush

from support.fake_push import FakePushService

PATH = "/api/push/subscriptions"


@pytest.fixture
def bed(make_bed):
    return make_bed(SCITEX_OROCHI_PUSH_ENABLED="true")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, method: str, path: str, token: str, **kw) -> tuple[int, dict]:
    resp = await http.request(method, path, headers=bearer(token), **kw)
    return resp.status, await resp.json()


def b64(n: int, first: int = 4) -> str:
    return base64.urlsafe_b64encode(bytes([first]) + b"\x01" * (n - 1)).decode().rstrip("=")


def test_endpoint_and_key_checks_name_the_field():
    assert check_endpoint("https://fcm.googleapis.com/fcm/send/abc").startswith("https://")
    assert check_endpoint("http://127.0.0.1:9/push/x")
    for bad in (
        "http://example.com/push",
        "ftp://x/y",
        "https://",
        "https://a b",
        "",
        7,
        "https://x/" + "a" * 2048,
        "http://127.0.0.1:99999/x",
    ):
        with pytest.raises(ApiError) as err:
            check_endpoint(bad)
        assert err.value.body.get("field") == "endpoint", bad
    assert check_key(b64(65), "keys.p256dh", 65) == b64(65)
    assert check_key(b64(65) + "=", "keys.p256dh", 65)  # padding is allowed
    for bad, size in ((b64(64), 65), (b64(65, first=2), 65), ("no+slash/", 65), (b64(17), 16)):
        with pytest.raises(ApiError):
            check_key(bad, "keys.p256dh" if size == 65 else "keys.auth", size)


async def test_subscribe_list_and_unsubscribe_through_the_persister(http, bed, persister):
    admin = bed.admin_token
    status, body = await call(http, "GET", "/api/push/vapid-public-key", admin)
    assert status == 200, body
    on_disk = webpush.load_or_create(bed.cfg.data_dir)  # made at start by prepare()
    assert body["public_key"] == webpush.public_key_b64(on_disk)
    status, again = await call(http, "GET", "/api/push/vapid-public-key/", bed.default_token)
    assert status == 200 and again == body  # any token; with the slash too

    async with FakePushService() as service:
        sub = service.subscription("alice-laptop")
        status, body = await call(http, "POST", PATH, admin, json={**sub, "person": "alice"})
        assert status == 201 and body["outcome"] == "added", body
        assert body["person"] == "alice" and body["workspace"] == "default"
        store = bed.store()
        try:
            [row] = store_push.of_people(store.engine, "default", ["alice"])
        finally:
            store.close()
        assert row["endpoint"] == sub["endpoint"]
        assert (row["p256dh"], row["auth"]) == (sub["keys"]["p256dh"], sub["keys"]["auth"])

        status, body = await call(http, "POST", PATH + "/", admin, json={**sub, "person": "alice"})
        assert status == 200 and body["outcome"] == "updated", body
        status, body = await call(http, "GET", PATH + "?person=alice", admin)
        assert status == 200, body
        assert [s["endpoint"] for s in body["subscriptions"]] == [sub["endpoint"]]
        assert "p256dh" not in body["subscriptions"][0]  # the keys are never read back

        status, body = await call(http, "DELETE", PATH, admin, json={"endpoint": sub["endpoint"]})
        assert status == 200 and body["removed"] is True, body
        status, body = await call(http, "DELETE", PATH, admin, json={"endpoint": sub["endpoint"]})
        assert status == 200 and body["removed"] is False, body
        status, body = await call(http, "GET", PATH + "?person=alice", admin)
        assert body["subscriptions"] == []


async def test_refusals_at_the_edge_and_the_bound(http, bed, persister):
    admin, ws_token = bed.admin_token, bed.default_token
    async with FakePushService() as service:
        sub = {**service.subscription("x"), "person": "carol"}
        cases = [
            ({**sub, "endpoint": "http://example.com/push/x"}, "endpoint"),
            ({**sub, "keys": {"p256dh": b64(64), "auth": sub["keys"]["auth"]}}, "keys.p256dh"),
            ({**sub, "keys": {"p256dh": sub["keys"]["p256dh"], "auth": b64(8)}}, "keys.auth"),
            ({**sub, "keys": "k"}, "keys"),
            ({k: v for k, v in sub.items() if k != "person"}, "person"),
            ({**sub, "person": "a|b"}, "person"),
        ]
        for data, field in cases:
            status, body = await call(http, "POST", PATH, admin, json=data)
            assert status == 400 and body.get("field") == field, (field, body)
        status, body = await call(http, "POST", PATH, ws_token, json=sub)
        assert status == 403, body  # a workspace token never acts as a person
        status, body = await call(http, "DELETE", PATH, ws_token, json={"endpoint": "https://x/y"})
        assert status == 403, body
        status, body = await call(http, "POST", PATH, admin, data=b"x" * 9000)
        assert status == 413, body

        for i in range(store_push.MAX_PER_PERSON):
            status, body = await call(
                http, "POST", PATH, admin, json={**service.subscription(f"c{i}"), "person": "carol"}
            )
            assert status == 201, body
        status, body = await call(http, "POST", PATH, admin, json=sub)
        assert status == 400 and body["code"] == "LIMIT_EXCEEDED", body
        assert "remove one" in body["error"]
        status, body = await call(http, "POST", PATH, admin, json={**sub, "person": "dave"})
        assert status == 201, body  # the bound is per person


async def test_the_routes_are_absent_while_push_is_off(make_bed):
    bed = make_bed()
    async with TestClient(TestServer(create_app(bed.cfg), host="127.0.0.1")) as http:
        status, body = await call(http, "GET", "/api/push/vapid-public-key", bed.admin_token)
        assert status == 404 and "SCITEX_OROCHI_PUSH_ENABLED" in body["error"], body
        status, body = await call(http, "POST", PATH, bed.admin_token, json={})
        assert status == 404, body
        status, body = await call(http, "GET", "/api/config", bed.admin_token)
        assert body["push"] is False
