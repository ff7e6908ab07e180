"""The agent side's own settings (`scitex_orochi.client.settings`), read from an explicit
mapping: the 0.1.0 names while the new ones are unset, the token's order, a bad port
named by its variable."""

from __future__ import annotations

import pytest

from scitex_orochi.client.settings import client_settings


def test_nothing_set_gives_the_defaults():
    env = client_settings({})
    assert (env.host, env.port, env.token, env.agent) == (None, None, None, None)
    assert env.channels == ("#general",) and env.no_color is False and not env.legacy


def test_the_0_1_0_names_count_while_the_new_ones_are_unset():
    env = client_settings(
        {
            "OROCHI_HOST": "10.0.0.2",
            "OROCHI_PORT": "9600",
            "SCITEX_OROCHI_DASHBOARD_PORT": "8600",
            "OROCHI_DASHBOARD_PORT": "1",
            "OROCHI_TOKEN": "old",
        }
    )
    assert (env.host, env.port, env.dashboard_port, env.token) == ("10.0.0.2", 9600, 8600, "old")
    assert env.legacy_for("HOST", "PORT", "DASHBOARD_PORT", "TOKEN") == [
        "OROCHI_HOST",
        "OROCHI_PORT",
        "OROCHI_TOKEN",
    ]
    assert env.legacy_for("PORT") == ["OROCHI_PORT"]  # only what the caller used


def test_the_token_is_the_workspace_one_then_the_admin_one_then_the_0_1_0_one():
    assert (
        client_settings(
            {"SCITEX_OROCHI_TOKEN": "t", "SCITEX_OROCHI_ADMIN_TOKEN": "a", "OROCHI_TOKEN": "o"}
        ).token
        == "t"
    )
    env = client_settings({"SCITEX_OROCHI_ADMIN_TOKEN": "a", "OROCHI_TOKEN": "o"})
    assert (env.token, env.admin_token, env.legacy_for("TOKEN")) == ("a", "a", [])
    assert client_settings({"SCITEX_OROCHI_TOKEN": "", "OROCHI_TOKEN": "o"}).token == "o"


def test_agent_fields_channels_and_no_color():
    env = client_settings(
        {
            "SCITEX_OROCHI_AGENT": "me",
            "SCITEX_OROCHI_CHANNELS": " #a, ,#b",
            "SCITEX_OROCHI_ROLE": "r",
            "SCITEX_OROCHI_MODEL": "m",
            "SCITEX_OROCHI_PROJECT": "p",
            "NO_COLOR": "1",
        }
    )
    assert (env.agent, env.channels, env.role, env.model, env.project, env.no_color) == (
        "me",
        ("#a", "#b"),
        "r",
        "m",
        "p",
        True,
    )


def test_a_bad_port_names_the_variable_it_came_from():
    with pytest.raises(ValueError, match="^OROCHI_PORT='x' is not an integer$"):
        client_settings({"OROCHI_PORT": "x"})
    with pytest.raises(ValueError, match="^SCITEX_OROCHI_DASHBOARD_PORT='y' is not an integer$"):
        client_settings({"SCITEX_OROCHI_DASHBOARD_PORT": "y"})
