"""The data dir is 0700 and every file in it 0600 (database, WAL, SHM, media, tokens, run
files, logs), whatever the umask of whoever starts the hub; sockets are owner-only too."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import aiohttp
import pytest

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.files import tighten_hub_files
from scitex_orochi.hub.supervise import prepare

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import eventually


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, tuple[str, int]]:
    """Kind and permission bits of `root` and everything under it."""
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [Path(dirpath) / name for name in (*dirnames, *filenames)]
    out = {}
    for path in paths:
        st = os.lstat(path)
        kind = ("dir" if stat.S_ISDIR(st.st_mode) else
                "socket" if stat.S_ISSOCK(st.st_mode) else "file")
        out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode))
    return out


def wrong_modes(root: Path) -> dict[str, tuple[str, str]]:
    bad = {}
    for path, (kind, mode) in modes(root).items():
        ok = (mode == 0o700 if kind == "dir" else
              not mode & 0o077 if kind == "socket" else mode == 0o600)
        if not ok:
            bad[path] = (kind, oct(mode))
    return bad


async def test_every_file_of_a_running_hub_is_private(loose_umask, hub_factory):
    hub = hub_factory()
    wait_http_ready(hub)
    agent = await RawAgent.connect(hub.agent_url(), "keeper", ["#private"])
    ack = await agent.post("#private", "a secret")
    assert ack["payload"]["seq"] == 1
    await agent.close()
    api = Api(hub.http_url, hub.admin_token)
    try:
        form = aiohttp.FormData()
        form.add_field("file", b"private bytes", filename="notes.txt", content_type="text/plain")
        status, upload = await api.request("POST", "/api/upload", data=form)
        assert status == 201, upload
    finally:
        await api.close()
    root = hub.cfg.data_dir
    media = await eventually(lambda: [p for p in (root / "media").rglob("*") if p.is_file()],
                             10, "the uploaded file")
    assert media
    names = set(modes(root))
    assert {"orochi.db", "orochi.db-wal", "orochi.db-shm", "admin_token",
            "run/supervisord.conf", "run/bus-in.sock"} <= names, names
    assert wrong_modes(root) == {}
    hub.stop()
    assert wrong_modes(root) == {}


def test_prepare_tightens_what_an_older_version_left_open(loose_umask, tmp_path):
    data = tmp_path / "data"
    (data / "media" / "2024-01").mkdir(parents=True)
    (data / "logs").mkdir()
    for path in (data, data / "media", data / "media" / "2024-01", data / "logs"):
        path.chmod(0o755)
    for name in ("orochi.db", "orochi.db-wal", "admin_token", "media/2024-01/a.png",
                 "logs/broker.log"):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    (data / "admin_token").write_text("kept-admin-token\n")
    (data / "unrelated.txt").write_text("not ours")
    (data / "unrelated.txt").chmod(0o644)
    run_dir = Path(os.path.realpath("/tmp")) / f"orp{os.getpid()}"
    cfg = Config.from_env({"SCITEX_OROCHI_DATA_DIR": str(data),
                           "SCITEX_OROCHI_RUN_DIR": str(run_dir)})
    try:
        prepared = prepare(cfg, {})
        assert prepared.admin_token == "kept-admin-token"
        assert wrong_modes(data) == {"unrelated.txt": ("file", "0o644")}  # not ours: left
        assert wrong_modes(run_dir) == {}
    finally:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)


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
