"""Helpers for tests of the HTTP gateway against a real hub."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp

from support.util import wait_for

# aiohttp warns (ResourceWarning) when a body over 1 MiB is given as bytes or str and asks
# for a file-like object, which it streams; the bytes on the wire are the same.
STREAM_BODY_OVER_BYTES = 2**20


def wait_http_ready(hub: Any, timeout: float = 30.0) -> None:
    """The HTTP gateway listens once its bus round trip works; wait for /healthz."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(hub.http_url + "/healthz", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_for(ready, timeout, "the HTTP gateway's /healthz")


class Api:
    """A small async JSON client: `await api.get(path, token=...)` -> (status, body)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "default",
        json_body: Any = None,
        data: Any = None,
        headers: dict | None = None,
        params: dict | None = None,
    ) -> tuple[int, Any]:
        headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        if json_body is not None:
            data = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes) and len(data) > STREAM_BODY_OVER_BYTES:
            data = io.BytesIO(data)
        async with self.session.request(
            method, self.base_url + path, data=data, headers=headers, params=params
        ) as resp:
            raw = await resp.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            return resp.status, body

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kw)

    async def close(self) -> None:
        await self.session.close()
