"""The Gitea worker's API client against the fake Gitea (support.fake_gitea, an aiohttp
server in a thread on port 0): requests, error mapping, timeouts, no token in any detail or
log line (the pure action table is tests/unit/test_gitea_unit.py)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bridges.gitea.actions import build_request
from bridges.gitea.api import GiteaApi, GiteaApiError

from support.fake_gitea import FakeGitea

REPO = {"owner": "lab", "repo": "orochi"}


@pytest.fixture
def fake_gitea():
    fake = FakeGitea().start()
    fake.seed_org("lab")
    fake.seed_repo("lab", "orochi")
    yield fake
    fake.stop()


async def test_api_client_against_fake(fake_gitea, caplog):
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        api = GiteaApi(session, fake_gitea.url, fake_gitea.token, timeout_s=5)
        issue = await api.call(build_request("create_issue", {**REPO, "title": "t"}))
        assert issue["number"] == 1 and issue["state"] == "open"
        assert fake_gitea.requests[-1]["authorization"] == f"token {fake_gitea.token}"
        repos = await api.call(build_request("list_repos", {}))
        assert [r["full_name"] for r in repos] == ["lab/orochi"]
        with pytest.raises(GiteaApiError) as exc:
            await api.call(build_request("list_issues", {"owner": "lab", "repo": "nope"}))
        assert exc.value.status == 404 and "couldn't be found" in exc.value.detail
        fake_gitea.fail_next(500)
        with pytest.raises(GiteaApiError) as exc:
            await api.call(build_request("get_version", {}))
        assert exc.value.status == 500
        wrong = GiteaApi(session, fake_gitea.url, "wrong", timeout_s=5)
        with pytest.raises(GiteaApiError) as exc:
            await wrong.call(build_request("get_version", {}))
        assert exc.value.status == 401
        down = GiteaApi(session, "http://127.0.0.1:9", fake_gitea.token, timeout_s=5)
        with pytest.raises(GiteaApiError) as exc:
            await down.call(build_request("get_version", {}))
        assert exc.value.status is None and "cannot reach Gitea" in exc.value.detail
        fake_gitea.delay_s = 0.5
        slow = GiteaApi(session, fake_gitea.url, fake_gitea.token, timeout_s=0.1)
        with pytest.raises(GiteaApiError) as exc:
            await slow.call(build_request("get_version", {}))
        assert exc.value.status is None and "did not answer" in exc.value.detail
    assert fake_gitea.token not in caplog.text


async def test_api_error_detail_never_echoes_the_token(fake_gitea):
    fake_gitea.fail_next(400, {"message": f"bad token {fake_gitea.token}"})
    async with aiohttp.ClientSession() as session:
        api = GiteaApi(session, fake_gitea.url, fake_gitea.token, timeout_s=5)
        with pytest.raises(GiteaApiError) as exc:
            await api.call(build_request("get_version", {}))
    assert fake_gitea.token not in exc.value.detail and "<token>" in exc.value.detail
