"""The MCP server's tools through an in-process FastMCP client against the scripted FakeHub,
its channel notifications in process and over stdio as Claude Code runs it (against the
real supervised hub: tests/e2e/test_mcp_hub.py)."""

from __future__ import annotations

import asyncio
import os

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.mcp_server import CHANNEL_METHOD, create_server

from support.client import WAIT_S
from support.fakehub import FakeHub
from support.mcp import StdioMcp, call, channel_watcher, factory
from support.util import REPO

fastmcp = pytest.importorskip("fastmcp", reason="the [mcp] extra is not installed")
CONVERSATION_TOOLS = {"reply", "react", "edit_message", "delete_message", "send_dm", "search"}


async def test_tools_are_listed_with_descriptions():
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        tools = {t.name: t for t in await c.list_tools()}
        assert set(tools) == {
            "send",
            "who",
            "history",
            "channels",
            "subscribe",
            "unsubscribe",
            "status",
            "wait_for_message",
            "list_skills",
            "get_skill",
            *CONVERSATION_TOOLS,
        }
        assert all(t.description for t in tools.values())


async def test_send_who_history_status_over_mcp():
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        sent = await call(c, "send", channel="#g", content="hello from mcp")
        assert sent["seq"] == 1 and sent["channel"] == "#g"
        assert "mcp-agent" in (await call(c, "who"))["agents"]
        history = await call(c, "history", channel="#g")
        assert [m["content"] for m in history["messages"]] == ["hello from mcp"]
        status = await call(c, "status", status="busy", current_task="testing")
        assert status["connected"] and status["status"] == "busy"
        assert (await call(c, "subscribe", channel="#x"))["subscribed"] == ["#g", "#x"]
        assert "#x" in (await call(c, "channels"))["subscribed"]
        assert (await call(c, "unsubscribe", channel="#x"))["subscribed"] == ["#g"]


async def test_wait_for_message_returns_when_a_message_is_pushed():
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        await call(c, "who")  # connect
        waiting = asyncio.create_task(call(c, "wait_for_message", timeout=WAIT_S))
        async with OrochiClient("other", port=hub.port, token=hub.token, channels=["#g"]) as other:
            await other.send("#g", "wake up")
            got = await asyncio.wait_for(waiting, WAIT_S)
        assert not got["timed_out"]
        assert [m["content"] for m in got["messages"]] == ["wake up"]


async def test_messages_arriving_while_busy_are_queued_and_filtered_by_channel():
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        await call(c, "subscribe", channel="#side")
        async with OrochiClient("other", port=hub.port, token=hub.token, channels=["#g"]) as other:
            for i in range(3):
                await other.send("#g", f"g{i}")
            await other.send("#side", "side")
        side = await call(c, "wait_for_message", channels=["#side"], timeout=WAIT_S)
        assert [m["content"] for m in side["messages"]] == ["side"]
        rest = await call(c, "wait_for_message", timeout=WAIT_S)
        assert [m["content"] for m in rest["messages"]] == ["g0", "g1", "g2"]
        empty = await call(c, "wait_for_message", timeout=0.05)
        assert empty["timed_out"] and empty["messages"] == []


# ---- conversations ---------------------------------------------------------------------
def input_schema(tool):
    """`input_schema` (MCP SDK 2), `inputSchema` before."""
    return tool.input_schema if hasattr(tool, "input_schema") else tool.inputSchema


async def test_conversation_tool_schemas():
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        tools = await c.list_tools()
    schemas = {t.name: input_schema(t) for t in tools if t.name in CONVERSATION_TOOLS}
    required = {name: set(schema.get("required", [])) for name, schema in schemas.items()}
    assert required == {
        "reply": {"message", "content"},
        "react": {"message", "emoji"},
        "edit_message": {"message", "content"},
        "delete_message": {"message"},
        "send_dm": {"agent", "content"},
        "search": {"query"},
    }
    message = schemas["react"]["properties"]["message"]
    assert {t["type"] for t in message["anyOf"]} == {"string", "integer"}
    assert message["description"].startswith("The message")
    emoji = schemas["react"]["properties"]["emoji"]
    assert (emoji["type"], emoji["minLength"], emoji["maxLength"]) == ("string", 1, 32)
    assert schemas["react"]["properties"]["remove"]["default"] is False
    limit = schemas["search"]["properties"]["limit"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer",
        1,
        1000,
        20,
    )


