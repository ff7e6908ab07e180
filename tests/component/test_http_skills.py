"""Skills over REST (gateway_http/api_skills.py) and their expansion when a person posts
`/<skill> @agent args...` (gateway_http/skill_expand.py), in this process: the HTTP
gateway's app, the persister in a thread and, where an agent must be connected, the
WebSocket gateway as a task. Admin writes and workspace-token refusals (403), edge
validation naming the field, proposals approved and rejected, the per-workspace limits,
the files on disk, and the expanded message reaching a mentioned agent."""

from __future__ import annotations

import json
import stat

import pytest

from gateway_http.skills_store import store_for

from support.agent import RawAgent

DEPLOY = {
    "description": "Deploy a service",
    "arguments": [
        {"name": "env", "description": "where", "required": True},
        {"name": "service", "required": False},
    ],
    "body": "Please deploy {{service}} to {{env}} and report back.",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, method: str, path: str, token: str, **kw) -> tuple[int, dict]:
    resp = await http.request(method, path, headers=bearer(token), **kw)
    return resp.status, await resp.json()


async def test_admin_writes_any_token_reads_and_workspace_tokens_get_403(http, bed):
    admin, token = bed.admin_token, bed.default_token
    status, body = await call(http, "PUT", "/api/skills/deploy", admin, json=DEPLOY)
    assert status == 201 and body["status"] == "created", body
    assert body["markdown"].startswith("---\nname: deploy\n")
    status, body = await call(http, "PUT", "/api/skills/deploy/", admin, json=DEPLOY)
    assert status == 200 and body["status"] == "updated", body
    status, body = await call(http, "POST", "/api/skills/deploy", admin, json=DEPLOY)
    assert status == 409 and body["field"] == "name", body
    markdown = "---\nname: check\ndescription: Run checks\n---\nRun the checks.\n"
    status, body = await call(
        http, "POST", "/api/skills/check/", admin, json={"markdown": markdown}
    )
    assert status == 201 and body["arguments"] == [], body
    for path in ("/api/skills", "/api/skills/"):
        for who in (admin, token):
            status, body = await call(http, "GET", path, who)
            assert status == 200 and body["workspace"] == "default", body
            assert [s["name"] for s in body["skills"]] == ["check", "deploy"]
            assert "body" not in body["skills"][0]
    status, body = await call(http, "GET", "/api/skills/deploy/", token)
    assert status == 200 and body["body"] == DEPLOY["body"], body
    assert body["arguments"][0] == {"name": "env", "description": "where", "required": True}
    for method, path, data in (
        ("PUT", "/api/skills/deploy", DEPLOY),
        ("POST", "/api/skills/other", DEPLOY),
        ("DELETE", "/api/skills/deploy/", None),
        ("GET", "/api/skills/pending", None),
        ("POST", "/api/skills/pending/deploy/approve", None),
        ("POST", "/api/skills/pending/deploy/reject/", None),
    ):
        status, body = await call(http, method, path, token, json=data)
        assert status == 403 and "admin token" in body["error"], (method, path, body)
    status, body = await call(http, "GET", "/api/skills/deploy", "wrong")
    assert status == 401, body
    # The files: <data dir>/skills/<workspace>/<name>.md, 0600 in a 0700 directory.
    directory = bed.cfg.data_dir / "skills" / "default"
    assert sorted(p.name for p in directory.iterdir()) == ["check.md", "deploy.md"]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "deploy.md").stat().st_mode) == 0o600
    status, body = await call(http, "DELETE", "/api/skills/deploy", admin)
    assert status == 200 and body["deleted"] == "deploy", body
    status, body = await call(http, "DELETE", "/api/skills/deploy", admin)
    assert status == 404, body
    status, body = await call(http, "GET", "/api/skills/deploy", token)
    assert status == 404 and "deploy" in body["error"], body
    # The admin names another workspace with ?workspace=; an unknown one is 404 for writes.
    status, body = await call(
        http, "PUT", "/api/skills/x", admin, json=DEPLOY, params={"workspace": "nope"}
    )
    assert status == 404, body


