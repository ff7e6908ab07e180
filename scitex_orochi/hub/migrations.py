"""The versioned migration runner of the hub database (the tables are in `tables.py`).

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

from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.hub.tables import (
    CONVERSATION_TABLES,
    agent_registry,
    invites,
    messages,
    push_subscriptions,
    schema_migrations,
    workspace_tokens,
    workspaces,
)

log = logging.getLogger("orochi.store")

# Any fixed 64-bit key: only migrations and bootstrap take it.
MIGRATION_LOCK_KEY = 0x0A0C_4100_0001


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


def _v3_workspace_scoped_ids(conn: Connection) -> None:
    """Message ids unique per workspace (they were global: one workspace could take the
    id another would use, and see its ack); token pinning and workspace policies."""
    inspector = sa.inspect(conn)
    _add_missing_columns(conn, inspector, workspaces, ("require_pinned", "gitea_access"))
    _add_missing_columns(conn, inspector, workspace_tokens, ("agent_name",))
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_workspace_tokens_agent_name ON workspace_tokens (agent_name)"
    )
    uniques: set[tuple[str | None, ...]] = {
        tuple(u["column_names"]) for u in inspector.get_unique_constraints("messages")
    }
    uniques |= {
        tuple(i["column_names"]) for i in inspector.get_indexes("messages") if i.get("unique")
    }
    if ("workspace_id", "msg_id") in uniques and ("msg_id",) not in uniques:
        return  # created by this version's table definition
    if conn.dialect.name == "postgresql":
        for u in inspector.get_unique_constraints("messages"):
            if u["column_names"] == ["msg_id"]:
                conn.exec_driver_sql(f'ALTER TABLE messages DROP CONSTRAINT "{u["name"]}"')
        conn.exec_driver_sql(
            "ALTER TABLE messages ADD CONSTRAINT uq_messages_ws_msg_id "
            "UNIQUE (workspace_id, msg_id)"
        )
        return
    _rebuild_sqlite_messages(conn)


def _add_missing_columns(
    conn: Connection, inspector: sa.Inspector, table: sa.Table, names: tuple[str, ...]
) -> None:
    present = {c["name"] for c in inspector.get_columns(table.name)}
    for name in names:
        if name in present:
            continue
        column = table.c[name]
        ddl = column.type.compile(dialect=conn.dialect)
        default = ""
        if column.server_default is not None:  # booleans only (false)
            default = " NOT NULL DEFAULT " + ("false" if conn.dialect.name == "postgresql" else "0")
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {ddl}{default}")


def _rebuild_sqlite_messages(conn: Connection) -> None:
    """SQLite cannot drop a column's UNIQUE: copy into a table of the new shape (the
    columns the old table has; later migrations add theirs with their defaults)."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("messages")}
    columns = ", ".join(c.name for c in messages.columns if c.name in present)
    conn.exec_driver_sql("ALTER TABLE messages RENAME TO messages_v2")
    for index in ("ix_messages_ws_channel_ts", "ix_messages_ws_pk"):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
    messages.create(conn)
    conn.exec_driver_sql(f"INSERT INTO messages ({columns}) SELECT {columns} FROM messages_v2")
    conn.exec_driver_sql("DROP TABLE messages_v2")
    _v2_history_indexes(conn)


def _v4_conversations(conn: Connection) -> None:
    """Threads, folded edits and tombstones on messages; channel events (reactions, edits,
    deletes in the channel's seq stream), reactions, edit history, DM participants and
    lasting subscriptions."""
    inspector = sa.inspect(conn)
    _add_missing_columns(conn, inspector, messages, ("thread_root", "edited_at", "deleted"))
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_messages_ws_thread_root "
        "ON messages (workspace_id, thread_root)"
    )
    for table in CONVERSATION_TABLES:
        table.create(conn, checkfirst=True)


# ---- full-text search (migration 5) ----------------------------------------------------
# A message is indexed while it is not deleted and its content is not empty; an edit
# re-indexes it, a delete takes it out. Both dialects keep the index in the transaction
# that writes the row, so the persister's hot path (plain multi-row INSERTs) is unchanged.
FTS_TABLE = "messages_fts"
FTS_TOKENIZER = "unicode61 remove_diacritics 2"
# PostgreSQL: to_tsvector fails on a text whose lexemes pass 1 MB (a message the hub
# would then refuse to store); the first PG_FTS_MAX_CHARS characters can never reach it.
PG_FTS_MAX_CHARS = 100_000
PG_FTS_CONFIG = "simple"


