"""Fixtures of the component tier: the hub's parts in this one process, on real sockets.

`make_bed(**env)` prepares a data dir as `serve` does (`supervise.prepare`: directories,
bus keys, a migrated SQLite file, the admin and first workspace tokens) and starts the
broker in a thread on ipc sockets of a short /tmp run dir; `persister` runs the
persister on its loop in a thread; `http` is the HTTP gateway's `create_app(cfg)` on
aiohttp's TestServer (127.0.0.1, port 0); `gateway` is the WebSocket gateway's `run()`
as a task of the test's loop.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_http.app import create_app
from gateway_ws.service import Gateway
from persister.service import Persister
from scitex_orochi.hub.bus import SyncBus, new_origin
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.store import Store
from scitex_orochi.hub.supervise import prepare
from scitex_orochi.hub.testing import TEST_ENV, free_port

from support.broker import BrokerThread
from support.persister import BusSide, PersisterThread
from support.util import TIME_SCALE, eventually

START_TIMEOUT_S = 10.0


@dataclass
class Bed:
    """A prepared data dir and a running broker: what every part of the hub needs."""

    cfg: Config
    root: Path
    admin_token: str
    default_token: str
    broker: BrokerThread

    def store(self) -> Store:
        """A read-only store on the bed's database (closed by the caller)."""
        return Store(self.cfg.db.url, readonly=True)

    def history(self, channel: str, workspace: str = "default") -> list[dict]:
        store = self.store()
        try:
            return store.history(workspace, channel, after_seq=0, limit=1000)
        finally:
            store.close()


@pytest.fixture
def make_bed() -> Iterator[Callable[..., Bed]]:
    made: list[Bed] = []

    def make(**env: str) -> Bed:
        root = Path(tempfile.mkdtemp(prefix="oroc", dir="/tmp"))  # ipc paths stay short
        base = {
            "SCITEX_OROCHI_DATA_DIR": str(root / "data"),
            "SCITEX_OROCHI_RUN_DIR": str(root / "run"),
            "SCITEX_OROCHI_HOST": "127.0.0.1",
            "SCITEX_OROCHI_PORT": str(free_port()),
            **TEST_ENV,
            **env,
        }
        prepared = prepare(Config.from_env(base), base)
        cfg = Config.from_env(prepared.env)  # what the hub's processes read
        bed = Bed(
            cfg,
            root,
            prepared.admin_token,
            prepared.default_token,
            BrokerThread(cfg.bus.in_endpoint, cfg.bus.out_endpoint).start(),
        )
        made.append(bed)
        return bed

    yield make
    for bed in made:
        bed.broker.stop()
        shutil.rmtree(bed.root, ignore_errors=True)


@pytest.fixture
def bed(make_bed) -> Bed:
    return make_bed()


@pytest.fixture
def persister(bed) -> Iterator[PersisterThread]:
    thread = PersisterThread(bed.cfg).start()
    yield thread
    thread.stop()


@pytest.fixture
async def http(bed) -> AsyncIterator[TestClient]:
    """The HTTP gateway's app in this process; its bus client starts with the app."""
    async with TestClient(TestServer(create_app(bed.cfg), host="127.0.0.1")) as client:
        yield client


@dataclass
class RunningGateway:
    gateway: Gateway
    url: str

    def agent_url(self, token: str) -> str:
        return f"{self.url}/?token={token}"


@pytest.fixture
async def gateway(bed) -> AsyncIterator[RunningGateway]:
    """`Gateway.run()` as `python -m gateway_ws` runs it, on the bed's free port; stopped
    through its peer's `stopping` event (what SIGTERM sets)."""
    store = Store(bed.cfg.db.url, readonly=True)
    gw = Gateway(bed.cfg, store)
    task = asyncio.create_task(gw.run())
    host, port = bed.cfg.host, bed.cfg.ws.port

    async def listening() -> bool:  # once its bus handshake is done
        if task.done():
            task.result()  # raises what stopped it
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    await eventually(listening, START_TIMEOUT_S, "the gateway listening")
    try:
        yield RunningGateway(gw, f"ws://{host}:{port}")
    finally:
        gw.peer.stopping.set()
        await asyncio.wait_for(task, 10 * TIME_SCALE)
        store.close()


@pytest.fixture
def pipeline():
    """A Persister object in this process on a broker in a thread, not on its loop, so a
    test can hold a batch in flight while the next one is prepared."""
    root = Path(tempfile.mkdtemp(prefix="oroc", dir="/tmp"))  # ipc paths stay short
    broker = BrokerThread(f"ipc://{root}/bus-in.sock", f"ipc://{root}/bus-out.sock").start()
    h = BusSide(broker.bus_in, broker.bus_out, f"sqlite:///{root}/orochi.db")
    store = Store(h.db_url)
    store.migrate()
    bus = SyncBus(broker.bus_in, broker.bus_out, new_origin("persister-test"))
    p = Persister(store, bus, batch_max=1000)
    bus.wait_ready(10 * TIME_SCALE, via=p.announcer)
    yield h, p, store
    p.close()
    bus.close()
    store.close()
    h.close()
    broker.stop()
    shutil.rmtree(root, ignore_errors=True)
