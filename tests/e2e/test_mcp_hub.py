"""The MCP server's tools through an in-process FastMCP client against the real supervised
hub (against the scripted FakeHub: tests/component/test_mcp.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.mcp_server import create_server

from support.client import WAIT_S
from support.mcp import call, channel_watcher, factory
from support.util import eventually

fastmcp = pytest.importorskip("fastmcp", reason="the [mcp] extra is not installed")


async def test_mcp_against_the_real_hub(hub):
    server = create_server(factory(hub.port, hub.default_token))
    async with fastmcp.Client(server) as c:
        assert (await call(c, "send", channel="#g", content="real"))["seq"] == 1
        waiting = asyncio.create_task(call(c, "wait_for_message", timeout=WAIT_S))
        async with OrochiClient(
            "other", port=hub.port, token=hub.default_token, channels=["#g"]
        ) as other:
            await other.send("#g", "reply @mcp-agent")
            got = await asyncio.wait_for(waiting, WAIT_S)
        assert [m["content"] for m in got["messages"]] == ["reply @mcp-agent"]
        assert got["messages"][0]["seq"] == 2


async def test_channel_notifications_for_messages_from_the_real_hub(hub):
    watch, pushed = channel_watcher()
    server = create_server(factory(hub.port, hub.default_token))
    async with (
        fastmcp.Client(server, extensions=[watch]) as c,
        OrochiClient("poster", port=hub.port, token=hub.default_token, channels=["#g"]) as poster,
    ):

        async def online() -> bool:
            return "mcp-agent" in await poster.who()

        await eventually(online, WAIT_S, "the MCP server to connect by itself")
        await call(c, "send", channel="#g", content="my own")  # never raised to me
        sent = await poster.send("#g", "build 42 passed")
        got = await asyncio.wait_for(pushed.get(), WAIT_S)
        assert got.content == "build 42 passed"
        assert (got.meta["channel"], got.meta["sender"], got.meta["id"]) == (
            "#g",
            "poster",
            sent.id,
        )
        assert got.meta["seq"] == str(sent.seq) and got.meta["ts"]
        await poster.send("#elsewhere", "over here @mcp-agent")  # a mention outside its channels
        got = await asyncio.wait_for(pushed.get(), WAIT_S)
        assert (got.meta["channel"], got.meta["mentions"]) == ("#elsewhere", "mcp-agent")
        replied = await call(c, "reply", message=sent.id, content="thanks")
        assert replied["channel"] == "#g" and replied["reply_to"] == sent.id
        row = (await poster.query_history("#g", limit=1))[0]
        assert row.content == "thanks" and row.metadata["reply_to"] == sent.id
        waited = await call(c, "wait_for_message", timeout=WAIT_S)
        assert [m["content"] for m in waited["messages"]] == [
            "build 42 passed",
            "over here @mcp-agent",
        ]
        assert all(m["notified"] for m in waited["messages"])


async def test_conversation_tools_and_dm_notifications_over_the_real_hub(hub):
    watch, pushed = channel_watcher()
    server = create_server(factory(hub.port, hub.default_token))
    async with (
        fastmcp.Client(server, extensions=[watch]) as c,
        OrochiClient(
            "bob", port=hub.port, token=hub.default_token, channels=["#g"], events=True
        ) as bob,
    ):

        async def online() -> bool:
            return "mcp-agent" in await bob.who()

        await eventually(online, WAIT_S, "the MCP server to connect by itself")
        root = await bob.send("#g", "who reviews #7?")
        assert (await asyncio.wait_for(pushed.get(), WAIT_S)).meta["id"] == root.id
        mine = await call(c, "reply", message=root.id, content="I do")
        got = await bob.recv(WAIT_S)
        assert got.thread == {"root": root.id, "num": root.num} and got.id == mine["id"]
        reacted = await call(c, "react", message=root.num, emoji="👀")
        assert (reacted["outcome"], reacted["num"]) == ("added", root.num)
        event = await bob.recv_event(WAIT_S)
        assert (event.type, event.get("reactor"), event.get("emoji")) == (
            "reaction_update",
            "mcp-agent",
            "👀",
        )
        assert (await call(c, "edit_message", message=mine["id"], content="I do, today"))[
            "outcome"
        ] == "edited"
        assert (await bob.recv_event(WAIT_S)).get("content") == "I do, today"
        assert (await call(c, "delete_message", message=mine["id"]))["outcome"] == "deleted"
        assert (await bob.recv_event(WAIT_S)).type == "message_delete"
        with pytest.raises(fastmcp.exceptions.ToolError, match="FORBIDDEN"):
            await c.call_tool("edit_message", {"message": root.id, "content": "not mine"})

        dm = await call(c, "send_dm", agent="bob", content="a word in private")
        assert dm["channel"] == "dm:agent:bob|agent:mcp-agent"
        assert (await bob.recv(WAIT_S)).content == "a word in private"
        await bob.dm("mcp-agent", "sure")  # delivered by name: the agent never subscribed
        got = await asyncio.wait_for(pushed.get(), WAIT_S)
        assert (got.content, got.meta["channel"], got.meta["dm_with"]) == (
            "sure",
            dm["channel"],
            "agent:bob",
        )


async def test_search_over_the_real_hub(hub):
    server = create_server(factory(hub.port, hub.default_token))
    async with (
        fastmcp.Client(server) as c,
        OrochiClient("ops", port=hub.port, token=hub.default_token, channels=["#g"]) as ops,
    ):
        await ops.send("#g", "deploy failed on staging")
        await ops.send("#ops", "deploy finished")
        await ops.dm("mcp-agent", "the deploy key")
        await ops.dm("someone-else", "another deploy key")
        found = await call(c, "search", query="deploy")
        assert {m["content"] for m in found["messages"]} == {
            "deploy failed on staging",
            "deploy finished",
            "the deploy key",
        }
        only = await call(c, "search", query="deploy", channel="#ops", sender="ops", limit=5)
        assert [m["content"] for m in only["messages"]] == ["deploy finished"]
