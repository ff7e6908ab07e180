"""The HTTP gateway's conversation routes (docs/conversations.md, "REST") in this process:
reactions, threads, one message (read, edit, delete), DMs, search and permalinks, with
the persister in a thread and, where a workspace token acts as a connected agent, the
WebSocket gateway as a task. Who may act (gateway_http/acting.py), validation at the
edge, DM privacy on every read route and on the observer socket, and a live
`reaction_update` reaching an observer."""

from __future__ import annotations

import json

import aiohttp
import pytest

from scitex_orochi.hub.store import Store

from support.agent import RawAgent
from support.util import eventually

DM = "dm:agent:conv-alice|agent:conv-bob"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, method: str, path: str, token: str, **kw) -> tuple[int, object]:
    resp = await http.request(method, path, headers=bearer(token), allow_redirects=False, **kw)
    try:
        body = await resp.json()
    except Exception:  # noqa: BLE001 - a redirect has no JSON
        body = None
    return resp.status, body


async def post_message(http, bed, channel: str, content: str, sender: str = "ywatanabe") -> dict:
    status, body = await call(
        http,
        "POST",
        "/api/messages",
        bed.admin_token,
        json={"sender": sender, "payload": {"channel": channel, "content": content}},
    )
    assert status == 201, body
    assert isinstance(body, dict) and isinstance(body["num"], int)
    return body


async def test_reactions_add_list_and_remove_with_and_without_slashes(http, bed, persister):
    msg = await post_message(http, bed, "#rx", "deploy done")
    num = msg["num"]
    admin = bed.admin_token
    react = {"message_id": num, "emoji": "👀", "reactor": "ywatanabe"}
    status, body = await call(http, "POST", "/api/reactions/", admin, json=react)
    assert status == 200 and body["action"] == "added" and body["seq"] == 2, body
    status, body = await call(http, "POST", "/api/reactions", admin, json=react)
    assert status == 200 and body["action"] == "existed" and "seq" not in body, body
    by_id = {**react, "message_id": msg["id"], "emoji": "✅", "reactor": "healer"}
    status, body = await call(http, "POST", "/api/reactions", admin, json=by_id)
    assert status == 200 and body["action"] == "added", body
    for path in ("/api/reactions/", "/api/reactions"):
        status, body = await call(
            http, "GET", path, bed.default_token, params={"message_ids": f"{num},99999"}
        )
        assert status == 200 and body == {
            str(num): {
                "👀": [{"reactor": "ywatanabe", "reactor_type": "agent"}],
                "✅": [{"reactor": "healer", "reactor_type": "agent"}],
            }
        }, body
    status, body = await call(http, "DELETE", "/api/reactions/", admin, json=react)
    assert status == 200 and body["action"] == "removed", body
    # The same body as a query string, for clients that send no DELETE body.
    query = {k: str(v) for k, v in react.items()}
    status, body = await call(http, "DELETE", "/api/reactions", admin, params=query)
    assert status == 200 and body["action"] == "not_found", body
    rows = bed.history("#rx")
    assert rows[0]["reactions"] == {"✅": ["healer"]}


