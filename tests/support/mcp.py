"""The MCP server's client factory and a tool call, as the MCP tests use them."""

from __future__ import annotations

from typing import Any

from scitex_orochi import OrochiClient
from scitex_orochi.client.core import Backoff

from support.client import WAIT_S


def factory(port: int, token: str, name: str = "mcp-agent"):
    return lambda: OrochiClient(
        name, port=port, token=token, channels=["#g"], backoff=Backoff(0.01, 2, 0.1), timeout=WAIT_S
    )


async def call(client: Any, tool: str, **args: Any) -> Any:
    result = await client.call_tool(tool, args)
    return result.structured_content