@pytest.mark.parametrize(
    "path, data, field",
    [
        ("/api/skills/Bad_Name", DEPLOY, "name"),
        ("/api/skills/" + "a" * 65, DEPLOY, "name"),
        ("/api/skills/pending/", DEPLOY, "name"),  # reserved: the proposals' routes
        ("/api/skills/ok", {**DEPLOY, "body": ""}, "body"),
        ("/api/skills/ok", {**DEPLOY, "body": "x" * (64 * 1024 + 1)}, "body"),
        ("/api/skills/ok", {**DEPLOY, "description": 3}, "description"),
        ("/api/skills/ok", {**DEPLOY, "arguments": "env"}, "arguments"),
        ("/api/skills/ok", {**DEPLOY, "arguments": [{"name": "Env"}]}, "arguments[0].name"),
        ("/api/skills/ok", {**DEPLOY, "arguments": [{"name": "e", "required": 1}]}, None),
        ("/api/skills/ok", {**DEPLOY, "name": "other"}, "name"),
        ("/api/skills/ok", {**DEPLOY, "colour": "red"}, "colour"),
        ("/api/skills/ok", {"markdown": "no front matter"}, "markdown"),
        ("/api/skills/ok", {"markdown": "---\nname: other\n---\nb"}, "markdown"),
    ],
)
async def test_validation_at_the_edge_names_the_field(http, bed, path, data, field):
    status, body = await call(http, "PUT", path, bed.admin_token, json=data)
    assert status == 400, body
    if field is not None:
        assert body["field"] == field, body
    else:
        assert "required" in body["field"], body
    assert not (bed.cfg.data_dir / "skills" / "default" / "ok.md").exists()


async def test_reserved_name_and_malformed_json(http, bed):
    status, body = await call(http, "POST", "/api/skills/pending", bed.admin_token, json=DEPLOY)
    assert status in (400, 404, 405), body  # never stored as a skill
    resp = await http.put("/api/skills/x", headers=bearer(bed.admin_token), data=b"{nope")
    assert resp.status == 400
    status, body = await call(http, "POST", "/api/skills/pending/propose", bed.default_token)
    assert status == 400 and body["field"] == "name" and "reserved" in body["error"], body


async def test_an_agent_proposes_and_the_admin_approves_or_rejects(http, bed, gateway):
    admin, token = bed.admin_token, bed.default_token
    agent = await RawAgent.connect(gateway.agent_url(token), "sk-proposer", ["#general"])
    try:
        status, body = await call(
            http, "POST", "/api/skills/deploy/propose", token, json={**DEPLOY}
        )
        assert status == 403 and "name the agent" in body["error"], body
        status, body = await call(
            http,
            "POST",
            "/api/skills/deploy/propose/",
            token,
            json={**DEPLOY, "proposer": "sk-absent"},
        )
        assert status == 403 and "not connected" in body["error"], body
        status, body = await call(
            http,
            "POST",
            "/api/skills/deploy/propose",
            token,
            json={**DEPLOY, "proposer": "sk-proposer"},
        )
        assert status == 202 and body["status"] == "pending", body
        assert body["proposer"] == "sk-proposer" and body["proposed_at"], body
        rejected = {"markdown": "---\nname: wipe\ndescription: Wipe\n---\nrm -rf\n"}
        status, body = await call(
            http,
            "POST",
            "/api/skills/wipe/propose",
            token,
            json={**rejected, "proposer": "sk-proposer"},
        )
        assert status == 202, body
    finally:
        await agent.close()
    status, body = await call(http, "GET", "/api/skills", token)
    assert body["skills"] == [], body  # proposals are not skills
    status, body = await call(http, "GET", "/api/skills/deploy", token)
    assert status == 404, body
    status, body = await call(http, "GET", "/api/skills/pending/", admin)
    assert status == 200, body
    assert [(p["name"], p["proposer"]) for p in body["pending"]] == [
        ("deploy", "sk-proposer"),
        ("wipe", "sk-proposer"),
    ]
    pending_file = bed.cfg.data_dir / "skills" / "default" / ".pending" / "deploy.md"
    assert "proposer: sk-proposer" in pending_file.read_text()
    status, body = await call(http, "POST", "/api/skills/pending/deploy/approve", admin)
    assert status == 200 and body["status"] == "approved", body
    status, body = await call(http, "POST", "/api/skills/pending/wipe/reject/", admin)
    assert status == 200 and body["status"] == "rejected", body
    for verb in ("approve", "reject"):
        status, body = await call(http, "POST", f"/api/skills/pending/wipe/{verb}", admin)
        assert status == 404 and "no pending proposal" in body["error"], body
    status, body = await call(http, "GET", "/api/skills/deploy", token)
    assert status == 200 and body["body"] == DEPLOY["body"] and "proposer" not in body, body
    status, body = await call(http, "GET", "/api/skills/pending", admin)
    assert body["pending"] == [], body
    # A token pinned to a name proposes as that name without naming it.
    status, row = await call(
        http, "POST", "/api/workspaces/default/tokens", admin, json={"agent_name": "sk-pinned"}
    )
    assert status == 201, row
    status, body = await call(http, "POST", "/api/skills/lint/propose", row["token"], json=DEPLOY)
    assert status == 202 and body["proposer"] == "sk-pinned", body


