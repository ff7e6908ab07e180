"""Workspace subdomains: with SCITEX_OROCHI_BASE_HOST=localhost a request whose Host is
`<workspace>.localhost` (the workspace's name or id) is that workspace's: /api/whoami and
/api/config say so, a token of another workspace is refused there, an unknown workspace is
404 and other names stay 421. In Chromium (which resolves *.localhost to the loopback) the
dashboard opens that workspace."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_http.app import create_app

from support.browser import chromium, new_tab


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sub_bed(make_bed):
    return make_bed(SCITEX_OROCHI_BASE_HOST="localhost")


@pytest.fixture
async def sub_http(sub_bed):
    async with TestClient(TestServer(create_app(sub_bed.cfg), host="127.0.0.1")) as client:
        yield client


async def make_workspace(client: TestClient, admin: str, name: str) -> tuple[str, str]:
    resp = await client.post("/api/workspaces", json={"name": name}, headers=bearer(admin))
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return body["id"], body["token"]


async def test_a_workspace_subdomain_is_the_request_workspace(sub_http, sub_bed):
    admin = sub_bed.admin_token
    lab_id, lab_token = await make_workspace(sub_http, admin, "Lab")
    port = sub_http.port
    for host in ("lab.localhost", f"lab.localhost:{port}", f"{lab_id}.localhost", "LAB.localhost."):
        headers = {"Host": host, **bearer(admin)}
        who = await (await sub_http.get("/api/whoami", headers=headers)).json()
        assert who == {"admin": True, "workspace": lab_id}, host
        # ?workspace= does not leave the subdomain's workspace.
        resp = await sub_http.get("/api/config?workspace=default", headers=headers)
        config = await resp.json()
        assert config["workspace"] == lab_id and config["host_workspace"] == lab_id, host
        assert config["default_workspace"] == lab_id
    # The workspace's own token works there; another workspace's token does not.
    headers = {"Host": "lab.localhost"}
    resp = await sub_http.get("/api/whoami", headers={**headers, **bearer(lab_token)})
    assert await resp.json() == {"admin": False, "workspace": lab_id}
    resp = await sub_http.get("/api/stats", headers={**headers, **bearer(sub_bed.default_token)})
    assert resp.status == 401 and lab_id in (await resp.json())["error"]
    # The base host itself is the hub as before.
    resp = await sub_http.get("/api/config", headers={"Host": "localhost", **bearer(admin)})
    config = await resp.json()
    assert config["workspace"] is None and config["host_workspace"] is None
    # No such workspace: 404; not a one-label subdomain of the base: 421 as before.
    resp = await sub_http.get("/", headers={"Host": "nosuch.localhost"})
    assert resp.status == 404 and "nosuch" in (await resp.json())["error"]
    for host in ("a.lab.localhost", "lab.evil.example", "lablocalhost"):
        resp = await sub_http.get("/api/whoami", headers={"Host": host, **bearer(admin)})
        assert resp.status == 421, host
    # The page itself is served on the subdomain.
    resp = await sub_http.get("/", headers={"Host": "lab.localhost"})
    assert resp.status == 200


async def test_without_a_base_host_subdomains_are_not_answered(http, bed):
    resp = await http.get(
        "/api/whoami", headers={"Host": "default.localhost", **bearer(bed.admin_token)}
    )
    assert resp.status == 421


@pytest.mark.browser
async def test_the_dashboard_opens_the_subdomain_workspace(sub_http, sub_bed):
    lab_id, _token = await make_workspace(sub_http, sub_bed.admin_token, "lab")
    async with chromium() as browser:
        page = await new_tab(browser, {"width": 1200, "height": 800})
        await page.goto(f"http://lab.localhost:{sub_http.port}/?token={sub_bed.admin_token}")
        await page.wait_for_selector("#app:not([hidden])")
        select = page.locator("#workspace")
        assert await select.input_value() == lab_id
        assert await select.is_disabled()
        assert await select.locator("option").count() == 1
        assert page.errors == []