async def test_edge_validation_names_the_field_and_unknown_messages_are_404(http, bed, persister):
    admin = bed.admin_token
    msg = await post_message(http, bed, "#val", "x")
    cases = [
        ("POST", "/api/reactions", {"emoji": "👍"}, "message_id"),
        ("POST", "/api/reactions", {"message_id": 0, "emoji": "👍"}, "message_id"),
        ("POST", "/api/reactions", {"message_id": "9" * 25, "emoji": "👍"}, "message_id"),
        ("POST", "/api/reactions", {"message_id": msg["num"], "emoji": ""}, "emoji"),
        ("POST", "/api/reactions", {"message_id": msg["num"], "emoji": "x" * 33}, "emoji"),
        ("POST", "/api/reactions", {"message_id": msg["num"], "emoji": "a b"}, "emoji"),
        ("POST", "/api/threads", {"parent_id": msg["num"]}, "text"),
        ("POST", "/api/threads", {"text": "hi"}, "parent_id"),
        ("PATCH", f"/api/messages/{msg['num']}", {"text": 3}, "text"),
        ("POST", "/api/workspace/default/dms", {}, "recipient"),
        ("POST", "/api/workspace/default/dms", {"recipient": "robot:x"}, "recipient"),
    ]
    for method, path, data, field in cases:
        status, body = await call(http, method, path, admin, json=data)
        assert status == 400 and body["field"] == field, (path, data, body)
    for bad in ("abc", "0", "9" * 25, "-1"):
        for path in (f"/api/messages/{bad}", f"/api/threads/{bad}/", f"/m/{bad}"):
            status, body = await call(http, "GET", path, admin)
            assert status == 400 and body["field"] == "num", (path, body)
    for params, field in (
        ({"message_ids": "1,x"}, "message_ids"),
        ({"message_ids": ",".join(["1"] * 201)}, "message_ids"),
        ({}, None),
    ):
        status, body = await call(http, "GET", "/api/reactions", admin, params=params)
        assert status == 400 and body.get("field") == field, (params, body)
    unknown = msg["num"] + 1000
    for method, path, data in (
        ("GET", f"/api/messages/{unknown}/", None),
        ("GET", f"/api/threads/{unknown}", None),
        ("PATCH", f"/api/messages/{unknown}", {"text": "y"}),
        ("DELETE", f"/api/messages/{unknown}/", None),
        ("POST", "/api/reactions", {"message_id": unknown, "emoji": "👍"}),
        ("POST", "/api/threads", {"parent_id": unknown, "text": "y"}),
    ):
        status, body = await call(http, method, path, admin, json=data)
        assert status == 404 and f"#{unknown}" in body["error"], (method, path, body)
    status, body = await call(http, "GET", "/api/messages/1", "wks_" + "0" * 32)
    assert status == 401


