"""The Gitea worker in a real hub, against the fake Gitea: every action over the `gitea`
frame and the HTTP routes, with their errors; the token never shows."""

from __future__ import annotations

import aiohttp
import pytest

from scitex_orochi.hub.testing import Hub

from support.agent import RawAgent
from support.fake_gitea import VERSION, FakeGitea
from support.util import wait_for


@pytest.fixture(scope="module")
def gitea_hub():
    fake = FakeGitea().start()
    fake.seed_org("lab")
    fake.seed_repo("lab", "orochi")
    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_GITEA_URL": fake.url,
            "SCITEX_OROCHI_GITEA_TOKEN": fake.token,
            "SCITEX_OROCHI_GITEA_TIMEOUT_S": "1.5",
        }
    ).start()
    wait_for(lambda: hub.status().get("gitea", ("",))[0] == "RUNNING", 30, "gitea RUNNING")
    yield hub, fake
    hub.stop()
    hub.cleanup()
    fake.stop()


async def gitea(agent: RawAgent, action: str, params: dict | None = None) -> dict:
    """Send one gitea frame; its reply (gitea_result or error), checked to come before the ack."""
    frames = await agent.request(
        {"type": "gitea", "payload": {"action": action, "params": params or {}}}, timeout=10
    )
    assert frames[-1]["type"] == "ack"
    replies = [f for f in frames if f["type"] in ("gitea_result", "error")]
    assert len(replies) == 1, frames
    return replies[0]


async def test_every_action_round_trips(gitea_hub):
    hub, fake = gitea_hub
    agent = await RawAgent.connect(hub.agent_url(hub.admin_token), "gitea-user")
    repo = {"owner": "lab", "repo": "orochi"}

    version = await gitea(agent, "get_version")
    assert version["type"] == "gitea_result"
    assert version["payload"]["action"] == "get_version"
    assert version["payload"]["result"] == {"version": VERSION}

    created = await gitea(agent, "create_issue", {**repo, "title": "Bug", "body": "b"})
    issue = created["payload"]["result"]
    assert issue["title"] == "Bug" and issue["state"] == "open" and issue["number"] >= 1

    listed = (await gitea(agent, "list_issues", repo))["payload"]["result"]
    assert issue["number"] in [i["number"] for i in listed]

    comment = await gitea(
        agent, "add_comment", {**repo, "issue_number": issue["number"], "body": "seen"}
    )
    assert comment["payload"]["result"]["body"] == "seen"

    closed = await gitea(agent, "close_issue", {**repo, "issue_number": issue["number"]})
    assert closed["payload"]["result"]["state"] == "closed"
    still_open = (await gitea(agent, "list_issues", repo))["payload"]["result"]
    assert issue["number"] not in [i["number"] for i in still_open]
    all_issues = await gitea(agent, "list_issues", {**repo, "state": "closed"})
    assert issue["number"] in [i["number"] for i in all_issues["payload"]["result"]]

    org = await gitea(agent, "create_org", {"name": "newteam", "description": "d"})
    assert org["payload"]["result"]["username"] == "newteam"
    in_org = await gitea(agent, "create_repo", {"name": "tools", "org": "newteam"})
    assert in_org["payload"]["result"]["full_name"] == "newteam/tools"
    mine = await gitea(agent, "create_repo", {"name": "scratch", "private": True})
    assert mine["payload"]["result"]["full_name"] == f"{fake.username}/scratch"
    assert mine["payload"]["result"]["private"] is True

    org_repos = (await gitea(agent, "list_repos", {"org": "newteam"}))["payload"]["result"]
    assert [r["full_name"] for r in org_repos] == ["newteam/tools"]
    everything = (await gitea(agent, "list_repos"))["payload"]["result"]
    assert {"lab/orochi", "newteam/tools", f"{fake.username}/scratch"} <= {
        r["full_name"] for r in everything
    }
    assert all(r["authorization"] == f"token {fake.token}" for r in fake.requests)
    await agent.ws.close()


async def test_errors(gitea_hub):
    hub, fake = gitea_hub
    agent = await RawAgent.connect(hub.agent_url(hub.admin_token), "gitea-errors")

    unknown = await gitea(agent, "delete_the_world")
    assert unknown["type"] == "error"
    assert unknown["payload"]["code"] == "GITEA_UNKNOWN_ACTION"
    assert "delete_the_world" in unknown["payload"]["detail"]

    missing = await gitea(agent, "create_issue", {"owner": "lab", "repo": "orochi"})
    assert missing["payload"]["code"] == "GITEA_MISSING_PARAM"
    assert "title" in missing["payload"]["detail"]

    not_found = await gitea(agent, "list_issues", {"owner": "lab", "repo": "ghost"})
    assert not_found["payload"]["code"] == "GITEA_API_ERROR"
    assert not_found["payload"]["status"] == 404
    assert "couldn't be found" in not_found["payload"]["detail"]

    exists = await gitea(agent, "create_repo", {"name": "orochi", "org": "lab"})
    assert (exists["payload"]["code"], exists["payload"]["status"]) == ("GITEA_API_ERROR", 409)

    dup_org = await gitea(agent, "create_org", {"name": "lab"})
    assert dup_org["payload"]["status"] == 422

    fake.fail_next(500)
    broken = await gitea(agent, "get_version")
    assert (broken["payload"]["code"], broken["payload"]["status"]) == ("GITEA_API_ERROR", 500)

    fake.delay_s = 3.0
    try:
        slow = await gitea(agent, "get_version")
    finally:
        fake.delay_s = 0.0
    assert slow["payload"]["code"] == "GITEA_API_ERROR" and "status" not in slow["payload"]
    assert "did not answer" in slow["payload"]["detail"]

    # The worker still answers after all of that.
    assert (await gitea(agent, "get_version"))["type"] == "gitea_result"
    assert fake.token not in "".join(agent.raw)
    assert fake.token not in hub.log()
    await agent.ws.close()


