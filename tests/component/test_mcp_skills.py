"""The MCP server's list_skills and get_skill tools through an in-process FastMCP client,
against the real HTTP gateway's app and WebSocket gateway in this process."""

from __future__ import annotations

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.core import Backoff
from scitex_orochi.client.mcp_server import create_server

from support.client import WAIT_S
from support.mcp import call

fastmcp = pytest.importorskip("fastmcp", reason="the [mcp] extra is not installed")

DEPLOY = {
    "description": "Deploy a service",
    "arguments": [{"name": "env", "description": "where", "required": True}],
    "body": "Deploy to {{env}}.",
}


async def test_list_and_get_skills_over_mcp(http, bed, persister, gateway):
    resp = await http.put(
        "/api/skills/deploy", json=DEPLOY, headers={"Authorization": f"Bearer {bed.admin_token}"}
    )
    assert resp.status == 201, await resp.text()

    def factory() -> OrochiClient:
        return OrochiClient(
            "mcp-skills",
            host=bed.cfg.host,
            port=bed.cfg.ws.port,
            dashboard_port=http.port,
            token=bed.default_token,
            channels=["#g"],
            backoff=Backoff(0.01, 2, 0.1),
            timeout=WAIT_S,
        )

    async with fastmcp.Client(create_server(factory)) as c:
        listed = await call(c, "list_skills")
        assert listed["workspace"] == "default"
        assert listed["skills"] == [
            {
                "name": "deploy",
                "description": "Deploy a service",
                "arguments": [{"name": "env", "description": "where", "required": True}],
            }
        ]
        got = await call(c, "get_skill", name="deploy")
        assert got["body"] == "Deploy to {{env}}." and got["markdown"].startswith("---\n")
        with pytest.raises(fastmcp.exceptions.ToolError, match="no skill 'nope'"):
            await c.call_tool("get_skill", {"name": "nope"})
        with pytest.raises(fastmcp.exceptions.ToolError):
            await c.call_tool("get_skill", {"name": "../etc"})
