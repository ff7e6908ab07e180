"""Fixtures of the e2e tier: a real supervised hub (scitex_orochi.hub.testing)."""

from __future__ import annotations

import pytest


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
