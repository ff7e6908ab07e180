"""The settings table and the grouped Config built from it: one field per row, derived
paths that follow the data dir however it is given, every minimum enforced by name,
secrets masked, and a child's environment that rebuilds the same config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scitex_orochi.hub.config import GROUP_TYPES, Config, ConfigError
from scitex_orochi.hub.settings import BY_KEY, HUB, INT, SETTINGS
from scitex_orochi.hub.settings_load import unknown_variables
from scitex_orochi.hub.supervise import hub_env

SECRETS = {
    "SCITEX_OROCHI_ADMIN_TOKEN": "admin-secret-0123456789abcdef",
    "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN": "123456:telegram-secret-abcdefghij",
    "SCITEX_OROCHI_TELEGRAM_WEBHOOK_SECRET": "hook-secret-0123456789",
    "SCITEX_OROCHI_GITEA_TOKEN": "gitea-secret-0123456789abc",
    "SCITEX_OROCHI_DB": "postgresql://orochi:db-password@10.0.0.5/orochi",
}


def env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"SCITEX_OROCHI_DATA_DIR": str(tmp_path / "data"), **more}


# ---- the table -------------------------------------------------------------------------
def test_each_row_is_one_field_of_its_group_and_each_field_one_row():
    for group, kind in GROUP_TYPES.items():
        fields = {f.name for f in dataclasses.fields(kind)}
        assert fields == {s.name for s in SETTINGS if s.group == group}, group
    top = {f.name for f in dataclasses.fields(Config) if f.name not in GROUP_TYPES}
    assert top - {"legacy_env", "sources", "environ", "overrides"} == {
        s.name for s in SETTINGS if s.group == HUB
    }
    variables = [n for s in SETTINGS for n in s.variables if n != "TOKEN"]
    assert len(variables) == len(set(variables)), "a variable names two settings"
    assert len(BY_KEY) == len(SETTINGS)


def test_the_defaults_need_no_environment():
    cfg = Config.load({"XDG_DATA_HOME": "/srv/share"})
    assert cfg.data_dir == Path("/srv/share/scitex-orochi")
    assert (cfg.ws.port, cfg.http.port, cfg.ws.procs, cfg.log.level) == (9559, 8559, 1, "INFO")
    assert cfg.presence.expiry_s == cfg.presence.snapshot_s * 3
    assert not cfg.bus.curve and cfg.auth.admin_token is None
    assert set(cfg.sources.values()) == {"default", "derived"}


# ---- derived values follow the data dir --------------------------------------------------
def under(cfg: Config, root: Path) -> dict[str, bool]:
    paths = {
        "run_dir": cfg.run_dir,
        "bus.in": cfg.bus.in_endpoint[len("ipc://") :],
        "bus.out": cfg.bus.out_endpoint[len("ipc://") :],
        "db": cfg.db.url[len("sqlite:///") :],
        "media": cfg.http.media_root,
        "logs": cfg.log.dir,
        "keys": cfg.bus.keys_dir,
        "server_key": cfg.bus.server_key,
        "client_key": cfg.bus.client_key,
        "admin_token_file": cfg.admin_token_file,
    }
    return {name: Path(p).is_relative_to(root) for name, p in paths.items()}


def test_derived_paths_follow_the_data_dir_from_the_environment(tmp_path):
    cfg = Config.load(env(tmp_path))
    assert all(under(cfg, tmp_path / "data").values()), under(cfg, tmp_path / "data")
    assert (
        cfg.sources["run_dir"] == "derived" and cfg.sources["data_dir"] == "SCITEX_OROCHI_DATA_DIR"
    )


def test_derived_paths_follow_an_override_of_the_data_dir(tmp_path):
    """Overrides (the command line's) come before derived values: none stays under the
    data dir of the environment."""
    other = tmp_path / "other"
    cfg = Config.load(env(tmp_path), {"data_dir": other})
    assert all(under(cfg, other).values()), under(cfg, other)
    assert cfg.sources["data_dir"] == "override"
    again = Config.load(env(tmp_path)).with_(data_dir=str(other))
    assert again == cfg


def test_a_variable_set_explicitly_wins_over_a_derived_value(tmp_path):
    run = tmp_path / "r"
    cfg = Config.load(
        env(
            tmp_path, SCITEX_OROCHI_RUN_DIR=str(run), SCITEX_OROCHI_BUS_KEYS_DIR=str(tmp_path / "k")
        ),
        {"data_dir": tmp_path / "other"},
    )
    assert cfg.run_dir == run and cfg.bus.in_endpoint == f"ipc://{run}/bus-in.sock"
    assert cfg.bus.server_key == tmp_path / "k" / "server.key"
    assert cfg.http.media_root == tmp_path / "other" / "media"


def test_overrides_by_group_or_by_key_and_typed_or_as_text(tmp_path):
    base = Config.load(env(tmp_path))
    assert base.with_(ws={"port": 0}).ws.port == 0
    assert base.with_({"ws.port": "0"}).ws.port == 0
    assert base.with_(ws={"ping_interval_s": 5}).ws.ping_interval_s == 5.0
    assert base.with_({"http.allowed_hosts": ["a"]}).http.allowed_hosts == ("a",)
    with pytest.raises(ConfigError, match="no such setting: ws.nope"):
        base.with_(ws={"nope": 1})
    with pytest.raises(ConfigError, match=r"ws.procs \(override\)=0 must be >= 1"):
        base.with_(ws={"procs": 0})
    with pytest.raises(ConfigError, match=r"ws.port \(override\)='x' is not an integer"):
        base.with_(ws={"port": "x"})
    with pytest.raises(ConfigError, match=r"1.5 is of the wrong type \(wanted: integer\)"):
        base.with_(ws={"port": 1.5})


# ---- every value checked, by its variable's name ---------------------------------------
BOUNDED = [s for s in SETTINGS if s.minimum is not None]


@pytest.mark.parametrize("setting", BOUNDED, ids=[s.env for s in BOUNDED])
def test_every_minimum_is_enforced_naming_the_variable(setting, tmp_path):
    below = setting.minimum - 1 if setting.kind is INT else setting.minimum - 0.001
    variable = f"SCITEX_OROCHI_{setting.env}"
    with pytest.raises(ConfigError, match=f"^{variable}={below} must be >= {setting.minimum}$"):
        Config.load(env(tmp_path, **{variable: str(below)}))
    assert (
        Config.load(env(tmp_path, **{variable: str(setting.minimum)})).value(setting.key)
        == setting.minimum
    )


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("SCITEX_OROCHI_WS_PROCS", "two", "SCITEX_OROCHI_WS_PROCS='two' is not an integer"),
        (
            "SCITEX_OROCHI_PING_INTERVAL_S",
            "soon",
            "SCITEX_OROCHI_PING_INTERVAL_S='soon' is not a number",
        ),
        ("SCITEX_OROCHI_LOG_STDOUT", "maybe", "SCITEX_OROCHI_LOG_STDOUT='maybe' is not a boolean"),
        ("SCITEX_OROCHI_LOG_LEVEL", "loud", "SCITEX_OROCHI_LOG_LEVEL='loud' is not a log level"),
        ("SCITEX_OROCHI_SQLITE_SYNC", "sometimes", "SCITEX_OROCHI_SQLITE_SYNC='sometimes' is not"),
        (
            "SCITEX_OROCHI_BUS_IN",
            "inproc://bus",
            "'inproc://bus' (SCITEX_OROCHI_BUS_IN) must be ipc:// or tcp://",
        ),
        (
            "SCITEX_OROCHI_RUN_DIR",
            "/tmp/" + "r" * 120,
            "too long for a unix socket; set SCITEX_OROCHI_RUN_DIR",
        ),
        ("SCITEX_OROCHI_TELEGRAM_BRIDGE_ENABLED", "true", "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_its_variable(variable, value, message, tmp_path):
    with pytest.raises(ConfigError) as info:
        Config.load(env(tmp_path, **{variable: value}))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_values_are_normalized(tmp_path):
    cfg = Config.load(
        env(
            tmp_path,
            SCITEX_OROCHI_LOG_LEVEL="debug",
            SCITEX_OROCHI_ALLOWED_HOSTS=" Hub.Example , ,.Lab.Org",
            SCITEX_OROCHI_CORS_ORIGINS="https://A.example,https://b",
            SCITEX_OROCHI_TELEGRAM_API_BASE="http://tg/",
            SCITEX_OROCHI_LOG_STDOUT="yes",
            SCITEX_OROCHI_PORT="",
        )
    )
    assert cfg.log.level == "DEBUG" and cfg.log.stdout is True
    assert cfg.http.allowed_hosts == ("hub.example", ".lab.org")
    assert cfg.http.cors_origins == ("https://A.example", "https://b")
    assert cfg.telegram.api_base == "http://tg"
    assert cfg.ws.port == 9559 and cfg.sources["ws.port"] == "default"  # empty is unset


def test_the_admin_token_reads_the_shared_token_name_last(tmp_path):
    cfg = Config.load(env(tmp_path, SCITEX_OROCHI_TOKEN="shared"))
    assert cfg.auth.admin_token == "shared"
    assert cfg.sources["auth.admin_token"] == "SCITEX_OROCHI_TOKEN"


# ---- secrets ---------------------------------------------------------------------------
def test_secrets_are_masked_in_describe_and_repr(tmp_path):
    cfg = Config.load(env(tmp_path, SCITEX_OROCHI_TELEGRAM_CHAT_ID="42", **SECRETS))
    shown = cfg.describe()
    text = repr(cfg) + repr(shown)
    for secret in ("admin-secret", "telegram-secret", "hook-secret", "gitea-secret", "db-password"):
        assert secret not in text, secret
    assert shown["auth.admin_token"] == "admi…"
    assert shown["db.url"] == "postgresql://orochi:***@10.0.0.5/orochi"
    assert (
        Config.load(env(tmp_path, SCITEX_OROCHI_ADMIN_TOKEN="short")).describe()["auth.admin_token"]
        == "***"
    )


# ---- child processes and typos -----------------------------------------------------------
def test_a_child_environment_rebuilds_the_same_config(tmp_path):
    cfg = Config.load(
        env(
            tmp_path,
            OROCHI_PORT="9600",
            SCITEX_OROCHI_CORS_ORIGINS="https://a",
            SCITEX_OROCHI_PRESENCE_SNAPSHOT_S="0.5",
            **SECRETS,
        ),
        {"data_dir": tmp_path / "x", "ws.procs": 3},
    )
    child_env = {k: v for k, v in cfg.to_env().items() if v is not None}
    child = Config.load(child_env)
    assert cfg.legacy_env == ("OROCHI_PORT",) and child.legacy_env == ()  # no second notice
    assert dataclasses.replace(child, legacy_env=cfg.legacy_env) == cfg


def test_unknown_variables_are_found_with_the_closest_name():
    found = unknown_variables(
        {
            "SCITEX_OROCHI_PORTT": "1",
            "SCITEX_OROCHI_PORT": "1",
            "SCITEX_OROCHI_AGENT": "a",
            "SCITEX_OROCHI_ZZZ": "1",
            "OTHER": "1",
        },
        also_known=("AGENT",),
    )
    assert found == [("SCITEX_OROCHI_PORTT", "SCITEX_OROCHI_PORT"), ("SCITEX_OROCHI_ZZZ", None)]


def test_the_supervised_processes_get_the_effective_config(tmp_path):
    base = {"PATH": "/bin", "OROCHI_PORT": "9600", "SCITEX_OROCHI_GITEA_TOKEN": ""}
    cfg = Config.load(base, {"data_dir": tmp_path / "x", "ws.procs": 2})
    env = hub_env(cfg, base)
    assert env["PATH"] == "/bin" and env["SCITEX_OROCHI_WS_PROCS"] == "2"
    assert (
        "SCITEX_OROCHI_GITEA_TOKEN" not in env and env["SCITEX_OROCHI_GITEA_AUTOSTART"] == "false"
    )
    child = Config.from_env(env)
    assert child.legacy_env == () and child.ws.port == 9600
    assert child.run_dir == tmp_path / "x" / "run" and child.ws.procs == 2
