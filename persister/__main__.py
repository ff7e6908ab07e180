"""Entry point: `python -m persister`."""

from __future__ import annotations

import logging
import sys
import time

from sqlalchemy.exc import SQLAlchemyError

from scitex_orochi.hub.bus import SyncBus, new_origin
from scitex_orochi.hub.bus_bodies import PersisterReady
from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.errors import BusError
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging
from scitex_orochi.hub.store import Bootstrap, Store
from scitex_orochi.protocol import topics

from .service import BACKOFF_MAX_S, Persister, install_signal_handlers, is_transient

log = logging.getLogger("orochi.persister")

STARTUP_DB_WAIT_S = 30.0
BUS_READY_TIMEOUT_S = 10.0


def _prepare_store(cfg: Config) -> tuple[Store, Bootstrap]:
    """Migrate and bootstrap, waiting a while for a database that is still starting."""
    store = Store(cfg.db.url, sqlite_sync=cfg.db.sqlite_sync)
    deadline = time.monotonic() + STARTUP_DB_WAIT_S
    delay = 0.1
    while True:
        try:
            version = store.migrate()
            boot = store.bootstrap(cfg.admin_token_file, cfg.auth.admin_token)
            break
        except SQLAlchemyError as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("database not ready (%s), retrying", str(exc).splitlines()[0][:200])
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
    log.info("database %s at schema version %d", store.engine.url.render_as_string(), version)
    # Tokens never go to a log: say where they are (`serve` prints them once).
    if boot.admin_generated:
        log.warning("generated the admin token (saved in %s)", cfg.admin_token_file)
    if boot.default_token_generated:
        log.warning(
            "created workspace %r and its first token (scitex-orochi list-tokens shows it)",
            boot.default_workspace_id,
        )
    return store, boot


def main() -> int:
    restrict_umask()  # before any file is created: data files are 0600
    try:
        cfg = Config.from_env()
    except ConfigError as exc:
        logging.basicConfig()
        log.error("bad configuration: %s", exc)
        return 2
    setup_logging(cfg.log.level, "persister", cfg.legacy_env)
    try:
        bus = SyncBus.from_config(cfg, new_origin("persister"))
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    store, _boot = _prepare_store(cfg)
    persister = Persister(store, bus, cfg.db.persist_batch_max, cfg.db.dedupe_ids_max)
    install_signal_handlers(persister)
    try:
        bus.subscribe(*Persister.TOPICS)
        bus.wait_ready(BUS_READY_TIMEOUT_S)
        bus.wait_ready(BUS_READY_TIMEOUT_S, via=persister.announcer)
        log.info("persister ready (origin %s, batch max %d)", bus.origin, cfg.db.persist_batch_max)
        # Whoever holds unacked messages republishes them now instead of at its backoff.
        bus.publish(topics.PERSISTER_READY, PersisterReady(origin=bus.origin))
        persister.run()
    except BusError as exc:
        log.error("%s", exc)
        return 1
    finally:
        bus.close()
        store.close()
    log.info(
        "persister stopped (stored %d messages in %d batches, %d dups)",
        persister.stored,
        persister.batches,
        persister.dups,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
