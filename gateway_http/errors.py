"""One JSON error shape for every failure of the HTTP gateway, and the CORS middleware.

Every error answer is `{"error": "<what went wrong>", "status": <http status>}`,
plus `"field"` when one input field is to blame. Handlers raise any
`scitex_orochi.hub.errors.HubError` (an `ApiError` for the gateway's own
refusals, or a store, Gitea or ingest error as it is): `error_middleware` renders
it with the status of its code. Unknown routes (404), wrong methods (405),
oversized bodies (413) and any other exception go through it too, so a client
never sees an HTML error page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, overload

from aiohttp import web
from aiohttp.typedefs import Middleware

from scitex_orochi.hub.errors import HubError
from scitex_orochi.hub.upstream import origin_of
from scitex_orochi.protocol.errors import ErrorCode

from .accesslog import redact_target

log = logging.getLogger("orochi.gateway_http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
CORS_MAX_AGE_S = 600
AUTH_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="orochi"'}
INTERNAL_ERROR = HubError("internal server error")


class ApiError(HubError):
    """A refusal of the gateway's own: a code (its status follows), a message, and what
    the answer needs besides: response headers, or closing the connection (a 413
    before the body was read)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        close_connection: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(message, code=code, field=field, **extra)
        self.headers = dict(headers or {})
        self.close_connection = close_connection

    @property
    def message(self) -> str:
        return self.detail


def render(exc: HubError) -> web.Response:
    """The JSON answer of an error: its body, and the status of its code."""
    response = web.json_response(exc.body, status=exc.http_status)
    if isinstance(exc, ApiError):
        response.headers.update(exc.headers)
        if exc.close_connection:
            response.force_close()
    return response


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(ErrorCode.INVALID_FIELD, message, field=field)


def unauthorized(message: str = "invalid or missing token") -> ApiError:
    return ApiError(ErrorCode.AUTH_FAILED, message, headers=AUTH_CHALLENGE)


def not_found(message: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, message)


def too_large(message: str, limit: int) -> ApiError:
    """413 naming the limit; the connection closes, so an unread body is never parsed."""
    return ApiError(ErrorCode.TOO_LARGE, message, limit=limit, close_connection=True)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """An error answer whose status is not ours to choose (aiohttp's, the Host check's)."""
    body: dict[str, Any] = {"error": message, "status": status, **extra}
    return web.json_response(body, status=status)


def _reason(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "no such route"
    if exc.status == 405:
        return "method not allowed"
    if exc.status == 413:
        return "request body too large"
    text = exc.text or exc.reason or ""
    return text.split(":", 1)[-1].strip() if text.startswith(f"{exc.status}:") else text


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        if exc.code is ErrorCode.SERVER_ERROR:  # a failure, not a refusal: its text is for
            log.exception("%s %s failed", request.method, redact_target(request.raw_path))
            return render(INTERNAL_ERROR)  # the log, not the client
        return render(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() in ("allow", "www-authenticate", "retry-after")
        }
        message = _reason(exc)
        if exc.status == 404:
            message = f"no such route: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        response = error_response(exc.status, message)
        response.headers.update(headers)
        return response
    except Exception:  # noqa: BLE001 - the edge turns every failure into a JSON 500
        log.exception("%s %s failed", request.method, redact_target(request.raw_path))
        return render(INTERNAL_ERROR)


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    """Allow the configured origins (`*` for any) to call the API from a browser."""
    allowed = frozenset(origin_of(o) for o in origins)  # as browsers send them
    allow_any = "*" in allowed

    def allowed_origin(request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if not origin or not (allow_any or origin_of(origin) in allowed):
            return None
        return origin

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allowed_origin(request)
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            if origin is None:
                return render(ApiError(ErrorCode.FORBIDDEN, "origin not allowed"))
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
        else:
            response = await handler(request)
        if origin is not None and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


# ---- request fields (bodies are read in bodies.py) -------------------------------
def opt_str(data: dict[str, Any], key: str, *, limit: int = 1000, prefix: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{prefix}{key} must be a string", prefix + key)
    if len(value) > limit:
        raise bad_request(f"{prefix}{key} is longer than {limit} characters", prefix + key)
    return value


def opt_int(data: dict[str, Any], key: str, *, lo: int, hi: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{key} must be an integer", key)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise bad_request(f"{key} must be {bound}", key)
    return value


@overload
def query_int(
    request: web.Request,
    key: str,
    default: int,
    *,
    lo: int,
    hi: int | None = None,
    clamp: bool = False,
) -> int: ...
@overload
def query_int(
    request: web.Request,
    key: str,
    default: None,
    *,
    lo: int,
    hi: int | None = None,
    clamp: bool = False,
) -> int | None: ...
def query_int(
    request: web.Request,
    key: str,
    default: int | None,
    *,
    lo: int,
    hi: int | None = None,
    clamp: bool = False,
) -> int | None:
    """An integer query parameter: 400 naming it when it is not one."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{key} must be an integer", key) from None
    if clamp:
        return max(lo, value if hi is None else min(hi, value))
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise bad_request(f"{key} must be {bound}", key)
    return value
