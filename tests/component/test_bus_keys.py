"""Bus keys and configuration in this process, no hub: `prepare` makes and keeps the CURVE
keys with strict modes (and a migrated SQLite file beside them), refuses an incomplete keys
dir, a remote host without keys fails naming the file, tcp without keys is refused while
ipc needs none, and the `bus-keys` command through click.testing (the bus over tcp on the
real hub is tests/e2e/test_bus_curve.py)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner
from zmq.auth import load_certificate

from scitex_orochi.cli import main as cli_main
from scitex_orochi.hub.bus import BusError, SyncBus, new_origin
from scitex_orochi.hub.bus_keys import ensure_keys, load_client, load_server
from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.supervise import prepare
from scitex_orochi.hub.testing import free_port


def tcp_env() -> dict[str, str]:
    return {
        "SCITEX_OROCHI_BUS_IN": f"tcp://127.0.0.1:{free_port()}",
        "SCITEX_OROCHI_BUS_OUT": f"tcp://127.0.0.1:{free_port()}",
    }


def tmp_config(tmp_path: Path, **env: str) -> Config:
    return Config.from_env(
        {
            "SCITEX_OROCHI_DATA_DIR": str(tmp_path / "data"),
            "SCITEX_OROCHI_RUN_DIR": str(tmp_path / "run"),
            **env,
        }
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_prepare_makes_keys_with_strict_modes_and_keeps_them(tmp_path, umask):
    cfg = tmp_config(tmp_path, **tcp_env())
    old = os.umask(umask)
    try:
        prepare(cfg)
        keys = cfg.bus.keys_dir
        assert keys == cfg.data_dir / "bus-keys"
        assert mode(keys) == 0o700
        assert mode(keys / "authorized") == 0o700 and mode(keys / "clients") == 0o700
        assert mode(keys / "server.key_secret") == 0o600
        assert mode(keys / "client.key_secret") == 0o600
        assert mode(keys / "server.key") == 0o600  # public, yet private like the rest
        server, client = load_server(cfg), load_client(cfg)
        assert client.server_public == server.public
        assert zmq.curve_public(client.secret) == client.public
        assert load_certificate(keys / "authorized" / "client.key")[0] == client.public
        before = {str(p.relative_to(keys)): p.read_bytes() for p in keys.rglob("*") if p.is_file()}
        prepare(cfg)  # a restart keeps every key
        after = {str(p.relative_to(keys)): p.read_bytes() for p in keys.rglob("*") if p.is_file()}
        assert after == before
        assert [p.name for p in keys.parent.iterdir() if p.name.startswith(".")] == []
    finally:
        os.umask(old)


def test_prepare_tightens_loose_modes(tmp_path):
    cfg = tmp_config(tmp_path)
    ensure_keys(cfg.bus.keys_dir)
    os.chmod(cfg.bus.keys_dir, 0o755)
    os.chmod(cfg.bus.client_key, 0o644)
    prepare(cfg)
    assert mode(cfg.bus.keys_dir) == 0o700 and mode(cfg.bus.client_key) == 0o600


def test_incomplete_keys_dir_is_refused(tmp_path):
    cfg = tmp_config(tmp_path)
    ensure_keys(cfg.bus.keys_dir)
    (cfg.bus.keys_dir / "server.key_secret").unlink()
    with pytest.raises(ConfigError, match="server.key_secret"):
        prepare(cfg)


def test_remote_host_without_keys_fails_naming_the_file(tmp_path):
    cfg = tmp_config(tmp_path, **tcp_env())  # a host where `serve` never ran
    with pytest.raises(ConfigError, match="server.key") as err:
        SyncBus.from_config(cfg, new_origin("remote"))
    assert "copy server.key" in str(err.value)
    ensure_keys(cfg.bus.keys_dir)
    cfg.bus.client_key.unlink()
    with pytest.raises(ConfigError, match="bus-keys add-client") as err:
        SyncBus.from_config(cfg, new_origin("remote"))
    assert str(cfg.bus.client_key) in str(err.value)


def test_tcp_without_keys_is_refused_and_ipc_is_untouched(tmp_path):
    with pytest.raises(BusError, match="needs CURVE keys"):
        SyncBus("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", new_origin("plain"))
    cfg = tmp_config(tmp_path)
    assert not cfg.bus.curve
    bus = SyncBus.from_config(cfg, new_origin("ipc"))  # no keys needed, none loaded
    try:
        assert bus._curve is None and bus._out.monitor is None and bus._sub_monitor is None
        assert bus._sub.getsockopt(zmq.MECHANISM) == zmq.NULL
    finally:
        bus.close()
    with pytest.raises(ConfigError, match="must be ipc:// or tcp://"):
        tmp_config(tmp_path, SCITEX_OROCHI_BUS_IN="ws://127.0.0.1:5555")


def test_bus_keys_command_shows_and_dry_run_changes_nothing(tmp_path):
    cfg = tmp_config(tmp_path)
    env = {"SCITEX_OROCHI_DATA_DIR": str(cfg.data_dir), "SCITEX_OROCHI_RUN_DIR": str(cfg.run_dir)}
    runner = CliRunner()
    missing = runner.invoke(cli_main, ["bus-keys"], env=env)
    assert missing.exit_code == 5 and "scitex-orochi serve" in missing.output
    ensure_keys(cfg.bus.keys_dir)
    shown = json.loads(runner.invoke(cli_main, ["bus-keys", "--json"], env=env).output)
    assert [c["name"] for c in shown["authorized"]] == ["client"]
    assert shown["server_key"] == str(cfg.bus.server_key) and shown["curve"] is False
    dry = runner.invoke(cli_main, ["bus-keys", "add-client", "h2", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "[dry-run]" in dry.output
    assert not (cfg.bus.authorized_dir / "h2.key").exists()
    added = runner.invoke(cli_main, ["bus-keys", "add-client", "h2"], env=env)
    assert added.exit_code == 0, added.output
    again = runner.invoke(cli_main, ["bus-keys", "add-client", "h2"], env=env)
    assert again.exit_code != 0 and "already authorized" in again.output
    removed = runner.invoke(cli_main, ["bus-keys", "remove-client", "h2"], env=env)
    assert removed.exit_code == 0 and not (cfg.bus.authorized_dir / "h2.key").exists()
    own = runner.invoke(cli_main, ["bus-keys", "remove-client", "client"], env=env)
    assert own.exit_code == 2 and (cfg.bus.authorized_dir / "client.key").exists()
