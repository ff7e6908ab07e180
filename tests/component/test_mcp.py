"""The MCP server's tools through an in-process FastMCP client against the scripted FakeHub
(against the real supervised hub: tests/e2e/test_mcp_hub.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.mcp_server import create_server

from support.client import WAIT_S
from support.fakehub import FakeHub
from support.mcp import call, factory

fastmcp = pytest.importorskip("fastmcp", reason="the [mcp] extra is not installed")


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