@pytest.mark.parametrize(
    "tool, args",
    [
        ("react", {"message": 1, "emoji": ""}),
        ("react", {"message": 1, "emoji": "x" * 33}),
        ("react", {"message": [1], "emoji": "👍"}),
        ("edit_message", {"message": 1}),
        ("search", {"query": "x", "limit": 0}),
        ("search", {"query": ""}),
        ("send_dm", {"agent": "", "content": "x"}),
    ],
)
async def test_arguments_outside_the_schema_are_refused_before_the_hub(tool, args):
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        with pytest.raises(fastmcp.exceptions.ToolError):
            await c.call_tool(tool, args)
        changes = [f for f in hub.frames if f["type"] in ("react", "edit", "delete")]
        searches = [f for f in hub.frames if "search" in f.get("payload", {})]
        assert changes == searches == []


async def test_reply_react_edit_delete_dm_search_over_mcp():
    async with (
        FakeHub() as hub,
        fastmcp.Client(create_server(factory(hub.port, hub.token))) as c,
        OrochiClient("bob", port=hub.port, token=hub.token, channels=["#g"]) as bob,
    ):
        await call(c, "who")  # connected
        root = await bob.send("#g", "deploy failed on staging")
        waited = await call(c, "wait_for_message", timeout=WAIT_S)
        assert [m["id"] for m in waited["messages"]] == [root.id]
        reply = await call(c, "reply", message=root.id, content="looking")  # channel known
        assert (reply["channel"], reply["reply_to"], reply["num"]) == ("#g", root.id, 2)
        got = await bob.recv(WAIT_S)
        assert got.reply_to == root.id and got.thread == {"root": root.id, "num": 1}
        by_num = await call(c, "reply", message=1, content="by number")
        assert by_num["reply_to"] == 1
        reacted = await call(c, "react", message=root.id, emoji="👀")
        assert (reacted["outcome"], reacted["num"], reacted["emoji"]) == ("added", 1, "👀")
        assert (await call(c, "react", message=1, emoji="👀", remove=True))["outcome"] == "removed"
        edited = await call(c, "edit_message", message=reply["id"], content="fixed it")
        assert edited["outcome"] == "edited"
        assert (await call(c, "delete_message", message=by_num["id"]))["outcome"] == "deleted"
        dm = await call(c, "send_dm", agent="bob", content="psst")
        assert dm["channel"] == "dm:agent:bob|agent:mcp-agent"
        found = await call(c, "search", query="deploy", limit=5)
        assert [m["content"] for m in found["messages"]] == ["deploy failed on staging"]
        with pytest.raises(fastmcp.exceptions.ToolError, match="FORBIDDEN"):
            await c.call_tool("edit_message", {"message": root.id, "content": "not mine"})
        with pytest.raises(fastmcp.exceptions.ToolError, match="UNKNOWN_MESSAGE"):
            await c.call_tool("react", {"message": "no-such", "emoji": "👍"})
        with pytest.raises(fastmcp.exceptions.ToolError, match="give its channel"):
            await c.call_tool("reply", {"message": "never-seen", "content": "?"})


