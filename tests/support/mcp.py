"""The MCP server's client factory and a tool call, as the MCP tests use them; the server
as a child process over stdio, the way Claude Code runs it (`StdioMcp`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
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


class StdioMcp:
    """`scitex-orochi-mcp` as Claude Code runs it: a child process speaking JSON-RPC on
    its stdin/stdout, one message a line. `request` waits for the answer of that id;
    every notification is kept in `notifications`, in order, for `notification`."""

    def __init__(self, env: dict[str, str], stderr_path: Any) -> None:
        self.env, self.stderr_path = env, stderr_path
        self.notifications: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0

    async def __aenter__(self) -> StdioMcp:
        self._stderr = open(self.stderr_path, "wb")  # closed in __aexit__
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from scitex_orochi.client.mcp_server import main; main()",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=self.env,
            limit=2**24,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # end of input: the server's stdio loop ends
        try:
            await asyncio.wait_for(self.proc.wait(), WAIT_S)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        self._stderr.close()

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message and ("result" in message or "error" in message):
                future = self._answers.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif "method" in message and "id" not in message:
                await self.notifications.put(message)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[self._next_id] = future
        await self.send(
            {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        )
        answer = await asyncio.wait_for(future, WAIT_S)
        if "error" in answer:
            raise AssertionError(f"{method} failed: {answer['error']}")
        return answer["result"]

    async def initialize(self, protocol: str = "2025-06-18") -> dict[str, Any]:
        """The handshake Claude Code does: initialize, then notifications/initialized."""
        result = await self.request(
            "initialize",
            {
                "protocolVersion": protocol,
                "capabilities": {},
                "clientInfo": {"name": "claude-code-like", "version": "0"},
            },
        )
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return await self.request("tools/call", {"name": tool, "arguments": arguments})

    async def notification(self, method: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next notification of `method` (others are skipped)."""

        async def first() -> dict[str, Any]:
            while True:
                message = await self.notifications.get()
                if message["method"] == method:
                    return message

        return await asyncio.wait_for(first(), timeout)


def channel_watcher() -> tuple[Any, asyncio.Queue[Any]]:
    """A fastmcp.Client extension that keeps each `notifications/claude/channel` (the MCP
    SDK 2 drops vendor notifications a client did not bind), and the queue they go to."""
    from mcp.client.extension import ClientExtension, NotificationBinding
    from pydantic import BaseModel

    class ChannelParams(BaseModel):
        content: str
        meta: dict[str, str] = {}

    got: asyncio.Queue[ChannelParams] = asyncio.Queue()

    async def keep(params: ChannelParams) -> None:
        await got.put(params)

    class Watch(ClientExtension):
        identifier = "dev.scitex-orochi.tests/channel-watch"

        def notifications(self) -> list[Any]:
            return [
                NotificationBinding(
                    method="notifications/claude/channel", params_type=ChannelParams, handler=keep
                )
            ]

    return Watch(), got