async def test_limits_per_workspace(http, bed):
    admin = bed.admin_token
    store = store_for(bed.cfg.data_dir)
    store.max_skills, store.max_pending = 2, 1
    for name in ("a", "b"):
        status, body = await call(http, "PUT", f"/api/skills/{name}", admin, json=DEPLOY)
        assert status == 201, body
    status, body = await call(http, "PUT", "/api/skills/c", admin, json=DEPLOY)
    assert status == 400 and "holds" in body["error"], body
    status, body = await call(http, "PUT", "/api/skills/a", admin, json=DEPLOY)
    assert status == 200, body  # replacing one is not a new one
    status, body = await call(http, "POST", "/api/skills/p1/propose", admin, json=DEPLOY)
    assert status == 202 and body["proposer"] == "api", body
    status, body = await call(http, "POST", "/api/skills/p1/propose", admin, json=DEPLOY)
    assert status == 202, body  # a new proposal of the same name replaces it
    status, body = await call(http, "POST", "/api/skills/p2/propose", admin, json=DEPLOY)
    assert status == 400 and "holds" in body["error"], body
    status, body = await call(http, "POST", "/api/skills/pending/p1/approve", admin)
    assert status == 400 and "holds" in body["error"], body  # 2 skills already
    status, body = await call(http, "GET", "/api/skills/pending", admin)
    assert [p["name"] for p in body["pending"]] == ["p1"]  # still pending


async def post(http, bed, content: str, channel: str = "#ops", **extra) -> tuple[int, dict]:
    return await call(
        http,
        "POST",
        "/api/messages",
        bed.admin_token,
        json={"sender": "ywatanabe", "payload": {"channel": channel, "content": content}, **extra},
    )


async def test_a_person_s_slash_skill_reaches_the_mentioned_agent_expanded(
    http, bed, persister, gateway
):
    admin, token = bed.admin_token, bed.default_token
    status, body = await call(http, "PUT", "/api/skills/deploy", admin, json=DEPLOY)
    assert status == 201, body
    worker = await RawAgent.connect(gateway.agent_url(token), "worker", ["#general"])
    other = await RawAgent.connect(gateway.agent_url(token), "sk-agent", ["#ops"])
    try:
        for content, words in (
            ("/nope @worker x", "unknown skill /nope"),
            ("/deploy @worker", "needs env"),
            ("/deploy @worker a b c", "extra: c"),
            ("/deploy env=prod", "name the agents"),
            ('/deploy @worker "unclosed', "cannot read"),
        ):
            status, body = await post(http, bed, content)
            assert status == 400 and body["field"] == "payload.content", (content, body)
            assert words in body["error"], (content, body)
        status, body = await post(http, bed, "/tmp is full")  # no skill, no agent: as written
        assert status == 201, body
        status, body = await post(http, bed, "/deploy @worker service=api env=prod")
        assert status == 201, body
        got = await worker.wait(lambda f: f["type"] == "message" and "skill" in json.dumps(f))
        payload = got["payload"]
        assert payload["channel"] == "#ops" and got["sender"] == "ywatanabe"
        assert payload["content"] == "@worker Please deploy api to prod and report back."
        assert payload["metadata"]["skill"] == {
            "name": "deploy",
            "by": "ywatanabe",
            "args": {"service": "api", "env": "prod"},
        }
        assert "worker" in payload["mentions"]
        # An agent's message starting with / is left as it is.
        ack = await other.post("#ops", "/deploy @worker env=agent")
        assert ack["payload"]["status"] == "ok", ack
        # The dashboard's observer socket is a person's path too.
        observer = await http.ws_connect("/ws", params={"token": admin})
        try:
            frame = {
                "type": "message",
                "sender": "ywatanabe",
                "id": "obs-1",
                "payload": {"channel": "#ops", "content": "/deploy @worker staging"},
            }
            await observer.send_str(json.dumps(frame))
            bad = {**frame, "id": "obs-2", "payload": {"channel": "#ops", "content": "/x @worker"}}
            await observer.send_str(json.dumps(bad))
            seen: list[dict] = []

            def acked(ref: str) -> bool:
                return any(f.get("type") == "ack" and f["payload"].get("ref") == ref for f in seen)

            # Both answered before the socket closes (closing cancels a post in flight).
            while not (acked("obs-1") and acked("obs-2")):
                seen.append(await observer.receive_json(timeout=10))
            error = next(f for f in seen if f.get("type") == "error")
            assert "unknown skill /x" in error["payload"]["detail"], error
        finally:
            await observer.close()
        staged = await worker.wait(lambda f: f["type"] == "message" and f.get("id") == "obs-1")
        assert staged["payload"]["metadata"]["skill"]["args"] == {"env": "staging"}
    finally:
        await worker.close()
        await other.close()
    contents = [r["content"] for r in bed.history("#ops")]
    assert contents == [
        "/tmp is full",
        "@worker Please deploy api to prod and report back.",
        "/deploy @worker env=agent",
        "@worker Please deploy  to staging and report back.",
    ], contents