def pg_fts_vector(column: str = "content") -> str:
    """The indexed expression; a query must spell it the same to use the index."""
    return f"to_tsvector('{PG_FTS_CONFIG}', left({column}, {PG_FTS_MAX_CHARS}))"


PG_FTS_INDEX = "ix_messages_content_fts"

_INDEXED_NEW = "NOT new.deleted AND new.content <> ''"
_INDEXED_OLD = "NOT old.deleted AND old.content <> ''"
# External content: FTS5 stores only the index and reads `content` back from messages.
# Its 'delete' must be given the values that were indexed, and only for a row that was:
# the triggers' conditions keep "indexed" = "not deleted and not empty" at every step.
# (So never run FTS5's 'rebuild' on it: that would index the tombstones too.)
SQLITE_FTS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    f"content, content='messages', content_rowid='pk', tokenize='{FTS_TOKENIZER}')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON messages "
    f"WHEN {_INDEXED_NEW} BEGIN "
    f"INSERT INTO {FTS_TABLE} (rowid, content) VALUES (new.pk, new.content); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON messages "
    f"WHEN {_INDEXED_OLD} BEGIN "
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, content) "
    "VALUES ('delete', old.pk, old.content); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF pk, content, deleted "
    "ON messages WHEN old.pk IS NOT new.pk OR old.content IS NOT new.content "
    "OR old.deleted IS NOT new.deleted BEGIN "
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, content) "
    f"SELECT 'delete', old.pk, old.content WHERE {_INDEXED_OLD}; "
    f"INSERT INTO {FTS_TABLE} (rowid, content) "
    f"SELECT new.pk, new.content WHERE {_INDEXED_NEW}; END",
)


def _v5_full_text_search(conn: Connection) -> None:
    """Full-text search over messages.content: SQLite FTS5 kept by triggers, PostgreSQL a
    GIN index on the expression the search queries; existing rows are indexed here."""
    if conn.dialect.name == "postgresql":
        # An expression index rather than a stored tsvector column: an insert computes
        # the vector once either way, but the column would also store it in the row
        # (and adding it rewrites the table). The search ranks a bounded candidate set,
        # so recomputing the vector for ts_rank stays cheap.
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {PG_FTS_INDEX} ON messages "
            f"USING gin ({pg_fts_vector()}) WHERE NOT deleted"
        )
        return
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).first()
    for statement in SQLITE_FTS_DDL:
        conn.exec_driver_sql(statement)
    if exists is None:  # backfill once: the triggers keep it from now on
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE} (rowid, content) SELECT pk, content FROM messages "
            "WHERE NOT deleted AND content <> ''"
        )


def _v6_agent_registry(conn: Connection) -> None:
    """The agent registry that outlives restarts (kept by the persister)."""
    agent_registry.create(conn, checkfirst=True)


def _v7_push_subscriptions(conn: Connection) -> None:
    push_subscriptions.create(conn, checkfirst=True)


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "initial schema", _v1_initial),
    (2, "history indexes", _v2_history_indexes),
    (
        3,
        "workspace-scoped message ids, pinned tokens, workspace policies",
        _v3_workspace_scoped_ids,
    ),
    (
        4,
        "conversations: threads, channel events, reactions, edits, DMs, subscriptions",
        _v4_conversations,
    ),
    (5, "full-text search over message content", _v5_full_text_search),
    (6, "the agent registry", _v6_agent_registry),
    (7, "web push subscriptions", _v7_push_subscriptions),
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
    """Apply every missing migration in order; returns the resulting version. A migration
    is missing when its number is not recorded, even below the highest one recorded (a
    database made by a build that lacked it, e.g. a branch merged later)."""
    steps = sorted(MIGRATIONS if migrations is None else migrations, key=lambda m: m[0])
    version = 0
    for number, name, apply in steps:
        with write_tx(engine) as conn:
            lock_for_schema(conn)
            schema_migrations.create(conn, checkfirst=True)
            version = current_version(conn)
            done = conn.execute(
                sa.select(schema_migrations.c.version).where(schema_migrations.c.version == number)
            ).first()
            if done is not None:
                continue
            log.info("applying migration %d: %s", number, name)
            apply(conn)
            conn.execute(
                schema_migrations.insert().values(version=number, name=name, applied_at=_now_iso())
            )
            version = max(version, number)
    if not steps:
        with engine.connect() as conn:
            version = current_version(conn)
    return version
