"""The fleet's clients against the real supervised hub, written from ../shared/FLEET.md
(not upstream code): one sidecar session on the dashboard port (its socket and every
REST call it makes, on the same host:port, `?token=` in the query and in the register
body), and the 0.13+ CLI's commands reproduced as the frames and requests FLEET names,
each answer checked for the shape the CLI reads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from typing import Any

import aiohttp
import websockets

from support.agent_b import AgentB, b_url
from support.util import TIME_SCALE, eventually


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class SidecarRest:
    """The sidecar's REST calls: base from its WebSocket URL (ws→http), `?token=`."""

    def __init__(self, http_url: str, token: str) -> None:
        self.base, self.token = http_url, token
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def call(
        self, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        params = {"token": self.token, **params}
        async with self.session.request(method, self.base + path, params=params, json=body) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()

    async def close(self) -> None:
        await self.session.close()


async def test_a_sidecar_session_with_every_rest_call_on_the_dashboard_port(shared_hub):
    hub = shared_hub
    ws_base = hub.http_url.replace("http://", "ws://")
    me, peer_name, ch = uid("side"), uid("peer"), uid("flr")
    token = hub.default_token
    sidecar = await AgentB.connect(ws_base, token, me)
    peer = await AgentB.connect(ws_base, token, peer_name)
    rest = SidecarRest(hub.http_url, token)
    try:
        assert (await sidecar.register())["type"] == "registered"
        await peer.register()
        # On open: REST registration, token in the body only.
        status, body = await rest.call(
            "POST",
            "/api/agents/register/",
            {
                "token": token,
                "name": me,
                "agent_id": f"1@{me}",
                "role": "head",
                "machine": "m",
                "hostname": "h",
                "multiplexer": "tmux",
                "orochi_current_task": "issue 12",
                "orochi_subagent_count": 0,
                "cpu_percent": 3.0,
            },
            token="",
        )
        assert status == 200 and body == {"status": "ok", "name": me}, body
        for agent in (sidecar, peer):
            assert (await agent.subscribe(ch))["type"] == "subscribed"
        # channel_info, channel_members, my_subscriptions, dm_list, dm_open
        status, info = await rest.call("GET", "/api/channels/", name=ch)
        assert status == 200 and info[0]["name"] == f"#{ch}" and "description" in info[0]
        status, members = await rest.call(
            "GET", "/api/workspace/default/channel-members/", channel=f"#{ch}"
        )
        assert {m["username"] for m in members} == {f"agent-{me}", f"agent-{peer_name}"}
        status, subs = await rest.call("GET", "/api/workspace/default/me/subscriptions/")
        assert status == 200 and f"#{ch}" in {s["channel"] for s in subs}, subs
        status, dms = await rest.call("GET", "/api/workspace/default/dms/")
        assert status == 200 and "dms" in dms, dms
        status, dm = await rest.call(
            "POST", "/api/workspace/default/dms/", {"recipient": f"agent:{peer_name}"}
        )
        assert status == 200 and dm["name"] == "dm:" + "|".join(
            sorted([f"agent:{me}", f"agent:{peer_name}"])
        ), dm
        # A message from the peer reaches the sidecar with an integer id.
        await peer.message(ch, "please review")
        got = await sidecar.wait(
            lambda f: f.get("type") == "message" and f["text"] == "please review"
        )
        num = got["id"]
        assert isinstance(num, int)
        # upload_media: by-hash first (404), then the upload, then by-hash 200.
        data = b"report " + uuid.uuid4().bytes
        sha = hashlib.sha256(data).hexdigest()
        async with rest.session.head(
            f"{hub.http_url}/api/media/by-hash/{sha}", params={"token": token}
        ) as resp:
            assert resp.status == 404
        status, up = await rest.call(
            "POST",
            "/api/upload-base64",
            {
                "data": base64.b64encode(data).decode(),
                "filename": "r.txt",
                "mime_type": "text/plain",
                "channel": f"#{ch}",
                "sender": me,
            },
        )
        assert status == 201 and set(up) == {"file_id", "url", "mime_type", "filename", "size"}
        status, known = await rest.call(
            "POST", f"/api/media/by-hash/{sha}", {"channel": f"#{ch}", "sender": me}
        )
        assert status == 200 and known["url"] == up["url"]
        status, raw = await rest.call("GET", up["url"])  # download_media
        assert status == 200 and raw == data
        # reply in a thread with the file, over the socket (reply_to, attachments).
        await sidecar.message(ch, "done, see file", {"reply_to": num, "attachments": [up]})
        reply = await peer.wait(lambda f: f.get("type") == "thread_reply")
        assert reply["parent_id"] == num and reply["metadata"]["attachments"][0]["url"] == up["url"]
        # react: POST/DELETE /api/reactions/, the peer sees reaction_update.
        react = {"message_id": num, "emoji": "👀", "reactor": me}
        status, body = await rest.call("POST", "/api/reactions/", react)
        assert status == 200 and body["action"] == "added", body
        update = await peer.wait(lambda f: f.get("type") == "reaction_update")
        assert update["message_id"] == num and update["action"] == "added"
        status, body = await rest.call("GET", "/api/reactions/", message_ids=str(num))
        assert body[str(num)]["👀"] == [{"reactor": me, "reactor_type": "agent"}]
        status, body = await rest.call("DELETE", "/api/reactions/", react)
        assert body["action"] == "removed"
        # A thread reply and an edit/delete over REST, naming no sender.
        status, posted = await rest.call("POST", "/api/threads/", {"parent_id": num, "text": "+1"})
        assert status == 201, posted
        await peer.wait(lambda f: f.get("type") == "thread_reply" and f["text"] == "+1")
        status, body = await rest.call("PATCH", f"/api/messages/{posted['num']}/", {"text": "+2"})
        assert status == 200, body
        await peer.wait(lambda f: f.get("type") == "message_edit" and f["text"] == "+2")
        status, body = await rest.call("DELETE", f"/api/messages/{posted['num']}/")
        assert status == 200, body
        await peer.wait(lambda f: f.get("type") == "message_delete")
        # A plain post the B way, health, export, cron.
        status, body = await rest.call(
            "POST", "/api/messages/", {"channel": ch, "text": "status: green", "sender": me}
        )
        assert status == 201 and isinstance(body["id"], int)
        await peer.wait(lambda f: f.get("type") == "message" and f["text"] == "status: green")
        status, body = await rest.call(
            "POST", "/api/agents/health/", {"agent": peer_name, "status": "ok", "source": "healer"}
        )
        assert body == {"status": "ok", "applied": 1}
        status, text = await rest.call("GET", f"/api/channels/{ch}/export/", format="txt")
        assert status == 200 and b"please review" in text and b"status: green" in text
        status, body = await rest.call("GET", "/api/cron/", agent=me, host="h")
        assert status == 200 and body == []
        status, agents = await rest.call("GET", "/api/agents")
        mine = next(a for a in agents if a["name"] == me)
        assert mine["rest_registered_at"] and mine["resources"]["cpu_percent"] == 3.0
    finally:
        await rest.close()
        await sidecar.close()
        await peer.close()


class Cli:
    """The 0.13+ CLI's commands as FLEET §1–§3 describe them: agent commands open
    `/ws/agent/?token=&agent=` on `--port`, send frames without `sender`, and read
    exactly one frame per request; workspace and invite commands are REST with
    `Authorization: Bearer <admin token>`."""

    def __init__(self, ws_url: str, http_url: str, token: str, admin_token: str) -> None:
        self.ws_url, self.http_url = ws_url, http_url
        self.token, self.admin_token = token, admin_token

    async def _session(self, name: str, channels: list[str]) -> Any:
        ws = await websockets.connect(b_url(self.ws_url, self.token, name))
        await ws.send(json.dumps({"type": "register", "payload": {"channels": channels}}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10 * TIME_SCALE))
        assert first.get("type") != "error", first  # the CLI fails on an error frame
        return ws

    async def _one(self, ws: Any, frame: dict) -> dict:
        await ws.send(json.dumps(frame))
        while True:  # the CLI reads one frame; skip the hub's liveness frames
            got = json.loads(await asyncio.wait_for(ws.recv(), 10 * TIME_SCALE))
            if got.get("type") not in ("ping", "echo"):
                return got

    async def message_send(self, name: str, channel: str, text: str) -> None:
        ws = await self._session(name, [channel])
        await ws.send(
            json.dumps({"type": "message", "payload": {"channel": channel, "text": text}})
        )
        await ws.close()

    async def agent_list(self, name: str) -> dict:
        ws = await self._session(name, [])
        frame = {"type": "presence", "sender": name, "id": "p", "ts": "", "payload": {}}
        got = await self._one(ws, frame)
        await ws.close()
        return got

    async def channel_history(self, name: str, channel: str) -> dict:
        ws = await self._session(name, [])
        query = {"type": "query", "sender": name, "id": "q", "payload": {"channel": channel}}
        got = await self._one(ws, query)
        await ws.close()
        return got

    async def channel_join(self, name: str, channel: str) -> dict:
        ws = await self._session(name, [])
        got = await self._one(ws, {"type": "subscribe", "payload": {"channel": channel}})
        await ws.close()
        return got

    async def message_listen(self, name: str, channel: str, until: str) -> list[dict]:
        ws = await self._session(name, [channel])
        seen = []
        while True:
            got = json.loads(await asyncio.wait_for(ws.recv(), 10 * TIME_SCALE))
            if got.get("type") == "message":
                seen.append(got)
                if got["text"] == until:
                    await ws.close()
                    return seen

    async def rest(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                method, self.http_url + path, json=body, headers=headers
            ) as resp:
                return resp.status, await resp.json()


async def test_the_cli_commands_get_the_shapes_they_read(shared_hub):
    hub = shared_hub
    cli = Cli(hub.ws_url, hub.http_url, hub.default_token, hub.admin_token)
    ch = f"#{uid('cli')}"
    listener = asyncio.create_task(cli.message_listen(uid("cli-l"), ch, "last"))

    async def listening() -> bool:
        status, members = await cli.rest("GET", f"/api/channels/?name={ch.lstrip('#')}")
        return bool(members and members[0]["members"])

    await eventually(listening, 10, "the listener subscribed")
    await cli.message_send(uid("cli-s"), ch, "first")
    await cli.message_send(uid("cli-s"), ch, "last")
    heard = await asyncio.wait_for(listener, 15 * TIME_SCALE)
    assert [m["text"] for m in heard] == ["first", "last"]
    assert all(isinstance(m["id"], int) and m["channel"] == ch for m in heard)
    listing = await cli.agent_list(uid("cli-a"))
    assert isinstance(listing["payload"]["agents"], dict | list), listing  # channel list/members
    history = await cli.channel_history(uid("cli-h"), ch)
    texts = sorted(m["content"] for m in history["payload"]["history"])
    assert texts == ["first", "last"], history  # rows as A's query reply carries them
    joined = await cli.channel_join(uid("cli-j"), ch)
    assert joined["type"] == "subscribed" and joined["channel"] == ch
    # message react: FLEET's reaction route with the CLI's token.
    status, body = await cli.rest(
        "POST", "/api/reactions/", {"message_id": heard[0]["id"], "emoji": "✅", "reactor": "cli"}
    )
    assert status == 200 and body["action"] == "added", body
    # workspace … and invite …: REST with the admin token.
    status, created = await cli.rest("POST", "/api/workspaces", {"name": uid("cli-ws")})
    assert status == 201 and created["token"] and created["workspace"]["id"], created
    status, listed = await cli.rest("GET", "/api/workspaces")
    assert created["workspace"]["id"] in {w["id"] for w in listed["workspaces"]}
    ws_id = created["workspace"]["id"]
    status, invite = await cli.rest("POST", f"/api/workspaces/{ws_id}/invites", {"max_uses": 1})
    assert status == 201 and invite["code"] and invite["code"] == invite["token"], invite
    status, invites = await cli.rest("GET", f"/api/workspaces/{ws_id}/invites")
    assert [i["code"] for i in invites["invites"]] == [invite["code"]]
