"""SQLAlchemy engines for SQLite (WAL, durable commits) and PostgreSQL (psycopg 3).

SQLite runs with pysqlite's own transaction handling switched off so that we
issue BEGIN ourselves: writers take `BEGIN IMMEDIATE` (the write lock up
front, so busy_timeout applies instead of a deadlock on lock upgrade).
"""

from __future__ import annotations

import json
import json.encoder
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from scitex_orochi.hub.settings import DEFAULT_SQLITE_SYNC, SQLITE_SYNC_MODES

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5

_IMMEDIATE = "orochi_immediate"


def normalize_url(url: str) -> str:
    """Accept `postgresql://` / `postgres://` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _compact_encoder() -> Callable[[Any], str]:
    """json.dumps(v, ensure_ascii=False, separators=(",", ":")) without per-call set-up.

    The C encoder is built once (no circular-reference check: our values come
    from msgpack or JSON and cannot be cyclic), which halves the cost of small values.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    c_encode = make(
        None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode(value: Any) -> str:
        if type(value) is str:
            return json.encoder.encode_basestring(value)
        return "".join(c_encode(value, 0))

    return encode


_encode = _compact_encoder()


def json_dumps(value: Any) -> str:
    """Compact JSON for the database's JSON columns."""
    # Fast paths for the common empty values of mentions/metadata/attachments.
    if not value:
        if value == []:
            return "[]"
        if value == {}:
            return "{}"
    return _encode(value)


def sqlite_sync_mode(mode: str) -> str:
    """The synchronous pragma's value (`cfg.db.sqlite_sync` is checked when it is read)."""
    value = mode.strip().upper()
    if value not in SQLITE_SYNC_MODES:
        raise ValueError(
            f"SQLite synchronous mode {mode!r} is not one of {', '.join(SQLITE_SYNC_MODES)}"
        )
    return value


def _set_wal(cur: Any) -> None:
    """Switch to WAL, retrying while another connection holds the lock.

    Changing the journal mode does not wait on busy_timeout, so several processes
    opening a new database at once (the persister, `serve`, tests) could fail.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def make_engine(
    url: str, *, readonly: bool = False, sqlite_sync: str = DEFAULT_SQLITE_SYNC
) -> Engine:
    url = normalize_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            json_serializer=json_dumps,
            hide_parameters=True,  # tokens never reach an error's text
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        )
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    sync = sqlite_sync_mode(sqlite_sync)
    # No pool_pre_ping: a local file cannot drop the connection, and the ping cost
    # a round trip on every checkout of the write path.
    engine = sa.create_engine(url, json_serializer=json_dumps, hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not readonly:
            _set_wal(cur)
        cur.execute(f"PRAGMA synchronous = {sync}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commits on success, rolls back and re-raises on error."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn
