"""The MCP server's tools through an in-process FastMCP client against the real supervised
hub (against the scripted FakeHub: tests/component/test_mcp.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.mcp_server import create_server

from support.client import WAIT_S
from support.mcp import call, factory

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
