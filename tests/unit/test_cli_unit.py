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
    "list-channels",
    "list-members",
    "show-status",
    "show-history",
    "doctor",
    "create-workspace",
    "list-workspaces",
    "delete-workspace",
    "list-tokens",
    "create-invite",
    "list-invites",
    "check-config",
    "serve",
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
