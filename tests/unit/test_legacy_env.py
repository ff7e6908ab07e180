"""The published 0.1.0 variable names (OROCHI_HOST, OROCHI_PORT, OROCHI_DASHBOARD_PORT,
OROCHI_TOKEN, OROCHI_DB, GITEA_URL, GITEA_TOKEN): honoured while the SCITEX_OROCHI_* name
is unset, the new name winning, with one deprecation warning per name."""

from __future__ import annotations

import logging

import pytest

from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.logs import setup_logging

LEGACY = {
    "OROCHI_HOST": "127.0.0.2",
    "OROCHI_PORT": "9600",
    "OROCHI_DASHBOARD_PORT": "8600",
    "OROCHI_TOKEN": "shared-secret",
    "OROCHI_DB": "/tmp/legacy/orochi.db",
    "GITEA_URL": "http://127.0.0.1:3000",
    "GITEA_TOKEN": "gitea-secret",
}


def test_the_0_1_0_names_are_read_when_the_new_ones_are_unset(tmp_path):
    cfg = Config.from_env({**LEGACY, "SCITEX_OROCHI_DATA_DIR": str(tmp_path)})
    assert (cfg.host, cfg.ws.port, cfg.http.port) == ("127.0.0.2", 9600, 8600)
    assert cfg.auth.admin_token == "shared-secret"
    assert cfg.db.url == "sqlite:////tmp/legacy/orochi.db"
    assert (cfg.gitea.url, cfg.gitea.token) == ("http://127.0.0.1:3000", "gitea-secret")
    assert set(cfg.legacy_env) == set(LEGACY)


def test_the_new_name_wins_and_is_not_reported(tmp_path):
    cfg = Config.from_env(
        {
            **LEGACY,
            "SCITEX_OROCHI_PORT": "9700",
            "SCITEX_OROCHI_TOKEN": "new",
            "SCITEX_OROCHI_GITEA_URL": "http://127.0.0.1:4000",
            "SCITEX_OROCHI_DATA_DIR": str(tmp_path),
        }
    )
    assert cfg.ws.port == 9700 and cfg.auth.admin_token == "new"
    assert cfg.gitea.url == "http://127.0.0.1:4000"
    assert "OROCHI_PORT" not in cfg.legacy_env and "GITEA_URL" not in cfg.legacy_env
    assert "OROCHI_TOKEN" not in cfg.legacy_env and "OROCHI_HOST" in cfg.legacy_env
    # the admin token name outranks the 0.1.0 shared token too
    cfg = Config.from_env(
        {
            "OROCHI_TOKEN": "old",
            "SCITEX_OROCHI_ADMIN_TOKEN": "admin",
            "SCITEX_OROCHI_DATA_DIR": str(tmp_path),
        }
    )
    assert cfg.auth.admin_token == "admin" and cfg.legacy_env == ()


def test_one_notice_per_name_per_process(tmp_path, capsys):
    """Each process builds its Config once and hands `legacy_env` to `setup_logging`."""
    env = {"OROCHI_DASHBOARD_PORT": "8601", "SCITEX_OROCHI_DATA_DIR": str(tmp_path)}
    first, again = Config.from_env(env), Config.from_env(env)
    assert first.legacy_env == again.legacy_env == ("OROCHI_DASHBOARD_PORT",)
    assert first.sources["http.port"] == "OROCHI_DASHBOARD_PORT"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("INFO", "unit", [*first.legacy_env, *again.legacy_env])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    notices = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert len(notices) == 1
    assert "OROCHI_DASHBOARD_PORT is deprecated" in notices[0]
    assert "SCITEX_OROCHI_DASHBOARD_PORT" in notices[0]


def test_a_bad_legacy_value_names_the_variable_it_came_from(tmp_path):
    with pytest.raises(ConfigError, match="OROCHI_PORT='x' is not an integer") as info:
        Config.from_env({"OROCHI_PORT": "x", "SCITEX_OROCHI_DATA_DIR": str(tmp_path)})
    assert "SCITEX_OROCHI_PORT" not in str(info.value)
