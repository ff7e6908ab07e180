"""Files the hub writes, one call at a time: a database outside the data dir is tightened but
not its directory; a regular file as serve's stdout is made append-only."""

from __future__ import annotations

import os
import stat

from scitex_orochi.hub.files import tighten_hub_files


def test_a_database_outside_the_data_dir_is_tightened_but_not_its_directory(tmp_path):
    shared = tmp_path / "srv"
    shared.mkdir()
    shared.chmod(0o755)
    db = shared / "orochi.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    tighten_hub_files([], [db])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_a_regular_file_stdout_is_made_append_only(tmp_path):
    """supervisord's own lines must not overwrite program output in `serve > hub.log`."""
    import fcntl

    from scitex_orochi.hub.supervise import _append_mode

    with open(tmp_path / "hub.log", "wb") as log:
        assert not fcntl.fcntl(log.fileno(), fcntl.F_GETFL) & os.O_APPEND
        _append_mode(log)
        assert fcntl.fcntl(log.fileno(), fcntl.F_GETFL) & os.O_APPEND
