"""`serve`'s options applied before derived paths, in-process (click's CliRunner; serve
is stopped at `prepare`: nothing is started)."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from scitex_orochi.cli import main
from scitex_orochi.hub import supervise
from scitex_orochi.hub.errors import SuperviseError


def run(*args: str, env: dict[str, str] | None = None, home: Path | None = None):
    """The CLI with none of this process's hub variables, and `home` as XDG_DATA_HOME."""
    clean: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("SCITEX_OROCHI_", "OROCHI_", "GITEA_"))
    }
    clean.update({"NO_COLOR": "1", "XDG_DATA_HOME": str(home or "/nonexistent")})
    return CliRunner().invoke(main, list(args), env={**clean, **(env or {})})


def test_serve_applies_its_options_before_the_derived_paths(tmp_path, monkeypatch):
    """With a data dir too long for unix sockets in the environment, `serve --data-dir`
    used to fail on the environment's paths before its option was applied."""
    seen = []

    def stop_at_prepare(cfg, base_env=None):
        seen.append(cfg)
        raise SuperviseError("stopped by the test")

    monkeypatch.setattr(supervise, "prepare", stop_at_prepare)
    deep = tmp_path / ("d" * 100)
    target = tmp_path / "short"
    result = run(
        "--dashboard-port", "8700", "serve", "--data-dir", str(target), "--ws-procs", "2", home=deep
    )
    assert "stopped by the test" in result.output, result.output
    cfg = seen[0]
    assert cfg.data_dir == target and cfg.run_dir == target / "run"
    assert cfg.bus.in_endpoint == f"ipc://{target}/run/bus-in.sock"
    assert cfg.bus.out_endpoint == f"ipc://{target}/run/bus-out.sock"
    assert cfg.db.url == f"sqlite:///{target}/orochi.db"
    assert (cfg.http.media_root, cfg.log.dir) == (target / "media", target / "logs")
    assert cfg.bus.keys_dir == target / "bus-keys"
    assert cfg.bus.server_key.parent == cfg.bus.client_key.parent == target / "bus-keys"
    assert (cfg.ws.procs, cfg.http.port, cfg.ws.port) == (2, 8700, 9559)


def test_serve_exits_2_on_a_bad_configuration(tmp_path):
    result = run("serve", env={"SCITEX_OROCHI_REAP_AFTER_S": "0"}, home=tmp_path)
    assert result.exit_code == 2
    assert "error: SCITEX_OROCHI_REAP_AFTER_S=0.0 must be >= 0.1" in result.stderr
