"""The data dir is 0700 and every file in it 0600 (database, WAL, SHM, media, tokens, run
files, logs), whatever the umask of whoever starts the hub; sockets are owner-only too."""

from __future__ import annotations

import aiohttp

from support.agent import RawAgent
from support.files import modes, wrong_modes
from support.http_util import Api, wait_http_ready
from support.util import eventually


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
    media = await eventually(
        lambda: [p for p in (root / "media").rglob("*") if p.is_file()], 10, "the uploaded file"
    )
    assert media
    names = set(modes(root))
    assert {
        "orochi.db",
        "orochi.db-wal",
        "orochi.db-shm",
        "admin_token",
        "run/supervisord.conf",
        "run/bus-in.sock",
    } <= names, names
    assert wrong_modes(root) == {}
    hub.stop()
    assert wrong_modes(root) == {}
