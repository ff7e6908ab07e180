"""Who may run which Gitea action (pure): the same rule over WebSocket and REST.

Every action runs with the hub's own Gitea token, so it needs authority here,
checked before any Gitea call: the admin token may run everything; a workspace
token only what its workspace was explicitly granted (`gitea_access`:
`{"owners": ["lab"], "repos": ["other/tool"]}`), and only on those owners and
repos. Creating organisations, and repositories outside a granted organisation,
stays with the admin. A search across all repositories is filtered down to the
granted ones.
"""

from __future__ import annotations

from typing import Any

from scitex_orochi.hub.errors import HubError
from scitex_orochi.protocol.errors import ErrorCode

# Actions that name one repository through `owner` and `repo`.
REPO_ACTIONS = frozenset({"create_issue", "list_issues", "close_issue", "add_comment"})
ADMIN_ONLY = "needs the admin token"


class GiteaForbidden(HubError, PermissionError):
    """The caller may not run this action: checked before any Gitea call."""

    code = ErrorCode.FORBIDDEN
    code_in_body = True  # the same code an agent gets in its `gitea` error frame

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail}


def _names(grant: dict[str, Any], key: str) -> set[str]:
    values = grant.get(key)
    if not isinstance(values, list):
        return set()
    return {v.lower() for v in values if isinstance(v, str) and v}


def allows_repo(grant: dict[str, Any] | None, owner: str, repo: str | None = None) -> bool:
    if not grant:
        return False
    owner = owner.lower()
    if owner in _names(grant, "owners"):
        return True
    return repo is not None and f"{owner}/{repo.lower()}" in _names(grant, "repos")


def check(action: Any, params: Any, *, is_admin: bool, grant: dict[str, Any] | None) -> None:
    """Raise GiteaForbidden unless the caller may run `action` with `params`."""
    if is_admin:
        return
    if not grant:
        raise GiteaForbidden(
            "this workspace has no Gitea access: an admin can grant it "
            "(PUT /api/workspaces/<id>/gitea with owners and repos)"
        )
    params = params if isinstance(params, dict) else {}
    owner, repo = params.get("owner"), params.get("repo")
    if action in REPO_ACTIONS:
        if not isinstance(owner, str) or not isinstance(repo, str):
            return  # the worker answers GITEA_MISSING_PARAM
        if not allows_repo(grant, owner, repo):
            raise GiteaForbidden(f"this workspace may not use {owner}/{repo} on Gitea")
    elif action == "create_repo":
        org = params.get("org")
        if not isinstance(org, str) or not org:
            raise GiteaForbidden(
                "creating a repository under the hub's own Gitea user " + ADMIN_ONLY
            )
        if not allows_repo(grant, org):
            raise GiteaForbidden(f"this workspace may not create repositories in {org}")
    elif action == "create_org":
        raise GiteaForbidden("creating a Gitea organisation " + ADMIN_ONLY)
    elif action == "list_repos":
        org = params.get("org")
        if isinstance(org, str) and org and not allows_repo(grant, org):
            raise GiteaForbidden(f"this workspace may not list the repositories of {org}")


def filter_result(
    action: Any, params: Any, result: Any, *, is_admin: bool, grant: dict[str, Any] | None
) -> Any:
    """A search across all repositories, cut down to what the workspace may see."""
    if is_admin or action != "list_repos" or not isinstance(result, list):
        return result
    if isinstance(params, dict) and params.get("org"):
        return result
    kept = []
    for item in result:
        if not isinstance(item, dict):
            continue
        full = str(item.get("full_name") or "")
        owner, _, name = full.partition("/")
        if allows_repo(grant, owner, name):
            kept.append(item)
    return kept
