"""Shared pytest fixtures."""

from __future__ import annotations

import itertools

import pytest

_pg_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster per session (tests/pg.py); skipped without binaries."""
    from scitex_orochi.hub.testing.pg import PgCluster, PgUnavailable

    try:
        cluster = PgCluster()
        cluster.init()
        cluster.start()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster):
    """A fresh, empty database on the session cluster for one test; dropped afterwards."""
    name = f"orochi_test_{next(_pg_db_counter)}"
    url = pg_cluster.create_database(name)
    yield url
    try:
        pg_cluster.drop_database(name)
    except Exception:  # noqa: BLE001 - the server may have been stopped by the test
        pass


# ---- a real supervised hub (scitex_orochi.hub.testing) ------------------------------

@pytest.fixture
def hub_factory():
    """Start hubs with options (ws_procs, db_url, extra_env); all stopped at teardown."""
    from scitex_orochi.hub.testing import Hub

    started = []

    def make(**kwargs):
        hub = Hub(**kwargs)
        started.append(hub)
        return hub.start()

    yield make
    for hub in started:
        hub.stop()
        hub.cleanup()


@pytest.fixture
def hub(hub_factory):
    """One hub with a single WebSocket gateway on SQLite."""
    return hub_factory()


@pytest.fixture(scope="module")
def shared_hub():
    """One hub for a whole module, for tests that do not kill or reconfigure it."""
    from scitex_orochi.hub.testing import Hub

    hub = Hub().start()
    yield hub
    hub.stop()
    hub.cleanup()