async def test_threads_one_message_edit_delete_and_permalink(http, bed, persister):
    admin = bed.admin_token
    root = await post_message(http, bed, "#th", "root")
    status, reply = await call(
        http,
        "POST",
        "/api/threads/",
        admin,
        json={"parent_id": root["num"], "text": "first reply", "sender": "bob"},
    )
    assert status == 201, reply
    assert reply["channel"] == "#th" and reply["thread"] == {"root": root["id"], "num": root["num"]}
    # A reply to a reply joins the root's thread; `content` works as well as `text`.
    status, second = await call(
        http, "POST", "/api/threads", admin, json={"parent_id": reply["id"], "content": "second"}
    )
    assert status == 201 and second["thread"]["num"] == root["num"], second
    status, thread = await call(http, "GET", f"/api/threads/{root['num']}/", bed.default_token)
    assert status == 200, thread
    assert thread["root"]["num"] == root["num"] and thread["root"]["reply_count"] == 2
    assert [r["content"] for r in thread["replies"]] == ["first reply", "second"]
    assert [r["thread"]["num"] for r in thread["replies"]] == [root["num"]] * 2

    status, one = await call(http, "GET", f"/api/messages/{reply['num']}", bed.default_token)
    assert status == 200 and one["content"] == "first reply" and one["sender"] == "bob"
    status, edited = await call(
        http, "PATCH", f"/api/messages/{reply['num']}/", admin, json={"text": "fixed"}
    )
    assert status == 200 and edited["status"] == "ok" and edited["seq"] > 0, edited
    assert edited["edited_at"]
    status, one = await call(http, "GET", f"/api/messages/{reply['num']}/", bed.default_token)
    assert one["content"] == "fixed" and one["edited_at"] == edited["edited_at"]
    status, gone = await call(http, "DELETE", f"/api/messages/{reply['num']}", admin)
    assert status == 200 and gone["seq"] > edited["seq"], gone
    status, one = await call(http, "GET", f"/api/messages/{reply['num']}", bed.default_token)
    assert one["deleted"] is True and one["content"] == ""
    status, body = await call(
        http, "PATCH", f"/api/messages/{reply['num']}", admin, json={"text": "revive"}
    )
    assert status == 409, body  # MESSAGE_DELETED
    status, body = await call(
        http, "POST", "/api/threads", admin, json={"parent_id": reply["num"], "text": "x"}
    )
    assert status == 409, body

    resp = await http.get(f"/m/{root['num']}", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/?m={root['num']}"


async def test_who_acts_with_a_workspace_token(http, bed, persister, gateway):
    token, admin = bed.default_token, bed.admin_token
    msg = await post_message(http, bed, "#who", "mine", sender="ywatanabe")
    num = msg["num"]
    react = {"message_id": num, "emoji": "👍"}
    refusals = [
        ({**react}, "name the agent"),
        ({**react, "reactor": "conv-offline"}, "not connected"),
        ({**react, "reactor": "conv-agent", "reactor_type": "human"}, "admin token"),
    ]
    agent = await RawAgent.connect(gateway.agent_url(token), "conv-agent", ["#who"])
    try:
        for data, words in refusals:
            status, body = await call(http, "POST", "/api/reactions", token, json=data)
            assert status == 403 and words in body["error"], (data, body)
        status, body = await call(
            http, "POST", "/api/reactions", token, json={**react, "reactor": "conv-agent"}
        )
        assert status == 200 and body["action"] == "added", body
        # The persister's rule: only the sender (or the admin token) edits a message.
        status, body = await call(
            http, "PATCH", f"/api/messages/{num}", token, json={"text": "x", "sender": "conv-agent"}
        )
        assert status == 403 and "ywatanabe" in body["error"], body
        status, reply = await call(
            http,
            "POST",
            "/api/threads",
            token,
            json={"parent_id": num, "text": "agent reply", "sender": "conv-agent"},
        )
        assert status == 201, reply
        status, body = await call(
            http,
            "PATCH",
            f"/api/messages/{reply['num']}",
            token,
            json={"text": "agent fixed", "sender": "conv-agent"},
        )
        assert status == 200, body
        status, one = await call(http, "GET", f"/api/messages/{reply['num']}", token)
        assert one["sender_type"] == "agent" and one["content"] == "agent fixed"
    finally:
        await agent.close()
    # A token pinned to a name acts as that name without naming it, and as no other.
    status, row = await call(
        http, "POST", "/api/workspaces/default/tokens", admin, json={"agent_name": "conv-pinned"}
    )
    assert status == 201, row
    pinned = row["token"]
    status, body = await call(http, "POST", "/api/reactions", pinned, json=react)
    assert status == 200 and body["action"] == "added", body
    status, body = await call(
        http, "POST", "/api/reactions", pinned, json={**react, "reactor": "conv-agent"}
    )
    assert status == 403 and "pinned" in body["error"], body
    got = bed.history("#who")[0]["reactions"]
    assert got == {"👍": ["conv-agent", "conv-pinned"]}


async def test_dm_content_reaches_participants_and_the_admin_only(http, bed, persister, gateway):
    token, admin = bed.default_token, bed.admin_token
    alice = await RawAgent.connect(gateway.agent_url(token), "conv-alice", ["#general"])
    carol = await RawAgent.connect(gateway.agent_url(token), "conv-carol", ["#general"])
    outsider = await http.ws_connect("/ws", params={"token": token})
    as_carol = await http.ws_connect("/ws", params={"token": token, "agent": "conv-carol"})
    as_bob_absent = await http.ws_connect("/ws", params={"token": token, "agent": "conv-bob"})
    as_alice = await http.ws_connect("/ws", params={"token": token, "agent": "conv-alice"})
    watcher = await http.ws_connect("/ws", params={"token": admin})
    try:
        first = await as_bob_absent.receive_json()  # conv-bob is not connected: no DMs
        assert first["type"] == "error" and "not connected" in first["payload"]["detail"]
        ack = await alice.post(DM, "the secret plan")
        assert ack["payload"]["status"] == "ok", ack
        dm_num = bed.history(DM)[0]["num"]
        status, body = await call(
            http,
            "POST",
            "/api/reactions",
            token,
            json={"message_id": dm_num, "emoji": "🔒", "reactor": "conv-alice"},
        )
        assert status == 200, body
        status, body = await call(
            http,
            "POST",
            "/api/reactions",
            token,
            json={"message_id": dm_num, "emoji": "👀", "reactor": "conv-carol"},
        )
        assert status == 403 and body["status"] == 403, body  # NOT_A_MEMBER, from the persister
        await alice.post("#general", "public after")

        async def frames_until_public(ws) -> list[dict]:
            seen = []
            while True:
                frame = json.loads((await ws.receive()).data)
                seen.append(frame)
                if frame.get("payload", {}).get("content") == "public after":
                    return seen

        for ws in (outsider, as_carol, as_bob_absent):
            seen = await frames_until_public(ws)
            assert all("secret" not in json.dumps(f) and "🔒" not in json.dumps(f) for f in seen)
        for ws in (as_alice, watcher):
            seen = await frames_until_public(ws)
            types = [(f["type"], f["payload"].get("channel")) for f in seen]
            assert ("message", DM) in types and ("reaction_update", DM) in types, types

        hidden = {"error": f"no message #{dm_num} in workspace 'default'", "status": 404}
        for params in ({}, {"agent": "conv-carol"}):
            for path in (f"/api/messages/{dm_num}", f"/api/threads/{dm_num}"):
                status, body = await call(http, "GET", path, token, params=params)
                assert (status, body) == (404, hidden), (path, params)
            status, body = await call(http, "GET", f"/api/history/{DM}", token, params=params)
            assert status == 403 and "participants" in body["error"], body
            status, rows = await call(http, "GET", "/api/messages", token, params=params)
            assert status == 200 and all(r["channel"] != DM for r in rows), rows
            status, got = await call(
                http, "GET", "/api/reactions", token, params={"message_ids": dm_num, **params}
            )
            assert (status, got) == (200, {}), got
            status, summary = await call(http, "GET", "/api/channels/summary", token, params=params)
            assert DM not in [c["name"] for c in summary["channels"]]
        status, body = await call(http, "GET", "/api/workspace/default/dms/", token)
        assert status == 403, body
        status, body = await call(
            http, "GET", "/api/workspace/default/dms", token, params={"agent": "conv-carol"}
        )
        assert (status, body) == (200, {"dms": []})
        status, body = await call(
            http,
            "POST",
            "/api/threads",
            token,
            json={"parent_id": dm_num, "text": "let me in", "sender": "conv-carol"},
        )
        assert status == 404, body

        # The participant and the admin token read it.
        for who, params in ((token, {"agent": "conv-alice"}), (admin, {})):
            status, body = await call(http, "GET", f"/api/messages/{dm_num}/", who, params=params)
            assert status == 200 and body["content"] == "the secret plan", body
            status, rows = await call(http, "GET", f"/api/history/{DM}", who, params=params)
            assert status == 200 and [r["num"] for r in rows] == [dm_num]
            status, got = await call(
                http, "GET", "/api/reactions", who, params={"message_ids": dm_num, **params}
            )
            assert got == {
                str(dm_num): {"🔒": [{"reactor": "conv-alice", "reactor_type": "agent"}]}
            }
        status, body = await call(
            http, "GET", "/api/workspace/default/dms", token, params={"agent": "conv-alice"}
        )
        assert status == 200 and body["dms"] == [
            {"name": DM, "participants": ["agent:conv-alice", "agent:conv-bob"], "last_seq": 2}
        ], body
        status, body = await call(http, "GET", "/api/workspace/default/dms/", admin)
        assert [d["name"] for d in body["dms"]] == [DM]
        status, body = await call(
            http,
            "POST",
            "/api/workspace/default/dms/",
            token,
            json={"recipient": "agent:conv-zed", "sender": "conv-carol"},
        )
        assert (status, body) == (
            200,
            {
                "name": "dm:agent:conv-carol|agent:conv-zed",
                "participants": ["agent:conv-carol", "agent:conv-zed"],
            },
        )
        status, body = await call(
            http, "GET", "/api/workspace/other/dms", token, params={"agent": "conv-alice"}
        )
        assert status == 404, body
    finally:
        for ws in (outsider, as_carol, as_bob_absent, as_alice, watcher):
            await ws.close()
        await alice.close()
        await carol.close()


async def next_frame(ws, kind: str) -> dict | None:
    """The next text frame of the observer socket if it is of `kind` (None otherwise);
    bounded, so a socket that goes quiet fails the wait instead of hanging it."""
    got = await ws.receive(timeout=5)
    if got.type != aiohttp.WSMsgType.TEXT:
        raise AssertionError(f"the observer socket sent {got.type}: {got.data!r}")
    frame = json.loads(got.data)
    return frame if frame.get("type") == kind else None


async def observing(http, bed, ws, attempts: int = 10) -> None:
    """Returns once the observer socket is live: the HTTP gateway subscribes to the
    deliveries only while someone watches, and a post before that subscription reached
    the broker is not replayed on the socket (the dashboard reads it from history), so
    a probe is posted until one arrives."""
    for _ in range(attempts):
        probe = await post_message(http, bed, "#observer-probe", "are you watching?")
        try:
            while True:
                got = await ws.receive(timeout=2)
                if got.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"the observer socket sent {got.type}: {got.data!r}")
                if json.loads(got.data).get("id") == probe["id"]:
                    return
        except TimeoutError:
            continue
    raise AssertionError("no probe reached the observer socket")


