"""Schema of the hub database and the versioned migration runner.

Each migration is `(version, name, apply(conn))`, applied in its own
transaction and recorded in `schema_migrations`. Two processes may start at
once: PostgreSQL serialises them with `pg_advisory_xact_lock`, SQLite with
`BEGIN IMMEDIATE` (see `store_engine.write_tx`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .store_engine import write_tx

log = logging.getLogger("orochi.store")

# Any fixed 64-bit key: only migrations and bootstrap take it.
MIGRATION_LOCK_KEY = 0x0A0C_4100_0001

metadata = sa.MetaData()

# BIGINT on PostgreSQL; INTEGER on SQLite so the column aliases the rowid.
BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.String(40), nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
)

workspace_tokens = sa.Table(
    "workspace_tokens",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False,
              index=True),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.String(40), nullable=False),
)

invites = sa.Table(
    "invites",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False,
              index=True),
    sa.Column("max_uses", sa.Integer, nullable=False),
    sa.Column("uses", sa.Integer, nullable=False, default=0),
    sa.Column("expires_at", sa.Float, nullable=True),  # epoch seconds
    sa.Column("created_at", sa.String(40), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("pk", BigIntPk, primary_key=True, autoincrement=True),
    sa.Column("msg_id", sa.String(255), nullable=False, unique=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("ts_epoch", sa.Float, nullable=False),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("sender_type", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("mentions", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    # Also the index behind history and resume: (ws, channel, seq).
    sa.UniqueConstraint("workspace_id", "channel", "seq", name="uq_messages_ws_channel_seq"),
)


def _v1_initial(conn: Connection) -> None:
    for table in (workspaces, workspace_tokens, invites, messages):
        table.create(conn, checkfirst=True)


def _v2_history_indexes(conn: Connection) -> None:
    # `since` queries filter on ts_epoch; recent() walks the newest rows of a workspace.
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_messages_ws_channel_ts "
        "ON messages (workspace_id, channel, ts_epoch)"
    )
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_messages_ws_pk ON messages (workspace_id, pk)"
    )


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "initial schema", _v1_initial),
    (2, "history indexes", _v2_history_indexes),
]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def lock_for_schema(conn: Connection) -> None:
    """Serialise schema work across processes (SQLite is already serialised by BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return 0
    return conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0


def migrate(engine: Engine, migrations: list[Migration] | None = None) -> int:
    """Apply every missing migration in order; returns the resulting version."""
    steps = sorted(MIGRATIONS if migrations is None else migrations, key=lambda m: m[0])
    version = 0
    for number, name, apply in steps:
        with write_tx(engine) as conn:
            lock_for_schema(conn)
            schema_migrations.create(conn, checkfirst=True)
            version = current_version(conn)
            if number <= version:
                continue
            log.info("applying migration %d: %s", number, name)
            apply(conn)
            conn.execute(schema_migrations.insert().values(
                version=number, name=name, applied_at=_now_iso()))
            version = number
    if not steps:
        with engine.connect() as conn:
            version = current_version(conn)
    return version
