"""A small Gitea API client: one request per action, errors as `GiteaApiError`.

The token travels only in the `Authorization: token <t>` header; it is never
logged and is scrubbed from any error detail before it leaves this module.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from scitex_orochi.hub.errors import HubError
from scitex_orochi.protocol.errors import ErrorCode

from .actions import GiteaRequest

log = logging.getLogger("orochi.gitea.api")

MAX_DETAIL_CHARS = 2000


class GiteaApiError(HubError):
    """Gitea answered with HTTP >= 400 (`status` set) or could not be reached (`status` None).

    Over REST, Gitea's own 4xx status is relayed (its 404 is the caller's 404); a 5xx
    or no answer at all is the table's 502. The body names Gitea's status.
    """

    code = ErrorCode.GITEA_API_ERROR
    code_in_body = True  # the same code an agent gets in its `gitea` error frame

    def __init__(self, status: int | None, detail: str) -> None:
        if status is None:
            super().__init__(detail)
        else:
            super().__init__(detail, gitea_status=status)
        self.status = status

    def __str__(self) -> str:
        return f"gitea error {self.status}: {self.detail[:200]}"

    @property
    def http_status(self) -> int:
        if isinstance(self.status, int) and 400 <= self.status < 500:
            return self.status
        return super().http_status


class GiteaApi:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, token: str | None, timeout_s: float
    ) -> None:
        self.session = session
        self.base = url.rstrip("/") + "/api/v1"
        self._token = token or ""
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    async def call(self, req: GiteaRequest) -> Any:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        try:
            async with self.session.request(
                req.method,
                self.base + req.path,
                params=req.query or None,
                json=req.body,
                headers=headers,
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise GiteaApiError(
                None, f"Gitea did not answer within {self.timeout.total:.1f}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise GiteaApiError(
                None, self.scrub(f"cannot reach Gitea: {type(exc).__name__}: {exc}")
            ) from None
        if status >= 400:
            raise GiteaApiError(status, self.scrub(text[:MAX_DETAIL_CHARS]))
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except ValueError:
            raise GiteaApiError(status, "Gitea returned a body that is not JSON") from None
        if req.unwrap and isinstance(data, dict) and req.unwrap in data:
            return data[req.unwrap]
        return data
