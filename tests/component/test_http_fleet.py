"""The fleet's REST routes (docs/fleet.md §5, gateway_http/api_fleet.py) in this process:
each route with and without its trailing slash, its auth (a workspace token writes only
as a name connected in its workspace or pinned to it), validation naming the field,
and the answers' shapes as the sidecar and the 0.13+ CLI read them. The agents are
dialect-B clients (tests/support/agent_b.py) on the WebSocket gateway."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest

from support.agent_b import AgentB
from support.util import eventually

SLASHES = ("", "/")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, method: str, path: str, token: str | None, **kw) -> tuple[int, object]:
    headers = bearer(token) if token else {}
    resp = await http.request(method, path, headers=headers, **kw)
    if resp.content_type == "application/json":
        return resp.status, await resp.json()
    return resp.status, await resp.text()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def b_agent(gateway, bed, name: str, *channels: str) -> AgentB:
    agent = await AgentB.connect(gateway.url, bed.default_token, name)
    assert (await agent.register())["type"] == "registered"
    for channel in channels:
        assert (await agent.subscribe(channel))["type"] == "subscribed"
    return agent


async def rest_register(http, token: str, name: str, slash: str = "/", **extra) -> tuple:
    body = {
        "token": token,
        "name": name,
        "agent_id": f"1@{name}",
        "role": "head",
        "machine": "m1",
        "hostname": "h1",
        "multiplexer": "tmux",
        "orochi_current_task": "triaging issue 12",
        "orochi_subagent_count": 2,
        "cpu_percent": 12.5,
        "mem_percent": 40,
        **extra,
    }
    return await call(http, "POST", f"/api/agents/register{slash}", None, json=body)


async def post_a(http, bed, channel: str, text: str, sender: str = "ywatanabe") -> dict:
    status, body = await call(
        http,
        "POST",
        "/api/messages",
        bed.admin_token,
        json={"sender": sender, "payload": {"channel": channel, "content": text}},
    )
    assert status == 201, body
    assert isinstance(body, dict)
    return body


async def test_rest_register_decorates_presence_and_names_the_token(http, bed, persister, gateway):
    name = uid("fl-reg")
    agent = await b_agent(gateway, bed, name)
    try:
        for slash in SLASHES:
            status, body = await rest_register(http, bed.default_token, name, slash)
            assert status == 200 and body == {"status": "ok", "name": name}, body
        status, agents = await call(http, "GET", "/api/agents", bed.default_token)
        me = next(a for a in agents if a["name"] == name)
        assert me["current_task"] == me["orochi_current_task"] == "triaging issue 12"
        assert me["subagent_count"] == 2 and me["hostname"] == "h1"
        assert me["resources"]["cpu_percent"] == 12.5 and me["rest_registered_at"] > 0
        # The token's name: me/subscriptions and DMs without ?agent=.
        for slash in SLASHES:
            path = f"/api/workspace/default/me/subscriptions{slash}"

            async def lasting(path=path):
                status, subs = await call(http, "GET", path, bed.default_token)
                assert status == 200, subs
                return subs if subs and subs[0]["lasting"] else None

            subs = await eventually(lasting, 5, "#general recorded")
            assert [s["channel"] for s in subs] == ["#general"] and subs[0]["live"], subs
            status, dms = await call(
                http, "GET", f"/api/workspace/default/dms{slash}", bed.default_token
            )
            assert status == 200 and dms == {"dms": []}, dms
        status, dm = await call(
            http,
            "POST",
            "/api/workspace/default/dms/",
            bed.default_token,
            json={"recipient": "agent:someone"},
        )
        assert status == 200 and dm["name"] == f"dm:agent:{name}|agent:someone", dm
    finally:
        await agent.close()


async def test_rest_register_auth_and_validation(http, bed):
    status, body = await rest_register(http, "wks_" + "0" * 32, "fl-x")
    assert status == 401, body
    status, body = await call(http, "POST", "/api/agents/register/", None, json={"name": "a"})
    assert status == 401, body
    cases = [
        ({"token": bed.default_token}, "name"),
        ({"token": bed.default_token, "name": "a|b"}, "name"),
        ({"token": 5, "name": "a"}, "token"),
        ({"token": bed.default_token, "name": "a", "role": 3}, "role"),
        ({"token": bed.default_token, "name": "a", "orochi_subagent_count": "2"}, None),
    ]
    for data, field in cases:
        status, body = await call(http, "POST", "/api/agents/register", None, json=data)
        assert status == 400, (data, body)
        assert body.get("field") == (field or "orochi_subagent_count"), (data, body)
    status, row = await call(
        http,
        "POST",
        "/api/workspaces/default/tokens",
        bed.admin_token,
        json={"agent_name": "fl-pinned"},
    )
    assert status == 201
    status, body = await rest_register(http, row["token"], "fl-other")
    assert status == 403 and "pinned" in body["error"], body
    status, body = await rest_register(http, bed.default_token, "fl-pinned")
    assert status == 403 and "pinned to another token" in body["error"], body
    status, body = await rest_register(http, row["token"], "fl-pinned")
    assert status == 200, body


async def test_reactions_in_fleet_shapes_with_a_workspace_token(http, bed, persister, gateway):
    name = uid("fl-rx")
    agent = await b_agent(gateway, bed, name, "#flrx")
    watcher = await b_agent(gateway, bed, uid("fl-w"), "#flrx")  # events skip their actor
    try:
        msg = await post_a(http, bed, "#flrx", "react to me")
        num, token = msg["num"], bed.default_token
        react = {"message_id": num, "emoji": "👍", "reactor": name}
        for slash, action in (("/", "added"), ("", "existed")):
            status, body = await call(http, "POST", f"/api/reactions{slash}", token, json=react)
            assert status == 200 and body["status"] == "ok" and body["action"] == action, body
        got = await watcher.wait(lambda f: f.get("type") == "reaction_update")
        assert got["message_id"] == num and got["reactor"] == name and got["action"] == "added"
        status, body = await call(
            http, "GET", "/api/reactions/", token, params={"message_ids": f"{num}"}
        )
        assert body == {str(num): {"👍": [{"reactor": name, "reactor_type": "agent"}]}}, body
        status, body = await call(
            http, "POST", "/api/reactions/", token, json={**react, "reactor": "fl-absent"}
        )
        assert status == 403 and "not connected" in body["error"], body
        for slash, action in (("/", "removed"), ("", "not_found")):
            status, body = await call(http, "DELETE", f"/api/reactions{slash}", token, json=react)
            assert status == 200 and body["action"] == action, body
    finally:
        await agent.close()
        await watcher.close()


async def test_threads_edits_and_deletes_without_a_sender(http, bed, persister, gateway):
    name = uid("fl-th")
    token = bed.default_token
    agent = await b_agent(gateway, bed, name, "#flth")
    watcher = await b_agent(gateway, bed, uid("fl-w"), "#flth")
    try:
        root = await post_a(http, bed, "#flth", "root")
        # No sender and nothing registered with the token: refused, saying why.
        status, body = await call(
            http, "POST", "/api/threads/", token, json={"parent_id": root["num"], "text": "r"}
        )
        assert status == 403 and "name the agent" in body["error"], body
        await rest_register(http, token, name)
        for slash in SLASHES:
            status, reply = await call(
                http,
                "POST",
                f"/api/threads{slash}",
                token,
                json={"parent_id": root["num"], "text": f"reply{slash}"},
            )
            assert status == 201 and reply["thread"]["num"] == root["num"], reply
        # The agent's own message, edited and deleted with no sender named.
        await agent.message("#flth", "mine")
        rows = await eventually(
            lambda: [r for r in bed.history("#flth") if r["content"] == "mine"], 5, "stored"
        )
        mine = rows[0]["num"]
        status, body = await call(
            http, "PATCH", f"/api/messages/{mine}/", token, json={"text": "e"}
        )
        assert status == 200 and body["edited_at"], body
        edit = await watcher.wait(lambda f: f.get("type") == "message_edit")
        assert edit["message_id"] == mine and edit["text"] == "e"
        status, body = await call(http, "DELETE", f"/api/messages/{mine}", token)
        assert status == 200, body
        # Someone else's message: the token's registered name is not its author.
        status, body = await call(
            http, "PATCH", f"/api/messages/{root['num']}", token, json={"text": "no"}
        )
        assert status == 403, body
    finally:
        await agent.close()
        await watcher.close()
    # The author gone, nothing registered that may act: 403 with the reason.
    other = await post_a(http, bed, "#flth", "x", sender="fl-someone")
    status, row = await call(
        http, "POST", "/api/workspaces/default/tokens", bed.admin_token, json={}
    )
    status, body = await call(http, "DELETE", f"/api/messages/{other['num']}/", row["token"])
    assert status == 403 and "no sender given" in body["error"], body


async def test_b_post_messages_with_slash_and_a_without(http, bed, persister, gateway):
    name = uid("fl-post")
    agent = await b_agent(gateway, bed, name, "#flpost")
    try:
        status, body = await call(
            http,
            "POST",
            "/api/messages/",
            bed.default_token,
            json={"channel": "flpost", "text": "hello B", "sender": name},
        )
        assert status == 201, body
        assert isinstance(body["id"], int) and body["id"] == body["num"]
        assert body["channel"] == "#flpost" and body["text"] == "hello B"
        assert body["sender"] == name and body["sender_type"] == "agent"
        status, body = await call(
            http,
            "POST",
            "/api/messages/",
            bed.default_token,
            json={"channel": "#flpost", "text": "x", "sender": "fl-nobody"},
        )
        assert status == 403, body
        for data, field in (({"text": "x", "sender": name}, "channel"), ({"channel": "c"}, "text")):
            status, body = await call(http, "POST", "/api/messages/", bed.admin_token, json=data)
            assert status == 400 and body["field"] == field, body
        # Without the slash: dialect A's route, admin only, A's body.
        status, body = await call(
            http,
            "POST",
            "/api/messages",
            bed.default_token,
            json={"channel": "#flpost", "text": "x", "sender": name},
        )
        assert status == 401, body
    finally:
        await agent.close()


async def test_health_reports(http, bed, persister):
    """Reports go through the persister into the registry (`last_diagnosis`)."""
    token = bed.default_token
    for slash in SLASHES:
        status, body = await call(
            http,
            "POST",
            f"/api/agents/health{slash}",
            token,
            json={"agent": "fl-sick", "status": "stuck", "reason": "no output", "source": "healer"},
        )
        assert status == 200 and body == {"status": "ok", "applied": 1}, body
    updates = [{"agent": "fl-a", "status": "ok"}, {"agent": "fl-b", "status": "stuck"}]
    status, body = await call(http, "POST", "/api/agents/health/", token, json={"updates": updates})
    assert status == 200 and body["applied"] == 2, body
    for data, field in (
        ({"status": "x"}, "agent"),
        ({"agent": "a"}, "status"),
        ({"agent": "a", "status": "x" * 65}, "status"),
        ({"updates": [{"agent": "a", "status": "ok"}, {"agent": "b"}]}, "updates[1].status"),
        ({"updates": "x"}, "updates"),
    ):
        status, body = await call(http, "POST", "/api/agents/health/", token, json=data)
        assert status == 400 and body["field"] == field, (data, body)
    status, body = await call(http, "POST", "/api/agents/health/", None, json=updates[0])
    assert status == 401
    status, body = await call(http, "GET", "/api/agents/health/", token)
    reports = {r["agent"]: r for r in body["reports"]}
    assert reports["fl-sick"]["status"] == "stuck" and reports["fl-sick"]["source"] == "healer"
    assert reports["fl-b"]["status"] == "stuck" and "fl-a" in reports
    # Not a reported class ("stuck" is not "stuck_prompt"): shown beside, the class is ours.
    sick = next(a for a in body["agents"] if a["name"] == "fl-sick")
    assert sick["health"] == "dead" and sick["reported"]["reason"] == "no output", sick


async def test_channels_array_members_subscribe_and_cron(http, bed, persister, gateway):
    name = uid("fl-ch")
    token = bed.default_token
    agent = await b_agent(gateway, bed, name, "#flch")
    try:
        status, listed = await call(http, "GET", "/api/channels/", token, params={"name": "flch"})
        assert status == 200 and isinstance(listed, list), listed
        assert [c["name"] for c in listed] == ["#flch"] and listed[0]["members"] == [name]
        assert "description" in listed[0]
        status, whole = await call(http, "GET", "/api/channels/", token)
        assert {"#general", "#flch"} <= {c["name"] for c in whole}
        status, a_shape = await call(http, "GET", "/api/channels", token)
        assert isinstance(a_shape, dict) and a_shape["#flch"] == [name], a_shape
        for slash in SLASHES:
            status, members = await call(
                http,
                "GET",
                f"/api/workspace/default/channel-members{slash}",
                token,
                params={"channel": "#flch"},
            )
            assert status == 200, members
            assert members == [
                {
                    "username": f"agent-{name}",
                    "name": name,
                    "permission": "read-write",
                    "kind": "agent",
                    "role": "head",
                    "online": True,
                    "mention_only": False,
                }
            ]
        status, body = await call(http, "GET", "/api/workspace/default/channel-members/", token)
        assert status == 400 and body["field"] == "channel"
        status, body = await call(
            http, "GET", "/api/workspace/other/channel-members/", token, params={"channel": "x"}
        )
        assert status == 404
        # Subscribing: self with a workspace token, anyone with the admin token.
        for slash in SLASHES:
            status, body = await call(
                http,
                "POST",
                f"/api/agents/{name}/subscribe{slash}",
                token,
                params={"agent": name},
                json={"channel": "flsub"},
            )
            assert status == 200 and body["action"] == "subscribed", body
            assert "#flsub" in body["channels"]
        status, body = await call(
            http,
            "POST",
            f"/api/agents/{name}/subscribe/",
            token,
            params={"agent": "fl-someone"},
            json={"channel": "x"},
        )
        assert status == 403 and "admin token" in body["error"], body
        status, body = await call(
            http, "POST", "/api/agents/fl-absent/subscribe/", token, json={"channel": "x"}
        )
        assert status == 403, body
        status, body = await call(
            http, "POST", f"/api/agents/{name}/subscribe/", token, json={"channel": ""}
        )
        assert status == 400 and body["field"] == "channel", body
        status, body = await call(
            http,
            "POST",
            "/api/agents/fl-offline/subscribe/",
            bed.admin_token,
            json={"channel": "#flsub"},
        )
        assert status == 200, body
        status, members = await call(
            http,
            "GET",
            "/api/workspace/default/channel-members/",
            token,
            params={"channel": "flsub"},
        )
        got = {m["name"]: m["online"] for m in members}
        assert got == {name: True, "fl-offline": False}, members
        status, body = await call(
            http, "POST", f"/api/agents/{name}/unsubscribe", token, json={"channel": "#flsub"}
        )
        assert status == 200 and "#flsub" not in body["channels"], body
        for slash in SLASHES:
            status, body = await call(
                http, "GET", f"/api/cron{slash}", token, params={"agent": name, "host": "h"}
            )
            assert status == 200 and body == [], body
        status, body = await call(http, "GET", "/api/cron/", None)
        assert status == 401
    finally:
        await agent.close()


async def test_export_formats_bounds_and_truncation(http, bed, persister, monkeypatch):
    for i in range(4):
        await post_a(http, bed, "#flexp", f"line {i}")
    token = bed.default_token
    for slash in SLASHES:
        status, text = await call(http, "GET", f"/api/channels/flexp/export{slash}", token)
        assert status == 200 and isinstance(text, str)
        assert [line for line in text.splitlines() if "line" in line][0].endswith(
            "ywatanabe: line 0"
        )
    status, md = await call(
        http, "GET", "/api/channels/%23flexp/export/", token, params={"format": "md"}
    )
    assert md.startswith("# #flexp") and "**ywatanabe**" in md
    status, js = await call(
        http, "GET", "/api/channels/flexp/export/", token, params={"format": "json"}
    )
    assert js["count"] == 4 and js["truncated"] is False
    assert [m["content"] for m in js["messages"]] == [f"line {i}" for i in range(4)]
    status, js = await call(
        http,
        "GET",
        "/api/channels/flexp/export/",
        token,
        params={"format": "json", "from": "2100-01-01"},
    )
    assert js["count"] == 0
    for params, field in (({"format": "pdf"}, "format"), ({"to": "soon"}, "to")):
        status, body = await call(http, "GET", "/api/channels/flexp/export/", token, params=params)
        assert status == 400 and body["field"] == field, body
    from gateway_http import api_fleet

    monkeypatch.setattr(api_fleet, "EXPORT_MAX_ROWS", 3)
    resp = await http.get("/api/channels/flexp/export/", headers=bearer(token))
    text = await resp.text()
    assert resp.headers["X-Orochi-Truncated"] == "true" and "truncated" in text
    assert "line 2" in text and "line 3" not in text


async def test_upload_base64_and_media_by_hash(http, bed, persister, gateway):
    name = uid("fl-up")
    token = bed.default_token
    data = b"fleet file " + uuid.uuid4().bytes
    sha = hashlib.sha256(data).hexdigest()
    body = {
        "data": base64.b64encode(data).decode(),
        "filename": "note.txt",
        "mime_type": "text/plain",
        "channel": "#general",
    }
    status, got = await call(http, "POST", "/api/upload-base64", token, json=body)
    assert status == 401 and "admin token" in got["error"], got  # nobody it acts as yet
    resp = await http.head(f"/api/media/by-hash/{sha}", headers=bearer(token))
    assert resp.status == 404
    agent = await b_agent(gateway, bed, name)
    try:
        await rest_register(http, token, name)
        status, got = await call(
            http, "POST", "/api/upload-base64", token, json={**body, "sender": "fl-else"}
        )
        assert status == 403, got
        for slash in SLASHES:
            status, got = await call(
                http, "POST", f"/api/upload-base64{slash}", token, json={**body, "sender": name}
            )
            assert status == 201, got
            assert set(got) == {"file_id", "url", "mime_type", "filename", "size"}
            assert got["size"] == len(data) and got["mime_type"] == "text/plain"
        resp = await http.get(got["url"], params={"token": token})
        assert resp.status == 200 and await resp.read() == data
        for slash in SLASHES:
            resp = await http.head(f"/api/media/by-hash/{sha}{slash}", headers=bearer(token))
            assert resp.status == 200
            status, found = await call(
                http,
                "POST",
                f"/api/media/by-hash/{sha}{slash}",
                token,
                json={"channel": "#general", "sender": name},
            )
            assert status == 200 and found["sha256"] == sha and found["url"].startswith("/media/")
        status, row = await call(
            http, "POST", "/api/workspaces", bed.admin_token, json={"name": "fl-o"}
        )
        other = row["token"]
        resp = await http.head(f"/api/media/by-hash/{sha}", headers=bearer(other))
        assert resp.status == 404  # another workspace's file is not "known" to it
        status, bad = await call(http, "POST", "/api/media/by-hash/xyz", token)
        assert status == 400 and bad["field"] == "sha256"
    finally:
        await agent.close()


async def test_invites_carry_code_beside_token(http, bed):
    status, row = await call(
        http, "POST", "/api/workspaces/default/invites", bed.admin_token, json={"max_uses": 2}
    )
    assert status == 201 and row["code"] == row["token"] and row["code"].startswith("inv_"), row
    status, listed = await call(http, "GET", "/api/workspaces/default/invites", bed.admin_token)
    assert all(i["code"] == i["token"] for i in listed["invites"]) and listed["invites"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/api/agents/health/"),
        ("GET", "/api/workspace/default/channel-members/?channel=x"),
        ("GET", "/api/workspace/default/me/subscriptions/"),
        ("POST", "/api/agents/x/subscribe/"),
        ("GET", "/api/channels/x/export/"),
        ("GET", "/api/channels/"),
        ("POST", "/api/messages/"),
        ("HEAD", "/api/media/by-hash/" + "0" * 64),
    ],
)
async def test_fleet_routes_need_a_token(http, method, path):
    resp = await http.request(method, path, json={} if method == "POST" else None)
    assert resp.status == 401
