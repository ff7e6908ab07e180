"""`scitex-orochi check-config` in-process (click's CliRunner): every setting by group with
its source, secrets masked, --json, exit 2 naming the variable, warnings for typos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from scitex_orochi.cli import main
from scitex_orochi.hub.settings import SETTINGS

SECRET = "admin-secret-0123456789abcdef"


def run(*args: str, env: dict[str, str] | None = None, home: Path | None = None):
    """The CLI with none of this process's hub variables, and `home` as XDG_DATA_HOME."""
    clean: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("SCITEX_OROCHI_", "OROCHI_", "GITEA_"))
    }
    clean.update({"NO_COLOR": "1", "XDG_DATA_HOME": str(home or "/nonexistent")})
    return CliRunner().invoke(main, list(args), env={**clean, **(env or {})})


def settings_of(result) -> dict:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    return data["settings"]


def test_every_setting_is_shown_by_group_with_its_source(tmp_path):
    result = run(
        "--port",
        "9700",
        "check-config",
        env={"SCITEX_OROCHI_WS_PROCS": "3", "SCITEX_OROCHI_ADMIN_TOKEN": SECRET},
        home=tmp_path,
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    for setting in SETTINGS:
        assert f"  {setting.name} " in out, setting.key
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["procs"].split()[-1] == "SCITEX_OROCHI_WS_PROCS"
    assert "derived: <data_dir>/run" in lines["run_dir"]
    assert SECRET not in out and "admi…" in lines["admin_token"]
    assert [line for line in out.splitlines() if not line.startswith(" ")][:3] == [
        "hub",
        "auth",
        "bus",
    ]
    assert out.rstrip().endswith("the rest defaults)")


def test_json_gives_value_source_and_variable_and_masks_secrets(tmp_path):
    settings = settings_of(
        run(
            "check-config",
            "--json",
            home=tmp_path,
            env={
                "OROCHI_PORT": "9600",
                "SCITEX_OROCHI_GITEA_TOKEN": "gitea-secret-0123456789",
                "SCITEX_OROCHI_DB": "postgresql://orochi:db-password@db/orochi",
            },
        )
    )
    assert settings["ws"]["port"] == {
        "value": 9600,
        "source": "OROCHI_PORT",
        "variable": "SCITEX_OROCHI_PORT",
    }
    assert settings["hub"]["data_dir"]["value"] == str(tmp_path / "scitex-orochi")
    assert settings["gitea"]["token"]["value"] == "gite…"
    assert settings["db"]["url"]["value"] == "postgresql://orochi:***@db/orochi"
    assert settings["http"]["cors_origins"]["value"] == []


def test_data_dir_on_the_command_line_moves_every_derived_path(tmp_path):
    target = tmp_path / "x"
    settings = settings_of(run("check-config", "--data-dir", str(target), "--json", home=tmp_path))
    assert settings["hub"]["data_dir"] == {
        "value": str(target),
        "source": "override",
        "variable": "SCITEX_OROCHI_DATA_DIR",
    }
    derived = [
        settings["hub"]["run_dir"],
        settings["bus"]["in_endpoint"],
        settings["bus"]["keys_dir"],
        settings["bus"]["client_key"],
        settings["db"]["url"],
        settings["http"]["media_root"],
        settings["log"]["dir"],
    ]
    for item in derived:
        assert str(target) in item["value"] and item["source"] == "derived", item


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SCITEX_OROCHI_WS_PROCS": "x"}, "SCITEX_OROCHI_WS_PROCS='x' is not an integer"),
        (
            {"SCITEX_OROCHI_MAX_FRAME_BYTES": "10"},
            "SCITEX_OROCHI_MAX_FRAME_BYTES=10 must be >= 1024",
        ),
        ({"SCITEX_OROCHI_LOG_LEVEL": "loud"}, "SCITEX_OROCHI_LOG_LEVEL='loud' is not a log level"),
        ({"SCITEX_OROCHI_TELEGRAM_BRIDGE_ENABLED": "1"}, "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN"),
        (
            {"SCITEX_OROCHI_BUS_OUT": "udp://x:1"},
            "(SCITEX_OROCHI_BUS_OUT) must be ipc:// or tcp://",
        ),
    ],
)
def test_an_invalid_configuration_exits_2_with_one_line_naming_the_variable(env, message, tmp_path):
    result = run("check-config", env=env, home=tmp_path)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    as_json = run("check-config", "--json", env=env, home=tmp_path)
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {"ok": False, "error": errors[0][len("error: ") :]}


def test_unknown_and_0_1_0_variables_are_warned_about_not_refused(tmp_path):
    result = run(
        "check-config",
        home=tmp_path,
        env={
            "SCITEX_OROCHI_PORTT": "1",
            "SCITEX_OROCHI_AGENT": "me",
            "OROCHI_DB": str(tmp_path / "o.db"),
        },
    )
    assert result.exit_code == 0
    assert (
        "warning: SCITEX_OROCHI_PORTT is not a setting (did you mean SCITEX_OROCHI_PORT?)"
    ) in result.stderr
    assert "SCITEX_OROCHI_AGENT" not in result.stderr  # the agent client's
    assert result.stderr.count("OROCHI_DB is deprecated") == 1
    assert "OROCHI_DB (deprecated)" in result.stdout


def test_help_has_examples_and_exit_codes():
    result = run("check-config", "-h")
    assert result.exit_code == 0
    assert "scitex-orochi check-config --data-dir" in result.output
    assert "Exit codes" in result.output
