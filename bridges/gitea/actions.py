"""The eight `gitea` actions as pure functions: action + params -> one Gitea API request.

Validation errors carry the protocol's codes (PROTOCOL.md §3, §8):
`GITEA_UNKNOWN_ACTION` for an action not listed here, `GITEA_MISSING_PARAM` for a
required parameter that is absent or of the wrong type. Parameter names follow
the published server (`owner`, `repo`, `title`, `body`, `labels`, `state`,
`issue_number`, `name`, `org`, `private`, `description`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from scitex_orochi.hub.bus_bodies import ErrorBody
from scitex_orochi.hub.errors import HubError
from scitex_orochi.protocol.errors import ErrorCode

UNKNOWN_ACTION = ErrorCode.GITEA_UNKNOWN_ACTION
MISSING_PARAM = ErrorCode.GITEA_MISSING_PARAM

ISSUE_STATES = ("open", "closed", "all")


class ActionError(HubError, ValueError):
    """A request the worker refuses before calling Gitea (GITEA_UNKNOWN_ACTION or
    GITEA_MISSING_PARAM)."""

    code = MISSING_PARAM
    code_in_body = True  # the same code an agent gets in its `gitea` error frame

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail, code=code)

    def as_error(self) -> ErrorBody:
        """The error of the worker's reply (`rep.<origin>|`)."""
        return ErrorBody(code=self.code, detail=self.detail)


@dataclass(frozen=True)
class GiteaRequest:
    method: str
    path: str  # below <url>/api/v1, already URL-quoted
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    unwrap: str | None = None  # key of the response object holding the result


def _missing(name: str) -> ActionError:
    return ActionError(MISSING_PARAM, f"Missing required parameter: '{name}'")


def _str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _missing(name)
    return value


def _opt_str(params: dict[str, Any], name: str, default: str = "") -> str:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ActionError(MISSING_PARAM, f"Parameter '{name}' must be a string")
    return value


def _issue_number(params: dict[str, Any]) -> int:
    value = params.get("issue_number", params.get("number", params.get("index")))
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None:
        raise _missing("issue_number")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActionError(MISSING_PARAM, "Parameter 'issue_number' must be a positive integer")
    return value


def _seg(value: str) -> str:
    """One path segment: owner and repo names never add path components."""
    return quote(value, safe="")


def _repo_path(params: dict[str, Any]) -> str:
    return f"/repos/{_seg(_str(params, 'owner'))}/{_seg(_str(params, 'repo'))}"


def create_issue(params: dict[str, Any]) -> GiteaRequest:
    path = _repo_path(params)
    body: dict[str, Any] = {"title": _str(params, "title"), "body": _opt_str(params, "body")}
    labels = params.get("labels")
    if labels:
        if not isinstance(labels, list) or not all(isinstance(x, int) for x in labels):
            raise ActionError(MISSING_PARAM, "Parameter 'labels' must be a list of label ids")
        body["labels"] = labels
    return GiteaRequest("POST", f"{path}/issues", body=body)


def list_issues(params: dict[str, Any]) -> GiteaRequest:
    path = _repo_path(params)
    state = _opt_str(params, "state", "open") or "open"
    if state not in ISSUE_STATES:
        raise ActionError(MISSING_PARAM, f"Parameter 'state' must be one of {ISSUE_STATES}")
    return GiteaRequest("GET", f"{path}/issues", query={"state": state, "type": "issues"})


def close_issue(params: dict[str, Any]) -> GiteaRequest:
    path = _repo_path(params)
    return GiteaRequest("PATCH", f"{path}/issues/{_issue_number(params)}", body={"state": "closed"})


def add_comment(params: dict[str, Any]) -> GiteaRequest:
    path = _repo_path(params)
    number = _issue_number(params)
    return GiteaRequest(
        "POST", f"{path}/issues/{number}/comments", body={"body": _str(params, "body")}
    )


def create_repo(params: dict[str, Any]) -> GiteaRequest:
    body: dict[str, Any] = {
        "name": _str(params, "name"),
        "private": bool(params.get("private", False)),
    }
    description = _opt_str(params, "description")
    if description:
        body["description"] = description
    if params.get("auto_init"):
        body["auto_init"] = True
    org = _opt_str(params, "org")
    path = f"/orgs/{_seg(org)}/repos" if org else "/user/repos"
    return GiteaRequest("POST", path, body=body)


def create_org(params: dict[str, Any]) -> GiteaRequest:
    body: dict[str, Any] = {"username": _str(params, "name")}
    for key in ("description", "full_name", "visibility"):
        value = _opt_str(params, key)
        if value:
            body[key] = value
    return GiteaRequest("POST", "/orgs", body=body)


def list_repos(params: dict[str, Any]) -> GiteaRequest:
    org = _opt_str(params, "org")
    if org:
        return GiteaRequest("GET", f"/orgs/{_seg(org)}/repos")
    # /repos/search wraps its list as {"ok": true, "data": [...]}: return the list.
    return GiteaRequest("GET", "/repos/search", query={"q": _opt_str(params, "q")}, unwrap="data")


def get_version(params: dict[str, Any]) -> GiteaRequest:
    return GiteaRequest("GET", "/version")


ACTIONS: dict[str, Callable[[dict[str, Any]], GiteaRequest]] = {
    "create_issue": create_issue,
    "list_issues": list_issues,
    "close_issue": close_issue,
    "add_comment": add_comment,
    "create_repo": create_repo,
    "create_org": create_org,
    "list_repos": list_repos,
    "get_version": get_version,
}


def build_request(action: Any, params: Any) -> GiteaRequest:
    """The Gitea API request for one action; raises ActionError."""
    if not isinstance(action, str) or not action:
        raise ActionError(MISSING_PARAM, "Missing required parameter: 'action'")
    builder = ACTIONS.get(action)
    if builder is None:
        raise ActionError(UNKNOWN_ACTION, f"Unknown gitea action: {action}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ActionError(MISSING_PARAM, "params must be an object")
    return builder(params)


def api_error(status: int | None, detail: str) -> ErrorBody:
    """The error body of a failed Gitea call (status omitted when there was no response)."""
    error = ErrorBody(code=ErrorCode.GITEA_API_ERROR, detail=detail)
    if status is not None:
        error["status"] = status
    return error
