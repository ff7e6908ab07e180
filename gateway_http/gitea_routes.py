"""REST routes onto the Gitea worker, asked over the bus as gateway_ws asks it for `gitea` frames.

`GET /api/gitea/issues/{owner}/{repo}` (`?state=`), `GET /api/gitea/repos`
(`?org=`, `?q=`) and `POST /api/gitea/issues/{owner}/{repo}` (`{title, body,
labels}` → 201). Authority is the same as over the agent socket
(`bridges.gitea.authority`): the admin token, or a workspace token whose
workspace was granted those owners/repos (403 otherwise, before any Gitea call).
The Gitea token lives only in the worker. Errors are the gateway's JSON errors
plus `code` (GITEA_...) and, when Gitea answered, `gitea_status`: 400 for bad
parameters, Gitea's own status for its 4xx answers, 502 for its 5xx or when it
cannot be reached, 504 when the worker does not answer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridges.gitea import authority
from scitex_orochi.hub.peer import RpcTimeout

from .auth import Scope, authenticate
from .bodies import read_json_object
from .errors import ApiError
from .keys import HUB

GITEA_RPC_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 1024 * 1024


def http_status(error: dict[str, Any]) -> int:
    """The HTTP status that carries a worker error."""
    status = error.get("status")
    if error.get("code") != "GITEA_API_ERROR":
        return 400
    if isinstance(status, int) and 400 <= status < 500:
        return status
    return 502


async def call_worker(request: web.Request, scope: Scope, action: str,
                      params: dict[str, Any]) -> Any:
    """The worker's `result` (cut to what the scope may see), or an ApiError."""
    grant = None
    if not scope.is_admin:
        hub = request.app[HUB]
        auth = await hub.run_blocking(hub.store.authenticate, scope.token, "")
        grant = auth.gitea_access if auth is not None else None
    try:
        authority.check(action, params, is_admin=scope.is_admin, grant=grant)
    except authority.GiteaForbidden as exc:
        raise ApiError(403, exc.detail, code=exc.code) from None
    workspace = scope.one_workspace
    try:
        reply = await request.app[HUB].peer.request(
            "gitea", {"ws": workspace, "sender": "http", "action": action, "params": params},
            GITEA_RPC_TIMEOUT_S)
    except RpcTimeout:
        raise ApiError(504, "the Gitea worker did not answer in time (is "
                            "SCITEX_OROCHI_GITEA_URL set?)", code="GITEA_API_ERROR") from None
    error = reply.get("error")
    if error:
        extra = {"gitea_status": error["status"]} if "status" in error else {}
        raise ApiError(http_status(error), str(error.get("detail", "")),
                       code=error.get("code", "GITEA_API_ERROR"), **extra)
    return authority.filter_result(action, params, reply.get("result"),
                                   is_admin=scope.is_admin, grant=grant)


async def list_issues(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    params = {"owner": request.match_info["owner"], "repo": request.match_info["repo"],
              "state": request.query.get("state", "open")}
    return web.json_response(
        await call_worker(request, scope, "list_issues", params))


async def list_repos(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    params = {key: request.query[key] for key in ("org", "q") if request.query.get(key)}
    return web.json_response(
        await call_worker(request, scope, "list_repos", params))


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
