"""A Gitea API server for tests: the eight endpoints the worker uses, with Gitea's JSON shapes.

Auth is `Authorization: token <t>` (401 otherwise). Errors look like Gitea's:
404 `{"errors": null, "message": "The target couldn't be found.", "url": ...}`,
422 `{"message": "[Title]: Required", "url": ...}`, 409 for an existing repo.
`fail_next(status, body)` injects a fault; `delay_s` slows every answer.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from support.fake_threaded import ThreadedServer

VERSION = "1.22.3"
API_DOCS = "https://gitea.example/api/swagger"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class FakeGitea(ThreadedServer):
    def __init__(self, token: str = "gitea-secret-token-0123456789") -> None:
        super().__init__()
        self.token = token
        self.username = "orochi-bot"
        self._ids = itertools.count(1)
        self.orgs: dict[str, dict[str, Any]] = {}
        self.repos: dict[str, dict[str, Any]] = {}  # "owner/name" -> repo
        self.issues: dict[str, list[dict[str, Any]]] = {}
        self.comments: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.faults: list[tuple[int, Any]] = []
        self.delay_s = 0.0
        self.user = {
            "id": 1,
            "login": self.username,
            "full_name": "Orochi Bot",
            "email": "bot@example.com",
            "username": self.username,
        }

    # ---- test side -------------------------------------------------------
    def seed_org(self, name: str) -> dict[str, Any]:
        return self.call(lambda: self._create_org({"username": name}))

    def seed_repo(self, owner: str, name: str, private: bool = False) -> dict[str, Any]:
        return self.call(lambda: self._create_repo(owner, {"name": name, "private": private}))

    def fail_next(self, status: int, body: Any = None) -> None:
        body = body if body is not None else {"message": "internal server error", "url": API_DOCS}
        self.call(lambda: self.faults.append((status, body)))

    # ---- model -----------------------------------------------------------
    def _owner(self, name: str) -> dict[str, Any]:
        if name in self.orgs:
            return self.orgs[name]
        return self.user

    def _create_org(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["username"]
        org = {
            "id": next(self._ids),
            "name": name,
            "username": name,
            "full_name": body.get("full_name", ""),
            "description": body.get("description", ""),
            "avatar_url": f"http://gitea.local/avatars/{name}",
            "website": "",
            "location": "",
            "visibility": body.get("visibility", "public"),
            "repo_admin_change_team_access": False,
        }
        self.orgs[name] = org
        return org

    def _create_repo(self, owner: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        repo = {
            "id": next(self._ids),
            "owner": self._owner(owner),
            "name": name,
            "full_name": f"{owner}/{name}",
            "description": body.get("description", ""),
            "empty": not body.get("auto_init"),
            "private": bool(body.get("private")),
            "fork": False,
            "html_url": f"http://gitea.local/{owner}/{name}",
            "clone_url": f"http://gitea.local/{owner}/{name}.git",
            "default_branch": "main",
            "open_issues_count": 0,
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.repos[f"{owner}/{name}"] = repo
        self.issues[f"{owner}/{name}"] = []
        return repo

    # ---- HTTP --------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/api/v1/version", self._version)
        r.add_post("/api/v1/repos/{owner}/{repo}/issues", self._create_issue)
        r.add_get("/api/v1/repos/{owner}/{repo}/issues", self._list_issues)
        r.add_patch("/api/v1/repos/{owner}/{repo}/issues/{index}", self._edit_issue)
        r.add_post("/api/v1/repos/{owner}/{repo}/issues/{index}/comments", self._comment)
        r.add_post("/api/v1/orgs/{org}/repos", self._create_org_repo)
        r.add_post("/api/v1/user/repos", self._create_user_repo)
        r.add_post("/api/v1/orgs", self._create_org_route)
        r.add_get("/api/v1/orgs/{org}/repos", self._org_repos)
        r.add_get("/api/v1/repos/search", self._search)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
            }
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.headers.get("Authorization") != f"token {self.token}":
            return web.json_response(
                {"message": "user does not exist [uid: 0, name: ]", "url": API_DOCS}, status=401
            )
        if self.faults:
            status, body = self.faults.pop(0)
            return web.json_response(body, status=status)
        return await handler(request)

    @staticmethod
    def _not_found() -> web.Response:
        return web.json_response(
            {"errors": None, "message": "The target couldn't be found.", "url": API_DOCS},
            status=404,
        )

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _repo_key(self, request: web.Request) -> str | None:
        key = f"{request.match_info['owner']}/{request.match_info['repo']}"
        return key if key in self.repos else None

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def _create_issue(self, request: web.Request) -> web.Response:
        key = self._repo_key(request)
        if key is None:
            return self._not_found()
        body = await self._json(request)
        if not body.get("title"):
            return web.json_response({"message": "[Title]: Required", "url": API_DOCS}, status=422)
        issues = self.issues[key]
        number = len(issues) + 1
        issue = {
            "id": next(self._ids),
            "number": number,
            "title": body["title"],
            "body": body.get("body", ""),
            "user": self.user,
            "labels": [],
            "state": "open",
            "comments": 0,
            "created_at": _now(),
            "updated_at": _now(),
            "closed_at": None,
            "html_url": f"http://gitea.local/{key}/issues/{number}",
            "url": f"http://gitea.local/api/v1/repos/{key}/issues/{number}",
            "repository": {
                "id": self.repos[key]["id"],
                "name": key.split("/")[1],
                "owner": key.split("/")[0],
                "full_name": key,
            },
        }
        issues.append(issue)
        self.repos[key]["open_issues_count"] += 1
        return web.json_response(issue, status=201)

    async def _list_issues(self, request: web.Request) -> web.Response:
        key = self._repo_key(request)
        if key is None:
            return self._not_found()
        state = request.query.get("state", "open")
        found = [i for i in self.issues[key] if state == "all" or i["state"] == state]
        return web.json_response(list(reversed(found)))

    def _issue(self, request: web.Request) -> dict[str, Any] | None:
        key = self._repo_key(request)
        if key is None:
            return None
        try:
            number = int(request.match_info["index"])
        except ValueError:
            return None
        return next((i for i in self.issues[key] if i["number"] == number), None)

    async def _edit_issue(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if issue is None:
            return self._not_found()
        body = await self._json(request)
        if body.get("state") == "closed" and issue["state"] != "closed":
            issue["state"], issue["closed_at"] = "closed", _now()
        issue["updated_at"] = _now()
        return web.json_response(issue, status=201)  # Gitea answers 201 to an issue edit

    async def _comment(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if issue is None:
            return self._not_found()
        body = await self._json(request)
        if not body.get("body"):
            return web.json_response({"message": "[Body]: Required", "url": API_DOCS}, status=422)
        comment = {
            "id": next(self._ids),
            "body": body["body"],
            "user": self.user,
            "html_url": f"{issue['html_url']}#issuecomment-1",
            "issue_url": issue["html_url"],
            "created_at": _now(),
            "updated_at": _now(),
        }
        issue["comments"] += 1
        self.comments.append(comment)
        return web.json_response(comment, status=201)

    async def _new_repo(self, owner: str, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not body.get("name"):
            return web.json_response({"message": "[Name]: Required", "url": API_DOCS}, status=422)
        if f"{owner}/{body['name']}" in self.repos:
            return web.json_response(
                {"message": "The repository with the same name already exists.", "url": API_DOCS},
                status=409,
            )
        return web.json_response(self._create_repo(owner, body), status=201)

    async def _create_org_repo(self, request: web.Request) -> web.Response:
        org = request.match_info["org"]
        if org not in self.orgs:
            return self._not_found()
        return await self._new_repo(org, request)

    async def _create_user_repo(self, request: web.Request) -> web.Response:
        return await self._new_repo(self.username, request)

    async def _create_org_route(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        name = body.get("username")
        if not name:
            return web.json_response(
                {"message": "[UserName]: Required", "url": API_DOCS}, status=422
            )
        if name in self.orgs or name == self.username:
            return web.json_response(
                {"message": f"user already exists [name: {name}]", "url": API_DOCS}, status=422
            )
        return web.json_response(self._create_org(body), status=201)

    async def _org_repos(self, request: web.Request) -> web.Response:
        org = request.match_info["org"]
        if org not in self.orgs:
            return self._not_found()
        return web.json_response([r for k, r in self.repos.items() if k.startswith(org + "/")])

    async def _search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "")
        data = [r for r in self.repos.values() if q in r["name"]]
        return web.json_response({"ok": True, "data": data})
