"""A blocking REST client for the hub's HTTP gateway (PROTOCOL.md §6), used by the CLI.

Only the standard library: the CLI stays quick to start. HTTP statuses become
the exceptions of `client_errors` here, so commands never see raw HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from scitex_orochi.client.errors import AuthError, ConnectionFailed, NotFound, ServerError

REST_TIMEOUT_S = 10.0


def http_url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class RestClient:
    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = REST_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, path, exc) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(
                f"cannot reach the HTTP gateway at {self.base_url} ({reason}); check that the "
                "hub is running and --dashboard-port / SCITEX_OROCHI_DASHBOARD_PORT",
                self.base_url,
            ) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerError("BAD_RESPONSE", f"{method} {path} did not return JSON") from None

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> Exception:
        try:
            body = json.loads(exc.read() or b"null")
        except ValueError:
            body = None
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("error") or body.get("message") or "")
        if exc.code in (401, 403):
            return AuthError(
                f"{self.base_url} refused the token for {method} {path} "
                f"(HTTP {exc.code}); check --token / SCITEX_OROCHI_ADMIN_TOKEN"
            )
        if exc.code == 404:
            return NotFound("NOT_FOUND", detail or f"{method} {path}: not found", status=404)
        return ServerError(f"HTTP_{exc.code}", detail or exc.reason or "", status=exc.code)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def channel_path(channel: str) -> str:
    """`#general` → `general` for `/api/history/{channel}` (the `#` is optional there)."""
    return quote(channel.lstrip("#"), safe="")