async def test_http_routes(gitea_hub):
    hub, fake = gitea_hub
    base = f"{hub.http_url}/api/gitea"
    admin = {"Authorization": f"Bearer {hub.admin_token}"}
    member = {"Authorization": f"Bearer {hub.default_token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/issues/lab/orochi", headers=member) as resp:
            assert resp.status == 403  # no grant yet: refused before any Gitea call
            assert (await resp.json())["code"] == "FORBIDDEN"
        async with http.put(
            f"{hub.http_url}/api/workspaces/default/gitea", headers=admin, json={"owners": ["lab"]}
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["gitea_access"] == {"owners": ["lab"], "repos": []}
        async with http.post(
            f"{base}/issues/lab/orochi", headers=admin, json={"title": "From REST", "body": "x"}
        ) as resp:
            assert resp.status == 201
            issue = await resp.json()
        assert issue["title"] == "From REST"
        async with http.get(f"{base}/issues/lab/orochi", headers=member) as resp:
            assert resp.status == 200
            assert "From REST" in [i["title"] for i in await resp.json()]
        async with http.get(f"{base}/issues/lab/orochi?state=closed", headers=member) as resp:
            assert "From REST" not in [i["title"] for i in await resp.json()]
        async with http.get(f"{base}/repos", headers=member) as resp:
            assert resp.status == 200
            assert "lab/orochi" in [r["full_name"] for r in await resp.json()]
        async with http.get(f"{base}/repos?org=lab&token={hub.admin_token}") as resp:
            assert [r["full_name"] for r in await resp.json()] == ["lab/orochi"]

        async with http.get(f"{base}/repos") as resp:
            assert resp.status == 401
        async with http.post(
            f"{base}/issues/other/repo", headers=member, json={"title": "t"}
        ) as resp:
            assert resp.status == 403
        async with http.post(f"{base}/issues/lab/orochi", headers=admin, json={}) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == "GITEA_MISSING_PARAM"
        async with http.post(f"{base}/issues/lab/orochi", headers=admin, data="{") as resp:
            assert resp.status == 400
        async with http.get(f"{base}/issues/lab/ghost", headers=member) as resp:
            assert resp.status == 404
            body = await resp.json()
            assert body["code"] == "GITEA_API_ERROR" and body["gitea_status"] == 404
        fake.fail_next(503)
        async with http.get(f"{base}/repos", headers=member) as resp:
            assert resp.status == 502
            assert (await resp.json())["gitea_status"] == 503
    assert fake.token not in hub.log()


async def test_gitea_needs_the_admin_or_a_grant_before_any_gitea_call(gitea_hub):
    """Every action runs with the hub's Gitea token: a workspace token gets only what
    its workspace was granted, and the refusal comes before Gitea sees anything."""
    hub, fake = gitea_hub
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {hub.admin_token}"}
        async with http.post(
            f"{hub.http_url}/api/workspaces", headers=headers, json={"name": "gitea-less"}
        ) as resp:
            created = await resp.json()
        ws_id, token = created["id"], created["token"]
        agent = await RawAgent.connect(hub.agent_url(token), "outsider")
        before = len(fake.requests)
        for action, params in [
            ("get_version", {}),
            ("list_repos", {}),
            ("create_org", {"name": "x"}),
            ("create_repo", {"name": "r", "org": "lab"}),
            ("close_issue", {"owner": "lab", "repo": "orochi", "issue_number": 1}),
        ]:
            reply = await gitea(agent, action, params)
            assert reply["payload"]["code"] == "FORBIDDEN", (action, reply)
        assert len(fake.requests) == before
        async with http.put(
            f"{hub.http_url}/api/workspaces/{ws_id}/gitea",
            headers=headers,
            json={"repos": ["lab/orochi"]},
        ) as resp:
            assert resp.status == 200
        listed = await gitea(agent, "list_issues", {"owner": "lab", "repo": "orochi"})
        assert listed["type"] == "gitea_result"
        for action, params in [
            ("create_org", {"name": "y"}),
            ("create_repo", {"name": "r"}),
            ("create_repo", {"name": "r", "org": "lab"}),
            ("list_issues", {"owner": "lab", "repo": "secret"}),
        ]:
            assert (await gitea(agent, action, params))["payload"]["code"] == "FORBIDDEN"
        repos = (await gitea(agent, "list_repos"))["payload"]["result"]
        assert [r["full_name"] for r in repos] == ["lab/orochi"]  # the search, filtered
        await agent.ws.close()


async def test_worker_restart_keeps_answering(gitea_hub):
    hub, _fake = gitea_hub
    ready_before = hub.log_path.read_text().count("gitea worker gitea-")
    old = hub.kill("gitea")
    hub.wait_restarted("gitea", old)
    # Ready (logged after its bus round trip) means its subscription is live.
    wait_for(
        lambda: hub.log_path.read_text().count("gitea worker gitea-") > ready_before,
        60,
        "the new worker ready",
    )
    agent = await RawAgent.connect(hub.agent_url(hub.admin_token), "gitea-after")
    reply = await gitea(agent, "get_version")
    assert reply["type"] == "gitea_result"
    await agent.ws.close()
