"""`prepare` (what `serve` runs before starting anything) tightens what an older version left
open in a data dir, and leaves files that are not the hub's alone (a running hub's files:
tests/e2e/test_private_files.py)."""

from __future__ import annotations

import os
from pathlib import Path

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.supervise import prepare

from support.files import wrong_modes


def test_prepare_tightens_what_an_older_version_left_open(loose_umask, tmp_path):
    data = tmp_path / "data"
    (data / "media" / "2024-01").mkdir(parents=True)
    (data / "logs").mkdir()
    for path in (data, data / "media", data / "media" / "2024-01", data / "logs"):
        path.chmod(0o755)
    for name in (
        "orochi.db",
        "orochi.db-wal",
        "admin_token",
        "media/2024-01/a.png",
        "logs/broker.log",
    ):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    (data / "admin_token").write_text("kept-admin-token\n")
    (data / "unrelated.txt").write_text("not ours")
    (data / "unrelated.txt").chmod(0o644)
    run_dir = Path(os.path.realpath("/tmp")) / f"orp{os.getpid()}"
    cfg = Config.from_env(
        {"SCITEX_OROCHI_DATA_DIR": str(data), "SCITEX_OROCHI_RUN_DIR": str(run_dir)}
    )
    try:
        prepared = prepare(cfg, {})
        assert prepared.admin_token == "kept-admin-token"
        assert wrong_modes(data) == {"unrelated.txt": ("file", "0o644")}  # not ours: left
        assert wrong_modes(run_dir) == {}
    finally:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