async def test_an_observer_gets_a_reaction_update_live(http, bed, persister):
    msg = await post_message(http, bed, "#live", "react to me")
    ws = await http.ws_connect("/ws", params={"token": bed.default_token})
    try:
        await observing(http, bed, ws)
        status, body = await call(
            http,
            "POST",
            "/api/reactions",
            bed.admin_token,
            json={"message_id": msg["num"], "emoji": "🎉", "reactor": "ywatanabe"},
        )
        assert status == 200, body

        async def got_update() -> dict | None:
            return await next_frame(ws, "reaction_update")

        frame = await eventually(got_update, 10, "a reaction_update on the observer socket")
        assert frame["payload"] == {
            "channel": "#live",
            "seq": body["seq"],
            "message": msg["id"],
            "num": msg["num"],
            "emoji": "🎉",
            "reactor": "ywatanabe",
            "action": "add",
        }
    finally:
        await ws.close()


async def test_search_without_store_search_is_503(http, bed):
    if hasattr(Store, "search"):
        pytest.skip("Store.search exists: test_search_finds_words_and_hides_dms runs instead")
    status, body = await call(http, "GET", "/api/search", bed.default_token, params={"q": "x"})
    assert status == 503 and "search" in body["error"], body


@pytest.mark.skipif(not hasattr(Store, "search"), reason="Store.search is not merged yet")
async def test_search_finds_words_and_hides_dms(http, bed, persister, gateway):
    token = bed.default_token
    await post_message(http, bed, "#srch", "the zebra crossing")
    alice = await RawAgent.connect(gateway.agent_url(token), "conv-alice", ["#general"])
    try:
        await alice.post(DM, "zebra in the dm")
        status, body = await call(http, "GET", "/api/search", token, params={"q": "zebra"})
        assert status == 200 and body["query"] == "zebra", body
        assert [r["content"] for r in body["results"]] == ["the zebra crossing"]
        status, body = await call(
            http, "GET", "/api/search/", token, params={"q": "zebra", "agent": "conv-alice"}
        )
        assert sorted(r["content"] for r in body["results"]) == [
            "the zebra crossing",
            "zebra in the dm",
        ]
        status, body = await call(
            http, "GET", "/api/search", token, params={"q": "zebra", "channel": DM}
        )
        assert status == 403, body
        for params, field in (({}, "q"), ({"q": "x" * 501}, "q")):
            status, body = await call(http, "GET", "/api/search", token, params=params)
            assert status == 400 and body["field"] == field
        status, body = await call(
            http, "GET", "/api/search", token, params={"q": "zebra", "before": "not a time"}
        )
        assert status == 400, body
    finally:
        await alice.close()


