"""REST routes onto the Gitea worker, asked over the bus as gateway_ws asks it for `gitea` frames.

`GET /api/gitea/issues/{owner}/{repo}` (`?state=`), `GET /api/gitea/repos`
(`?org=`, `?q=`) and `POST /api/gitea/issues/{owner}/{repo}` (`{title, body,
labels}` → 201). Authority is the same as over the agent socket
(`bridges.gitea.authority`): the admin token, or a workspace token whose
workspace was granted those owners/repos (403 otherwise, before any Gitea call).
The Gitea token lives only in the worker. Errors are the gateway's JSON errors
plus `code` (GITEA_..., FORBIDDEN) and, when Gitea answered, `gitea_status`: the
worker's error is rebuilt as the worker's own exception (`ActionError`, 400 for
bad parameters; `GiteaApiError`, Gitea's own status for its 4xx answers, 502 for
its 5xx or when it cannot be reached) and 504 when the worker does not answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bridges.gitea import authority
from bridges.gitea.actions import ActionError
from bridges.gitea.api import GiteaApiError
from scitex_orochi.hub.bus_bodies import ErrorBody
from scitex_orochi.hub.errors import HubError, RpcTimeout, as_code
from scitex_orochi.protocol.errors import ErrorCode

from .auth import Scope, authenticate
from .bodies import read_json_object
from .keys import BUS, STORE

GITEA_RPC_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 1024 * 1024
GATEWAY_TIMEOUT = 504


class WorkerTimeout(GiteaApiError):
    """The Gitea worker did not answer: 504, a gateway timeout. The code stays
    GITEA_API_ERROR, what an agent gets over its socket for the same wait."""

    def __init__(self) -> None:
        super().__init__(
            None, "the Gitea worker did not answer in time (is SCITEX_OROCHI_GITEA_URL set?)"
        )

    @property
    def http_status(self) -> int:
        return GATEWAY_TIMEOUT


def worker_error(error: ErrorBody) -> HubError:
    """The worker's error reply as the exception the worker raised."""
    code = as_code(error.get("code"), ErrorCode.GITEA_API_ERROR)
    detail = str(error.get("detail", ""))
    if code is ErrorCode.GITEA_API_ERROR:
        return GiteaApiError(error.get("status"), detail)
    return ActionError(code, detail)


async def call_worker(
    request: web.Request, scope: Scope, action: str, params: dict[str, Any]
) -> Any:
    """The worker's `result` (cut to what the scope may see); raises a HubError."""
    grant = None
    if not scope.is_admin:
        auth = await asyncio.to_thread(request.app[STORE].authenticate, scope.token, "")
        grant = auth.gitea_access if auth is not None else None
    authority.check(action, params, is_admin=scope.is_admin, grant=grant)  # GiteaForbidden
    workspace = scope.one_workspace
    try:
        reply = await request.app[BUS].request(
            "gitea",
            {"ws": workspace, "sender": "http", "action": action, "params": params},
            GITEA_RPC_TIMEOUT_S,
        )
    except RpcTimeout:
        raise WorkerTimeout() from None
    error = reply.get("error")
    if error:
        raise worker_error(error)
    return authority.filter_result(
        action, params, reply.get("result"), is_admin=scope.is_admin, grant=grant
    )


async def list_issues(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    params = {
        "owner": request.match_info["owner"],
        "repo": request.match_info["repo"],
        "state": request.query.get("state", "open"),
    }
    return web.json_response(await call_worker(request, scope, "list_issues", params))


async def list_repos(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    params = {key: request.query[key] for key in ("org", "q") if request.query.get(key)}
    return web.json_response(await call_worker(request, scope, "list_repos", params))


async def create_issue(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    data = await read_json_object(request, MAX_BODY_BYTES)
    params = {**data, "owner": request.match_info["owner"], "repo": request.match_info["repo"]}
    result = await call_worker(request, scope, "create_issue", params)
    return web.json_response(result, status=201)


def setup(app: web.Application) -> None:
    """Add the Gitea routes (they ask the worker through the HTTP gateway's bus peer)."""
    app.router.add_get("/api/gitea/issues/{owner}/{repo}", list_issues)
    app.router.add_post("/api/gitea/issues/{owner}/{repo}", create_issue)
    app.router.add_get("/api/gitea/repos", list_repos)
