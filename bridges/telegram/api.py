"""Telegram Bot API client with the bridge's retry policy.

`call` retries what is worth retrying: 429 waits the server's `retry_after`;
5xx and network errors back off exponentially with jitter; 409 Conflict
(another poller, or a webhook is set) is logged as such and retried with
backoff. Any other `ok:false` answer raises `TelegramError` at once. The bot
token is part of every URL, so it is scrubbed from everything that is logged
or raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import aiohttp

log = logging.getLogger("orochi.telegram.api")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
REQUEST_TIMEOUT_S = 30.0
RETRY_AFTER_MAX_S = 3600.0


class TelegramError(Exception):
    """The Bot API refused a call (`ok: false`) with a status that is not retried."""

    def __init__(
        self, method: str, error_code: int, description: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{method}: {error_code} {description}")
        self.method = method
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after


class TelegramUnavailable(Exception):
    """A network error or a 5xx answer: worth retrying later."""


def backoff_delay(
    attempt: int,
    base_s: float = BACKOFF_BASE_S,
    max_s: float = BACKOFF_MAX_S,
    rand: random.Random | None = None,
) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(max, base * 2^attempt)."""
    ceiling = min(max_s, base_s * (2 ** min(attempt, 30)))
    return (rand or random).uniform(ceiling / 2, ceiling)


class BotApi:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        token: str,
        *,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self._token = token
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retries = 0
        self.conflicts = 0

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    def _url(self, method: str) -> str:
        return f"{self.base}/bot{self._token}/{method}"

    async def call_once(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Any:
        """One request; the `result`, or TelegramError / TelegramUnavailable."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        kwargs: dict[str, Any] = {"timeout": timeout}
        if files:
            form = aiohttp.FormData()
            for key, value in (params or {}).items():
                form.add_field(key, value if isinstance(value, str) else json.dumps(value))
            for key, (filename, content, mime) in files.items():
                form.add_field(key, content, filename=filename, content_type=mime)
            kwargs["data"] = form
        else:
            kwargs["json"] = params or {}
        try:
            async with self.session.post(self._url(method), **kwargs) as resp:
                status = resp.status
                text = await resp.text()
        except TimeoutError:
            raise TelegramUnavailable(f"{method}: no answer within {timeout_s:.0f}s") from None
        except aiohttp.ClientError as exc:
            raise TelegramUnavailable(
                self.scrub(f"{method}: {type(exc).__name__}: {exc}")
            ) from None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if status >= 500 or status == 429:
                raise TelegramUnavailable(f"{method}: HTTP {status}")
            raise TelegramError(method, status, f"HTTP {status} with a body that is not JSON")
        if data.get("ok") is True:
            return data.get("result")
        code = int(data.get("error_code") or status)
        description = self.scrub(str(data.get("description") or f"HTTP {status}"))
        retry_after = (data.get("parameters") or {}).get("retry_after")
        if code >= 500:
            raise TelegramUnavailable(f"{method}: {code} {description}")
        raise TelegramError(
            method, code, description, float(retry_after) if retry_after is not None else None
        )

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Any:
        """`call_once` until it succeeds or fails for good (a 4xx other than 409/429)."""
        attempt = 0
        while True:
            try:
                return await self.call_once(method, params, files=files, timeout_s=timeout_s)
            except TelegramUnavailable as exc:
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s)
                log.warning("telegram %s unavailable (%s); retrying in %.2fs", method, exc, delay)
            except TelegramError as exc:
                if exc.error_code == 429:
                    delay = min(
                        exc.retry_after
                        if exc.retry_after is not None
                        else backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s),
                        RETRY_AFTER_MAX_S,
                    )
                    log.warning(
                        "telegram %s rate limited: waiting %.1fs (retry_after)", method, delay
                    )
                elif exc.error_code == 409:
                    self.conflicts += 1
                    delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s)
                    log.error(
                        "telegram %s: 409 Conflict: %s. Another process is polling this "
                        "bot, or a webhook is set for it; only one bridge may poll a "
                        "bot (use webhook mode or stop the other). Retrying in %.1fs",
                        method,
                        exc.description,
                        delay,
                    )
                else:
                    raise
            self.retries += 1
            attempt += 1
            await asyncio.sleep(delay)

    async def download(self, file_path: str, timeout_s: float = REQUEST_TIMEOUT_S * 4) -> bytes:
        """GET the file of a getFile answer, retrying 5xx and network errors."""
        url = f"{self.base}/file/bot{self._token}/{file_path}"
        attempt = 0
        while True:
            try:
                async with self.session.get(
                    url, timeout=aiohttp.ClientTimeout(total=timeout_s)
                ) as resp:
                    if resp.status == 200:
                        return await resp.read()
                    if resp.status < 500 and resp.status != 429:
                        raise TelegramError(
                            "download", resp.status, f"file download failed with HTTP {resp.status}"
                        )
                    problem = f"HTTP {resp.status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = self.scrub(f"{type(exc).__name__}: {exc}")
            delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s)
            log.warning("telegram file download failed (%s); retrying in %.2fs", problem, delay)
            attempt += 1
            await asyncio.sleep(delay)
