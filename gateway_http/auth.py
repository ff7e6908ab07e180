"""Who is asking: the token of a request (`?token=` or `Authorization: Bearer`) and its scope.

A workspace token sees its own workspace only. The admin token sees every
workspace, or the one named with `?workspace=`; routes that act on one
workspace use the default workspace when the admin names none. On a workspace
subdomain (`<workspace>.<base host>`, hosts.py) the request's workspace is the
subdomain's: the admin token sees that one (whatever `?workspace=` says), and a
token of another workspace is refused (401). Every write
(message posts, uploads, observer posts, workspaces, tokens, invites) needs
the admin token; a workspace token only reads. Tokens are checked
against the database at most every SCITEX_OROCHI_TOKEN_CACHE_S (a bounded cache of
successful lookups, `scitex_orochi.hub.tokens`); the gateway's own admin
writes clear the cache so a deleted token stops working at once here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from scitex_orochi.hub.store import DEFAULT_WORKSPACE_ID, read_admin_token

from .errors import not_found, unauthorized
from .hosts import HOST_WORKSPACE
from .keys import AUTH_CACHE, CONFIG, STORE


@dataclass(frozen=True)
class Scope:
    token: str
    is_admin: bool
    workspace: str | None  # None: every workspace (admin without ?workspace=)
    agent_name: str | None = None  # the name a pinned workspace token is pinned to

    @property
    def one_workspace(self) -> str:
        """The workspace for routes that act on exactly one."""
        return self.workspace or DEFAULT_WORKSPACE_ID

    def may_see(self, workspace: str) -> bool:
        return self.workspace is None or self.workspace == workspace


def request_token(request: web.Request) -> str:
    token = request.query.get("token", "")
    if token:
        return token
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return ""


def admin_token(app: web.Application) -> str:
    cfg = app[CONFIG]
    if cfg.auth.admin_token:
        return cfg.auth.admin_token
    return read_admin_token(cfg.admin_token_file) or ""


def host_workspace(request: web.Request) -> str | None:
    """The workspace of the request's `<workspace>.<base host>` Host, or None."""
    return request.get(HOST_WORKSPACE)


async def scope_of_token(
    app: web.Application, token: str, wanted: str | None, pinned: str | None = None
) -> Scope | None:
    """The scope a token grants, or None if it grants nothing. `pinned`: the request's
    subdomain workspace; a token of another workspace grants nothing there."""
    if not token:
        return None
    cache = app[AUTH_CACHE]
    now = time.monotonic()
    auth = cache.get(token, now)
    if auth is None:
        auth = await asyncio.to_thread(app[STORE].authenticate, token, admin_token(app))
        cache.put(token, auth, now)  # failures are never kept
    if auth is None:
        return None
    if auth.is_admin:
        return Scope(token, True, pinned or wanted or None)
    if pinned is not None and auth.workspace_id != pinned:
        return None
    return Scope(token, False, auth.workspace_id, auth.agent_name)


async def authenticate(request: web.Request) -> Scope:
    """The request's scope; 401 with a JSON error for a missing or wrong token."""
    token = request_token(request)
    if not token:
        raise unauthorized("missing token: pass ?token= or Authorization: Bearer <token>")
    pinned = host_workspace(request)
    scope = await scope_of_token(request.app, token, request.query.get("workspace"), pinned)
    if scope is None:
        if pinned is not None:
            raise unauthorized(f"invalid token for workspace {pinned!r} (this subdomain's)")
        raise unauthorized("invalid token")
    return scope


ADMIN_NEEDED = "this needs the admin token"


async def require_admin(request: web.Request) -> Scope:
    """The admin's scope; 401 with a JSON error for any other token (writes are admin-only)."""
    scope = await authenticate(request)
    if not scope.is_admin:
        raise unauthorized(ADMIN_NEEDED)
    return scope


def forget_tokens(app: web.Application) -> None:
    app[AUTH_CACHE].clear()


def require_workspace_access(scope: Scope, workspace_id: str) -> None:
    if not scope.may_see(workspace_id):
        raise not_found(f"workspace {workspace_id!r} not found")
