"""Fixtures for every tier; each tier's own are in tests/<tier>/conftest.py.

The tiers: `unit` (pure code: literal inputs, injected clocks; no sockets, threads,
subprocesses or real sleeps), `component` (one process: real sockets on port 0,
threads, SQLite files), `e2e` (processes: the supervised hub, the CLI and modules as
subprocesses, Chromium). The PostgreSQL cluster serves component and e2e tests alike.
This file being the rootdir conftest puts `tests/` on the path: `import support`."""

from __future__ import annotations

import itertools
import os

import pytest

_pg_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster per session (scitex_orochi.hub.testing.pg);
    skipped without Debian's binaries."""
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


@pytest.fixture
def loose_umask():
    """A umask that would leave files group- and world-readable (022), restored after."""
    old = os.umask(0o022)
    yield
    os.umask(old)