async def test_presence_lists_a_dm_only_to_its_participants_and_the_admin(
    http, bed, persister, gateway
):
    """A DM's name says who talks to whom: agent lists, channel maps and stats show it
    to the admin token and to a participant reading as itself, to no other reader."""
    token = bed.default_token
    alice = await RawAgent.connect(gateway.agent_url(token), "conv-alice", ["#general", DM])
    try:

        async def dm_seen(tok: str, **params) -> bool:
            status, agents = await call(http, "GET", "/api/agents", tok, params=params)
            assert status == 200, agents
            (me,) = [a for a in agents if a["name"] == "conv-alice"]
            _s, chans = await call(http, "GET", "/api/channels", tok, params=params)
            _s, stats = await call(http, "GET", "/api/stats", tok, params=params)
            seen = {DM in me["channels"], DM in chans, DM in stats["channels"]}
            assert len(seen) == 1, (me, chans, stats)  # every view agrees
            return seen.pop()

        assert await eventually(lambda: dm_seen(bed.admin_token))
        assert not await dm_seen(token)
        assert await dm_seen(token, agent="conv-alice")
        assert not await dm_seen(token, agent="someone-else")  # not online: nobody
    finally:
        await alice.close()


async def test_an_observer_gets_each_live_message_with_its_hub_number(http, bed, persister):
    """The dashboard names messages by `num` (permalinks, reactions, edits): a live frame
    carries it in its payload, the same number history and the post's answer give."""
    ws = await http.ws_connect("/ws", params={"token": bed.default_token})
    try:
        await observing(http, bed, ws)
        msg = await post_message(http, bed, "#nums", "number me")

        async def got_message() -> dict | None:
            frame = await next_frame(ws, "message")
            return frame if frame and frame["id"] == msg["id"] else None

        frame = await eventually(got_message, 10, "the message on the observer socket")
        assert frame["id"] == msg["id"] and frame["payload"]["num"] == msg["num"]
        assert frame["payload"]["content"] == "number me"
        assert bed.history("#nums")[0]["num"] == msg["num"]
    finally:
        await ws.close()


