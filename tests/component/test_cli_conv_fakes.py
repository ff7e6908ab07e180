"""The conversation commands through click.testing against FakeHub in a thread of its own
(and its threads route over HTTP): what reaches the hub, --json output, errors and exit
codes (help, --dry-run and usage errors: tests/unit/test_cli_unit.py; the real hub:
tests/e2e/test_cli_hub.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scitex_orochi.cli import main

from support.fakehub import ThreadsApi, hub_in_thread


def run(*args, input=None):
    env = {"SCITEX_OROCHI_TOKEN": "", "SCITEX_OROCHI_ADMIN_TOKEN": "", "NO_COLOR": "1"}
    return CliRunner().invoke(main, list(args), env=env, input=input)


@pytest.fixture
def fake():
    with hub_in_thread(token="tok") as hub:
        yield hub


def as_agent(hub, *args, name="cli", input=None):
    return run("--port", str(hub.port), "--token", "tok", *args, "--name", name, input=input)


def frames(hub, type_):
    return [f for f in hub.frames if f.get("type") == type_]


def test_send_reply_to_and_show_thread(fake):
    root = json.loads(as_agent(fake, "send", "#g", "question", "--json").output)
    assert root["num"] == 1
    result = as_agent(fake, "send", "g", "answer", "--reply-to", "1", "--json")
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["reply_to"] == 1 and reply["channel"] == "#g"
    assert frames(fake, "message")[-1]["payload"]["metadata"] == {"reply_to": 1}
    human = as_agent(fake, "send", "#g", "by id", "--reply-to", root["id"])
    assert human.exit_code == 0 and f"a reply to {root['id']}" in human.output
    with ThreadsApi(fake, token="tok") as api:
        rest = ["--dashboard-port", str(api.port), "--token", "tok", "show-thread"]
        shown = run(*rest, "1")
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert len(lines) == 3 and "cli: question" in lines[0]
        assert lines[1].startswith("  ↳ ") and lines[1].endswith("cli: answer")
        assert lines[2].endswith("cli: by id")
        data = json.loads(run(*rest, "1", "--limit", "1", "--name", "cli", "--json").output)
        assert data["root"]["content"] == "question"
        assert [r["content"] for r in data["replies"]] == ["answer"]
        assert api.seen[-1] == "/api/threads/1/?limit=1&agent=cli"
        by_id = run(*rest, root["id"])
        assert by_id.exit_code == 2 and "number" in by_id.output
        unknown = run(*rest, "424242")
        assert unknown.exit_code == 5 and "error:" in unknown.output


def test_react_edit_delete_and_their_errors(fake):
    as_agent(fake, "send", "#g", "typo", name="owner")
    added = as_agent(fake, "react", "1", "👍", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output) | {"ref": None} == {
        "emoji": "👍",
        "action": "add",
        "ref": None,
        "outcome": "added",
        "seq": 2,
        "num": 1,
    }
    assert "(existed)" in as_agent(fake, "react", "1", "👍").output
    removed = as_agent(fake, "react", "1", "👍", "--remove")
    assert removed.output.startswith("removed 👍 from message 1 (removed, seq 3)")
    forbidden = as_agent(fake, "edit-message", "1", "not mine")
    assert forbidden.exit_code == 1 and "FORBIDDEN" in forbidden.output
    edited = as_agent(fake, "edit-message", "1", "-", "--json", name="owner", input="fixed")
    assert json.loads(edited.output)["outcome"] == "edited"
    assert frames(fake, "edit")[-1]["payload"] == {"message": 1, "content": "fixed"}
    deleted = as_agent(fake, "delete-message", "1", name="owner")
    assert deleted.exit_code == 0 and deleted.output.startswith("deleted message 1 (deleted")
    again = as_agent(fake, "edit-message", "1", "late", name="owner")
    assert again.exit_code == 1 and "MESSAGE_DELETED" in again.output
    unknown = as_agent(fake, "delete-message", "no-such-id")
    assert unknown.exit_code == 5 and "UNKNOWN_MESSAGE" in unknown.output


def test_send_dm_and_search(fake):
    sent = as_agent(fake, "send-dm", "bob", "deploy at noon", "--json", name="amy")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["channel"] == "dm:agent:amy|agent:bob"
    assert frames(fake, "message")[-1]["sender"] == "amy"
    as_agent(fake, "send", "#ops", "deploy failed", name="ci")
    found = json.loads(as_agent(fake, "search", "deploy", "--json").output)
    assert [m["content"] for m in found] == ["deploy failed", "deploy at noon"]
    only = as_agent(fake, "search", "deploy", "--channel", "ops", "--sender", "ci", "--limit", "3")
    assert only.exit_code == 0 and only.output.count("\n") == 1 and "#ops" in only.output
    assert frames(fake, "query")[-1]["payload"] == {
        "search": "deploy",
        "channel": "#ops",
        "sender": "ci",
        "limit": 3,
    }
    none = as_agent(fake, "search", "nothing here")
    assert none.exit_code == 0 and "no messages match 'nothing here'" in none.output


def test_bad_token_and_no_hub_exit_codes(fake):
    refused = run("--port", str(fake.port), "--token", "nope", "react", "1", "👍")
    assert refused.exit_code == 4 and "refused the token" in refused.output
    nothing = run("--port", "1", "search", "x")
    assert nothing.exit_code == 3 and "ws://127.0.0.1:1/" in nothing.output