async def test_a_channel_notification_for_each_message_addressed_to_the_agent():
    watch, pushed = channel_watcher()
    async with (
        FakeHub() as hub,
        fastmcp.Client(create_server(factory(hub.port, hub.token)), extensions=[watch]) as c,
    ):
        await hub.wait_registrations(1)  # connected unasked: no tool was called
        async with OrochiClient("bob", port=hub.port, token=hub.token, channels=["#g"]) as bob:
            await call(c, "send", channel="#g", content="my own")  # never raised to me
            first = await bob.send("#g", "hello @mcp-agent")
            got = await asyncio.wait_for(pushed.get(), WAIT_S)
            assert got.content == "hello @mcp-agent"
            assert got.meta == {
                "channel": "#g",
                "sender": "bob",
                "id": first.id,
                "ts": got.meta["ts"],
                "seq": "2",
                "num": "2",
                "mentions": "mcp-agent",
            }
            assert got.meta["ts"]
            await bob.send("#elsewhere", "a ping for @mcp-agent")  # not a member: a mention
            assert (await asyncio.wait_for(pushed.get(), WAIT_S)).meta["channel"] == "#elsewhere"
            await bob.send("#elsewhere", "not for you")  # not delivered to the agent at all
            dm_channel = "dm:agent:bob|agent:mcp-agent"
            await call(c, "subscribe", channel=dm_channel)
            dm = await bob.dm("mcp-agent", "just us")
            got = await asyncio.wait_for(pushed.get(), WAIT_S)
            assert (got.content, got.meta["channel"], got.meta["dm_with"]) == (
                "just us",
                dm_channel,
                "agent:bob",
            )
            await bob.reply(dm, "and a reply")
            got = await asyncio.wait_for(pushed.get(), WAIT_S)
            assert got.meta["reply_to"] == dm.id and got.meta["thread_root"] == dm.id
        waited = await call(c, "wait_for_message", timeout=WAIT_S)  # still queued for polling
        assert [m["content"] for m in waited["messages"]] == [
            "hello @mcp-agent",
            "a ping for @mcp-agent",
            "just us",
            "and a reply",
        ]
        assert all(m["notified"] for m in waited["messages"])
        assert pushed.empty()


async def test_the_stdio_server_declares_the_channel_capability_and_pushes(tmp_path):
    async with FakeHub() as hub:
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("SCITEX_OROCHI", "OROCHI"))
            },
            "PYTHONPATH": str(REPO),
            "SCITEX_OROCHI_HOST": "127.0.0.1",
            "SCITEX_OROCHI_PORT": str(hub.port),
            "SCITEX_OROCHI_TOKEN": hub.token,
            "SCITEX_OROCHI_AGENT": "stdio-agent",
            "SCITEX_OROCHI_CHANNELS": "#g",
        }
        async with StdioMcp(env, tmp_path / "stderr.log") as server:
            init = await server.initialize()
            assert init["capabilities"]["experimental"] == {"claude/channel": {}}
            assert "claude/channel" in init["instructions"] or "<channel" in init["instructions"]
            await hub.wait_registrations(1)  # it connects on `initialized`, unasked
            await server.call("send", channel="#g", content="mine")  # not raised
            async with OrochiClient("bob", port=hub.port, token=hub.token, channels=["#g"]) as bob:
                sent = await bob.send("#g", "wake up")
                note = await server.notification(CHANNEL_METHOD)
            assert note["params"]["content"] == "wake up"
            meta = note["params"]["meta"]
            assert (meta["channel"], meta["sender"], meta["id"], meta["seq"]) == (
                "#g",
                "bob",
                sent.id,
                "2",
            )
            assert all(isinstance(v, str) for v in meta.values())
            reply = await server.call("reply", message=sent.id, content="awake")
            assert reply["structuredContent"]["reply_to"] == sent.id


async def test_the_capability_is_declared_on_a_fastmcp_without_experimental_capabilities(
    monkeypatch,
):
    class OlderFastMCP(fastmcp.FastMCP):
        def __init__(self, **kwargs):  # no experimental_capabilities parameter
            super().__init__(**kwargs)

    monkeypatch.setattr(fastmcp, "FastMCP", OlderFastMCP)
    async with FakeHub() as hub, fastmcp.Client(create_server(factory(hub.port, hub.token))) as c:
        assert c.server_capabilities.experimental == {"claude/channel": {}}
        assert (await call(c, "send", channel="#g", content="still works"))["seq"] == 1
