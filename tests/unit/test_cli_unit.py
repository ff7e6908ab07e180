"""The CLI through click.testing with nothing to connect to: help and examples, --dry-run,
exit codes per error, output formatting (network commands are
tests/component/test_cli_fakes.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from scitex_orochi.cli import main
from scitex_orochi.cli.output import (
    EXIT_AUTH,
    EXIT_CONNECT,
    EXIT_NOT_FOUND,
    exit_code_for,
    paint,
    relative_time,
    table,
)
from scitex_orochi.client.errors import (
    AuthError,
    ConnectionFailed,
    NotFound,
    RequestTimeout,
    ServerError,
)

COMMANDS = [
    "send",
    "login",
    "join",
    "list-agents",
    "health",
    "kick",
    "forget",
    "purge-stale",
    "list-channels",
    "list-members",
    "show-status",
    "show-history",
    "react",
    "edit-message",
    "delete-message",
    "send-dm",
    "search",
    "show-thread",
    "doctor",
    "create-workspace",
    "list-workspaces",
    "delete-workspace",
    "list-tokens",
    "create-invite",
    "list-invites",
    "check-config",
    "serve",
    "init",
    "deploy",
    "launch",
]
NOW = datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC)


def run(*args, env=None, input=None):
    base = {"SCITEX_OROCHI_TOKEN": "", "SCITEX_OROCHI_ADMIN_TOKEN": "", "NO_COLOR": "1"}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})}, input=input)


# ---- output ----------------------------------------------------------------------
def test_relative_time():
    assert relative_time((NOW - timedelta(seconds=2)).isoformat(), NOW) == "just now"
    assert relative_time((NOW - timedelta(seconds=42)).isoformat(), NOW) == "42s ago"
    assert relative_time((NOW - timedelta(minutes=5, seconds=3)).isoformat(), NOW) == "5m ago"
    assert relative_time((NOW - timedelta(hours=3)).timestamp(), NOW) == "3h ago"
    assert relative_time((NOW + timedelta(hours=2)).timestamp(), NOW) == "in 2h"
    assert relative_time((NOW - timedelta(days=90)).isoformat(), NOW) == "2023-10-17"
    assert relative_time(None, NOW) == "-"


def test_table_aligns_columns_and_paints_only_when_asked():
    out = table(
        [{"name": "a", "n": 1}, {"name": "longer", "n": None}],
        [("name", "name"), ("n", "count")],
        colour=False,
    )
    assert out.splitlines() == ["NAME    COUNT", "a       1", "longer  -"]
    assert "\x1b[" in paint("x", "red", True) and paint("x", "red", False) == "x"


def test_exit_codes_per_error():
    assert exit_code_for(AuthError("x")) == EXIT_AUTH == 4
    assert exit_code_for(ConnectionFailed("x")) == EXIT_CONNECT == 3
    assert exit_code_for(NotFound("NOT_FOUND")) == EXIT_NOT_FOUND == 5
    assert exit_code_for(ServerError("HTTP_500")) == 1
    assert exit_code_for(RequestTimeout("x")) == 6


# ---- help, version, dry runs -----------------------------------------------------------
def test_version_and_every_command_listed():
    result = run("--version")
    assert result.exit_code == 0 and "scitex-orochi" in result.output
    listing = run("-h").output
    for name in COMMANDS:
        assert name in listing


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples_and_exit_codes(command):
    result = run(command, "-h")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and f"scitex-orochi {command}" in result.output.replace(
        "--host 10.0.0.5 ", ""
    )
    assert "Exit codes" in result.output or "Exit code" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["send", "general", "hi", "--dry-run"],
        ["send", "general", "hi", "--reply-to", "12", "--dry-run"],
        ["react", "12", "👍", "--dry-run"],
        ["react", "msg-id", "👍", "--remove", "--dry-run"],
        ["edit-message", "12", "new text", "--dry-run"],
        ["delete-message", "12", "--dry-run"],
        ["send-dm", "bob", "hi", "--name", "amy", "--dry-run"],
        ["join", "#alerts", "--dry-run"],
        ["create-workspace", "lab", "--channels", "#a,b", "--dry-run"],
        ["delete-workspace", "ws_1", "--dry-run"],
        ["create-invite", "ws_1", "--max-uses", "3", "--dry-run"],
    ],
)
def test_dry_run_touches_nothing(args):
    # port 1 on loopback refuses connections: any network use would exit 3
    result = run("--port", "1", "--dashboard-port", "1", *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] is True


def test_dry_run_human_output_normalises_the_channel():
    result = run("send", "general", "hi", "--dry-run")
    assert "[dry-run] would send a message" in result.output and "#general" in result.output


def test_bad_metadata_is_a_usage_error():
    result = run("send", "#g", "x", "--metadata", "[1]", "--dry-run")
    assert result.exit_code == 2 and "JSON object" in result.output


# ---- conversations ------------------------------------------------------------------
def test_dry_runs_show_the_frames_of_conversation_commands():
    def dry(*args):
        result = run("--port", "1", *args, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    reply = dry("send", "#g", "on it", "--reply-to", "42", "--metadata", '{"k": 1}')
    assert reply["metadata"] == {"k": 1, "reply_to": 42}
    assert dry("send", "#g", "x", "--reply-to", "abc")["metadata"] == {"reply_to": "abc"}
    react = dry("react", "42", "👍", "--remove")
    assert (react["message"], react["emoji"], react["action"]) == (42, "👍", "remove")
    assert dry("react", "id-1", ":eyes:")["action"] == "add"
    assert dry("edit-message", "7", "new")["content"] == "new"
    assert dry("delete-message", "id-9")["message"] == "id-9"
    dm = dry("send-dm", "bob", "psst", "--name", "zed")
    assert dm["channel"] == "dm:agent:bob|agent:zed" and dm["content"] == "psst"
    assert dry("send-dm", "human:ann", "hi", "--name", "zed")["channel"] == "dm:agent:zed|human:ann"
    human = run("send-dm", "bob", "x", "--name", "zed", "--dry-run").output
    assert "[dry-run] would send a direct message" in human and "dm:agent:bob|agent:zed" in human


def test_stdin_content_for_edit_and_dm():
    result = run("edit-message", "7", "-", "--dry-run", "--json", input="from stdin")
    assert json.loads(result.output)["content"] == "from stdin"
    result = run("send-dm", "bob", "-", "--name", "a", "--dry-run", "--json", input="dm text")
    assert json.loads(result.output)["content"] == "dm text"


@pytest.mark.parametrize(
    "args, blamed",
    [
        (["react", "12", "two words"], "EMOJI"),
        (["react", "12", ""], "EMOJI"),
        (["react", "0", "👍"], "MSG"),
        (["edit-message", " ", "x"], "MSG"),
        (["send", "#g", "x", "--reply-to", ""], "--reply-to"),
        (["send-dm", "amy", "x", "--name", "amy"], "AGENT"),
        (["send-dm", "has space", "x", "--name", "amy"], "AGENT"),
        (["search", "  "], "QUERY"),
    ],
)
def test_bad_conversation_arguments_are_usage_errors(args, blamed):
    result = run("--port", "1", *args, "--dry-run" if args[0] != "search" else "--json")
    assert result.exit_code == 2, result.output
    assert blamed in result.output


def test_dm_channels_are_not_given_a_hash():
    result = run("send", "dm:agent:a|agent:b", "hi", "--dry-run", "--json")
    assert json.loads(result.output)["channel"] == "dm:agent:a|agent:b"
    assert json.loads(run("send", "general", "hi", "--dry-run", "--json").output)["channel"] == (
        "#general"
    )
