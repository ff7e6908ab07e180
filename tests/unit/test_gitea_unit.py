"""Gitea worker, pure parts: action + params -> request, validation codes (the API client
against the fake Gitea is tests/component/test_gitea_api.py)."""

from __future__ import annotations

import pytest

from bridges.gitea.actions import (
    ACTIONS,
    ActionError,
    GiteaRequest,
    api_error,
    build_request,
)

REPO = {"owner": "lab", "repo": "orochi"}


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        (
            "create_issue",
            {**REPO, "title": "t", "body": "b"},
            GiteaRequest("POST", "/repos/lab/orochi/issues", body={"title": "t", "body": "b"}),
        ),
        (
            "create_issue",
            {**REPO, "title": "t", "labels": [1, 2]},
            GiteaRequest(
                "POST",
                "/repos/lab/orochi/issues",
                body={"title": "t", "body": "", "labels": [1, 2]},
            ),
        ),
        (
            "list_issues",
            REPO,
            GiteaRequest(
                "GET", "/repos/lab/orochi/issues", query={"state": "open", "type": "issues"}
            ),
        ),
        (
            "list_issues",
            {**REPO, "state": "closed"},
            GiteaRequest(
                "GET", "/repos/lab/orochi/issues", query={"state": "closed", "type": "issues"}
            ),
        ),
        (
            "close_issue",
            {**REPO, "issue_number": 3},
            GiteaRequest("PATCH", "/repos/lab/orochi/issues/3", body={"state": "closed"}),
        ),
        (
            "close_issue",
            {**REPO, "number": "4"},
            GiteaRequest("PATCH", "/repos/lab/orochi/issues/4", body={"state": "closed"}),
        ),
        (
            "add_comment",
            {**REPO, "issue_number": 3, "body": "hi"},
            GiteaRequest("POST", "/repos/lab/orochi/issues/3/comments", body={"body": "hi"}),
        ),
        (
            "create_repo",
            {"name": "r", "org": "lab"},
            GiteaRequest("POST", "/orgs/lab/repos", body={"name": "r", "private": False}),
        ),
        (
            "create_repo",
            {"name": "r", "private": True, "description": "d"},
            GiteaRequest(
                "POST", "/user/repos", body={"name": "r", "private": True, "description": "d"}
            ),
        ),
        (
            "create_org",
            {"name": "lab", "description": "d"},
            GiteaRequest("POST", "/orgs", body={"username": "lab", "description": "d"}),
        ),
        ("list_repos", {"org": "lab"}, GiteaRequest("GET", "/orgs/lab/repos")),
        ("list_repos", {}, GiteaRequest("GET", "/repos/search", query={"q": ""}, unwrap="data")),
        ("get_version", {}, GiteaRequest("GET", "/version")),
    ],
)
def test_every_action_maps_to_its_endpoint(action, params, expected):
    assert build_request(action, params) == expected


def test_the_eight_actions():
    assert sorted(ACTIONS) == sorted(
        [
            "create_issue",
            "list_issues",
            "close_issue",
            "add_comment",
            "create_repo",
            "create_org",
            "list_repos",
            "get_version",
        ]
    )


@pytest.mark.parametrize(
    ("action", "params", "missing"),
    [
        ("create_issue", {"owner": "o", "title": "t"}, "repo"),
        ("create_issue", {"repo": "r", "title": "t"}, "owner"),
        ("create_issue", REPO, "title"),
        ("list_issues", {"owner": "o"}, "repo"),
        ("close_issue", REPO, "issue_number"),
        ("add_comment", {**REPO, "issue_number": 1}, "body"),
        ("add_comment", {**REPO, "body": "x"}, "issue_number"),
        ("create_repo", {"org": "lab"}, "name"),
        ("create_org", {"description": "d"}, "name"),
    ],
)
def test_missing_params(action, params, missing):
    with pytest.raises(ActionError) as exc:
        build_request(action, params)
    assert exc.value.code == "GITEA_MISSING_PARAM"
    assert exc.value.detail == f"Missing required parameter: '{missing}'"


@pytest.mark.parametrize(
    "params",
    [
        {**REPO, "issue_number": "x"},
        {**REPO, "issue_number": 0},
        {**REPO, "issue_number": True},
    ],
)
def test_bad_issue_numbers(params):
    with pytest.raises(ActionError) as exc:
        build_request("close_issue", params)
    assert exc.value.code == "GITEA_MISSING_PARAM"


def test_unknown_action_bad_params_and_path_safety():
    with pytest.raises(ActionError) as exc:
        build_request("delete_everything", {})
    assert exc.value.as_error() == {
        "code": "GITEA_UNKNOWN_ACTION",
        "detail": "Unknown gitea action: delete_everything",
    }
    with pytest.raises(ActionError) as exc:
        build_request("get_version", ["not", "an", "object"])
    assert exc.value.code == "GITEA_MISSING_PARAM"
    with pytest.raises(ActionError):
        build_request("list_issues", {**REPO, "state": "weird"})
    req = build_request("list_issues", {"owner": "../admin", "repo": "a/b"})
    assert req.path == "/repos/..%2Fadmin/a%2Fb/issues"
    assert api_error(404, "x") == {"code": "GITEA_API_ERROR", "detail": "x", "status": 404}
    assert api_error(None, "x") == {"code": "GITEA_API_ERROR", "detail": "x"}