async def test_rest_history_resumes_with_the_events_when_asked(http, bed, persister):
    msg = await post_message(http, bed, "#resume-ev", "one")
    await post_message(http, bed, "#resume-ev", "two")
    react = {"message_id": msg["num"], "emoji": "🌙", "reactor": "ywatanabe"}
    status, _ = await call(http, "POST", "/api/reactions/", bed.admin_token, json=react)
    assert status == 200
    path = "/api/history/resume-ev"
    status, plain = await call(http, "GET", path, bed.admin_token, params={"after_seq": "0"})
    assert status == 200 and [r["seq"] for r in plain] == [1, 2]
    status, stream = await call(
        http, "GET", path, bed.admin_token, params={"after_seq": "0", "events": "1"}
    )
    assert status == 200 and [(r["seq"], r.get("event")) for r in stream] == [
        (1, None),
        (2, None),
        (3, "reaction_update"),
    ]
    assert stream[2]["num"] == msg["num"] and stream[2]["emoji"] == "🌙"
    for bad in ({"events": "1"}, {"after_seq": "0", "events": "yes"}):
        status, body = await call(http, "GET", path, bed.admin_token, params=bad)
        assert status == 400 and body["field"] == "events", body


async def test_a_person_posts_into_their_dm_over_rest_and_nobody_else_may(
    http, bed, persister, gateway
):
    """The dashboard's composer posts an open DM through POST /api/messages: the DM's name
    stays as it is (no '#'), and the sender must be one of its people."""
    dave = await RawAgent.connect(gateway.agent_url(bed.default_token), "conv-dave", ["#general"])
    dm = "dm:agent:conv-dave|human:ana"
    try:
        status, body = await call(
            http,
            "POST",
            "/api/messages",
            bed.admin_token,
            json={"sender": "ana", "payload": {"channel": dm, "content": "psst, dave"}},
        )
        assert status == 201 and body["channel"] == dm, body
        got = await dave.wait(lambda f: f.get("payload", {}).get("content") == "psst, dave")
        assert got["payload"]["channel"] == dm
        assert [r["content"] for r in bed.history(dm)] == ["psst, dave"]
        # Not ana's DM: refused before anything is stored, naming who may write.
        other = "dm:agent:conv-dave|human:zed"
        status, body = await call(
            http,
            "POST",
            "/api/messages",
            bed.admin_token,
            json={"sender": "ana", "payload": {"channel": other, "content": "let me in"}},
        )
        assert status == 403 and "participants" in body["error"], body
        assert bed.history(other) == []
        # A malformed DM name is a 400 naming the channel.
        status, body = await call(
            http,
            "POST",
            "/api/messages",
            bed.admin_token,
            json={"sender": "ana", "payload": {"channel": "dm:human:ana", "content": "x"}},
        )
        assert status == 400 and body.get("field") in ("channel", "payload.channel"), body
    finally:
        await dave.close()
