"""The hub database: messages, workspaces, tokens and invites (SQLAlchemy Core).

One code path for SQLite (WAL, default) and PostgreSQL (`postgresql+psycopg://`).
The persister is the only writer of messages; gateways open the store
read-only for authentication and history. Schema and migrations live in
`scitex_orochi.hub.migrations`, the admin API in `scitex_orochi.hub.store_admin`.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scitex_orochi.hub import migrations, store_registry
from scitex_orochi.hub.errors import (
    Conflict,
    InviteError,
    ReadOnlyStore,
    StoreError,
    WorkspaceNotFound,
)
from scitex_orochi.hub.settings import DEFAULT_SQLITE_SYNC
from scitex_orochi.hub.store_admin import (
    DEFAULT_CHANNELS,
    DEFAULT_WORKSPACE_ID,
    WORKSPACE_TOKEN_PREFIX,
    WorkspaceAdmin,
    insert_token,
    now_iso,
)
from scitex_orochi.hub.store_conv import event_rows, fold_rows, lasting_subscriptions
from scitex_orochi.hub.store_engine import (
    json_dumps,
    make_engine,
    normalize_url,
    write_tx,
)
from scitex_orochi.hub.tables import (
    channel_events,
    dm_participants,
    messages,
    reactions,
    workspace_tokens,
    workspaces,
)
from scitex_orochi.protocol.codec import page_rows

__all__ = [
    "Auth",
    "Bootstrap",
    "Conflict",
    "InviteError",
    "ReadOnlyStore",
    "Store",
    "StoreError",
    "WorkspaceNotFound",
    "parse_iso_epoch",
    "read_admin_token",
    "DEFAULT_WORKSPACE_ID",
]

log = logging.getLogger("orochi.store")

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 1000
SEARCH_DEFAULT_LIMIT = 50
SEARCH_MAX_LIMIT = 200
SEARCH_MAX_CHARS = 500
SEARCH_ORDERS = ("rank", "newest")
# Ranking looks at the newest SEARCH_WINDOW matches (after the filters): a query matching
# more ranks those, and `before` reaches further back. It bounds a common word's cost.
SEARCH_WINDOW = 2000
# `pk + 0`: PostgreSQL must not walk the primary key for ORDER BY ... LIMIT, testing
# each row against the query (its estimate of a full-text match is a fixed guess).
_PG_NUM_UNINDEXED = "m.pk + 0"
_WORD = re.compile(r"[^\W_]+")  # letters and digits: FTS5's unicode61 token characters
FIND_CHUNK = 500
# 12 columns x 1000 rows stays under SQLite's 32,766 bound parameters per statement.
SQLITE_INSERT_CHUNK = 1000
SQLITE_WRITER_CACHE_SIZE = -32 * 1024  # PRAGMA cache_size, negative = KiB; filled only as used
# Checkpoint the WAL every ~40 MB instead of SQLite's ~4 MB: index pages rewritten by
# many commits are copied back once, not each time (inserts ~25% faster).
SQLITE_WAL_CHECKPOINT_PAGES = 10_000

_ROW_COLUMNS = (
    messages.c.pk,
    messages.c.workspace_id,
    messages.c.thread_root,
    messages.c.edited_at,
    messages.c.deleted,
    messages.c.msg_id,
    messages.c.ts,
    messages.c.channel,
    messages.c.sender,
    messages.c.content,
    messages.c.mentions,
    messages.c["metadata"],
    messages.c.sender_type,
    messages.c.attachments,
    messages.c.seq,
)


_ROWS_SQL: dict[int, str] = {}  # multi-row INSERT statements by row count
INSERT_COLUMNS = (
    "pk",  # the hub number `num`, allocated by the persister
    "msg_id",
    "workspace_id",
    "channel",
    "seq",
    "ts",
    "ts_epoch",
    "sender",
    "sender_type",
    "content",
    "mentions",
    "metadata",
    "attachments",
)


@dataclass(frozen=True)
class Auth:
    """What a token grants: a workspace (the default one for the admin token), admin
    rights, and, for a pinned token, the one agent name it may register."""

    workspace_id: str
    is_admin: bool
    agent_name: str | None = None
    require_pinned: bool = False
    gitea_access: dict[str, Any] | None = None
    has_pins: bool = False  # some token of the workspace is pinned to a name


@dataclass(frozen=True)
class Bootstrap:
    admin_token: str
    admin_generated: bool
    default_workspace_id: str
    default_token: str
    default_token_generated: bool


def parse_iso_epoch(value: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp (naive means UTC); ValueError if unparsable."""
    if not isinstance(value, str):
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _clamp(limit: int) -> int:
    return max(1, min(HISTORY_MAX_LIMIT, _int_or(limit, HISTORY_DEFAULT_LIMIT)))


def row_columns() -> tuple[Any, ...]:
    return _ROW_COLUMNS


def row_dict(row: Any) -> dict[str, Any]:
    """A history row: the message as stored, `num`, its folded edit and delete state when
    set, and the private `_thread_root`/`_ws` that `store_conv.fold_rows` replaces."""
    out = _row_dict(row)
    out["num"] = row.pk
    if row.edited_at is not None:
        out["edited_at"] = row.edited_at
    if row.deleted:
        out["deleted"] = True
    out["_thread_root"] = row.thread_root
    out["_ws"] = row.workspace_id
    return out


def _folded(conn: Any, rows: Any, chunk: int = 50, with_ws: bool = False) -> Any:
    """History rows read lazily from a result, folded a chunk at a time (`with_ws`: each
    with its `workspace_id`)."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        item = row_dict(row)
        if with_ws:
            item["workspace_id"] = row.workspace_id
        batch.append(item)
        if len(batch) >= chunk:
            fold_rows(conn, batch)
            yield from batch
            batch = []
    if batch:
        fold_rows(conn, batch)
        yield from batch


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "msg_id": row.msg_id,
        "ts": row.ts,
        "channel": row.channel,
        "sender": row.sender,
        "content": row.content,
        "mentions": row.mentions if row.mentions is not None else [],
        "metadata": row.metadata if row.metadata is not None else {},
        "sender_type": row.sender_type,
        "attachments": row.attachments if row.attachments is not None else [],
        "seq": row.seq,
    }


def search_words(query: str) -> list[str]:
    """The words of a free-text search: its runs of letters and digits, each once
    (case-insensitively); everything else separates them. ValueError for a query with
    none, or longer than SEARCH_MAX_CHARS characters."""
    if not isinstance(query, str):
        raise ValueError("the search query must be a string")
    if len(query) > SEARCH_MAX_CHARS:
        raise ValueError(
            f"the search query is {len(query)} characters long; at most {SEARCH_MAX_CHARS}"
        )
    words: dict[str, str] = {}
    for word in _WORD.findall(query):
        words.setdefault(word.casefold(), word)
    if not words:
        raise ValueError("the search query has no words (letters or digits) to look for")
    return list(words.values())


def fts5_query(words: list[str]) -> str:
    """An FTS5 MATCH expression for rows holding every word: each word a quoted string
    (FTS5 reads nothing inside one as syntax; its tokenizer folds it as it folded the
    indexed text), joined by AND."""
    return " AND ".join('"' + word.replace('"', '""') + '"' for word in words)


def search_epoch(value: str | float | int, name: str) -> float:
    """`before`/`after` of a search: epoch seconds, or an ISO-8601 timestamp."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an ISO-8601 timestamp or epoch seconds")
    epoch: float | None = None
    if isinstance(value, int | float):
        epoch = float(value)
    elif isinstance(value, str):
        try:
            epoch = float(value)
        except ValueError:
            try:
                epoch = parse_iso_epoch(value)
            except ValueError:
                pass
    if epoch is not None and math.isfinite(epoch):
        return epoch
    raise ValueError(f"{name} must be an ISO-8601 timestamp or epoch seconds, not {value!r}")


def _search_text(sql: str, params: dict[str, Any]) -> sa.TextClause:
    text = sa.text(sql)
    if "channels" in params:
        text = text.bindparams(sa.bindparam("channels", expanding=True))
    return text


def _pg_window_floor(conn: sa.Connection, where: str, params: dict[str, Any]) -> int:
    """The num of the SEARCH_WINDOW-th newest match (0 when fewer match), found walking
    back from the newest rows in ranges sized by the matches seen so far. PostgreSQL ANDs
    the GIN and primary-key bitmaps, so a common word's rows are read only near the top
    rather than all of them to sort by num."""
    top = conn.execute(sa.text("SELECT max(pk) FROM messages")).scalar()
    need, high, span = SEARCH_WINDOW, int(top or 0), SEARCH_WINDOW * 8
    seen = scanned = 0
    step = _search_text(
        f"SELECT m.pk FROM messages AS m WHERE {where} AND m.pk > :low AND m.pk <= :high "
        f"ORDER BY {_PG_NUM_UNINDEXED} DESC LIMIT :need",
        params,
    )
    while high > 0:
        low = max(0, high - span)
        nums = conn.execute(step, {**params, "low": low, "high": high, "need": need}).scalars()
        found = list(nums)
        if len(found) == need:
            return int(found[-1])
        need, seen, scanned, high = need - len(found), seen + len(found), scanned + high - low, low
        # What is missing at the density seen so far, a quarter over (no match yet: all).
        span = max(span * 2, int(need * scanned / max(seen, 1) * 1.25))
    return 0


def read_admin_token(path: Path) -> str | None:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def write_new_secret(path: Path, token: str) -> str:
    """Write `token` to `path` (0600) unless another process got there first; the winner's token."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails if the file already exists
        except FileExistsError:
            existing = read_admin_token(path)
            if existing:
                return existing
            os.replace(tmp, path)
            return token
    finally:
        tmp.unlink(missing_ok=True)
    return token


def _sqlalchemy_error(statement: str, exc: sqlite3.Error) -> sa.exc.DBAPIError:
    """The SQLAlchemy exception the rest of the code expects for a raw sqlite3 error."""
    if isinstance(exc, sqlite3.IntegrityError):
        return sa.exc.IntegrityError(statement, None, exc)
    if isinstance(exc, sqlite3.OperationalError):
        return sa.exc.OperationalError(statement, None, exc)
    return sa.exc.DBAPIError(statement, None, exc)


class Store(WorkspaceAdmin):
    def __init__(
        self, url: str, *, readonly: bool = False, sqlite_sync: str = DEFAULT_SQLITE_SYNC
    ) -> None:
        """`sqlite_sync`: SQLite's synchronous pragma (`cfg.db.sqlite_sync`)."""
        self.url = normalize_url(url)
        self.readonly = readonly
        self.engine = make_engine(self.url, readonly=readonly, sqlite_sync=sqlite_sync)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        if self._raw_writer is not None:
            self._raw_writer.close()
            self._raw_writer = None
        self.engine.dispose()

    _raw_writer: Any = None

    def _writable(self) -> sa.Engine:
        if self.readonly:
            raise ReadOnlyStore("this store was opened read-only")
        return self.engine

    # -- schema -------------------------------------------------------------
    def migrate(self) -> int:
        """Apply missing migrations; the current schema version."""
        return migrations.migrate(self._writable())

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return migrations.current_version(conn)

    # -- bootstrap and auth -------------------------------------------------
    def bootstrap(self, admin_token_file: Path, admin_token: str | None) -> Bootstrap:
        """Make sure an admin token and the default workspace with one token exist."""
        admin_generated = False
        if not admin_token:
            admin_token = read_admin_token(admin_token_file)
        if not admin_token:
            fresh = secrets.token_urlsafe(32)
            admin_token = write_new_secret(admin_token_file, fresh)
            admin_generated = admin_token == fresh
        token_generated = False
        with write_tx(self._writable()) as conn:
            migrations.lock_for_schema(conn)
            found = conn.execute(
                sa.select(workspaces.c.id).where(workspaces.c.id == DEFAULT_WORKSPACE_ID)
            ).first()
            if found is None:
                conn.execute(
                    workspaces.insert().values(
                        id=DEFAULT_WORKSPACE_ID,
                        name=DEFAULT_WORKSPACE_ID,
                        created_at=now_iso(),
                        channels=list(DEFAULT_CHANNELS),
                    )
                )
            t = workspace_tokens
            token = conn.execute(
                sa.select(t.c.token)
                .where(t.c.workspace_id == DEFAULT_WORKSPACE_ID)
                .order_by(t.c.created_at, t.c.token)
                .limit(1)
            ).scalar()
            if token is None:
                token = insert_token(conn, DEFAULT_WORKSPACE_ID, "default")["token"]
                token_generated = True
        return Bootstrap(
            admin_token=admin_token,
            admin_generated=admin_generated,
            default_workspace_id=DEFAULT_WORKSPACE_ID,
            default_token=token,
            default_token_generated=token_generated,
        )

    def authenticate(self, token: str, admin_token: str) -> Auth | None:
        if not isinstance(token, str) or not token:
            return None
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return Auth(DEFAULT_WORKSPACE_ID, True)
        if not token.startswith(WORKSPACE_TOKEN_PREFIX):
            return None
        t, w = workspace_tokens, workspaces
        pins = workspace_tokens.alias("pins")
        has_pins = sa.exists().where(
            pins.c.workspace_id == t.c.workspace_id, pins.c.agent_name.is_not(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    t.c.workspace_id,
                    t.c.agent_name,
                    w.c.require_pinned,
                    w.c.gitea_access,
                    has_pins.label("has_pins"),
                )
                .select_from(t.join(w, w.c.id == t.c.workspace_id))
                .where(t.c.token == token)
            ).first()
        if row is None:
            return None
        return Auth(
            row.workspace_id,
            False,
            row.agent_name or None,
            bool(row.require_pinned),
            row.gitea_access if isinstance(row.gitea_access, dict) else None,
            bool(row.has_pins),
        )

    def live_tokens(self, tokens: list[str]) -> set[str]:
        """Which of `tokens` (workspace tokens) still exist: the revocation sweep."""
        found: set[str] = set()
        ids = [tok for tok in dict.fromkeys(tokens) if tok.startswith(WORKSPACE_TOKEN_PREFIX)]
        t = workspace_tokens
        with self.engine.connect() as conn:
            for start in range(0, len(ids), FIND_CHUNK):
                chunk = ids[start : start + FIND_CHUNK]
                found.update(
                    conn.execute(sa.select(t.c.token).where(t.c.token.in_(chunk))).scalars()
                )
        return found

    def pinned_names(self, workspace_id: str, names: list[str]) -> set[str]:
        """Which of `names` have a token pinned to them in the workspace."""
        t = workspace_tokens
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    sa.select(t.c.agent_name).where(
                        t.c.workspace_id == workspace_id, t.c.agent_name.in_(names)
                    )
                ).scalars()
            )

    # -- reads ----------------------------------------------------------------
    def history(
        self,
        workspace_id: str,
        channel: str,
        *,
        since: str | None = None,
        limit: int = HISTORY_DEFAULT_LIMIT,
        after_seq: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first (optionally `ts >= since`), or oldest first after `after_seq`."""
        m = messages
        query = sa.select(*_ROW_COLUMNS).where(
            m.c.workspace_id == workspace_id, m.c.channel == channel
        )
        if after_seq is not None:
            query = query.where(m.c.seq > int(after_seq)).order_by(m.c.seq.asc())
        else:
            if since is not None:
                query = query.where(m.c.ts_epoch >= parse_iso_epoch(since))
            query = query.order_by(m.c.seq.desc())
        with self.engine.connect() as conn:
            return list(_folded(conn, conn.execute(query.limit(_clamp(limit))).all()))

    def history_page(
        self,
        workspace_id: str,
        channel: str,
        *,
        max_bytes: int,
        since: str | None = None,
        limit: int = HISTORY_DEFAULT_LIMIT,
        after_seq: int | None = None,
        before_seq: int | None = None,
        events: bool = False,
    ) -> tuple[list[str], bool]:
        """History as encoded rows that fit in `max_bytes`, and whether more were left
        out. Rows are read from the cursor only as far as they fit: a reply never holds
        (or loads) more than the client can take. Order as in `history`; `before_seq`
        pages backwards (newest first) from there."""
        m = messages
        query = sa.select(*_ROW_COLUMNS).where(
            m.c.workspace_id == workspace_id, m.c.channel == channel
        )
        if after_seq is not None and events:
            return self._stream_page(workspace_id, channel, int(after_seq), limit, max_bytes)
        if after_seq is not None:
            query = query.where(m.c.seq > int(after_seq)).order_by(m.c.seq.asc())
        else:
            if since is not None:
                query = query.where(m.c.ts_epoch >= parse_iso_epoch(since))
            if before_seq is not None:
                query = query.where(m.c.seq < int(before_seq))
            query = query.order_by(m.c.seq.desc())
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=50).execute(
                query.limit(_clamp(limit))
            )
            try:
                rows, more = page_rows(_folded(conn, result), max_bytes)
            finally:
                result.close()
        return rows, more

    def _stream_page(
        self, workspace_id: str, channel: str, after_seq: int, limit: int, max_bytes: int
    ) -> tuple[list[str], bool]:
        """The channel's seq stream after `after_seq`: messages (folded) and change events
        interleaved in seq order, as encoded rows within `max_bytes`."""
        limit = _clamp(limit)
        m = messages
        with self.engine.connect() as conn:
            msgs = conn.execute(
                sa.select(*_ROW_COLUMNS)
                .where(m.c.workspace_id == workspace_id, m.c.channel == channel)
                .where(m.c.seq > after_seq)
                .order_by(m.c.seq.asc())
                .limit(limit)
            ).all()
            rows = list(_folded(conn, msgs))
            rows.extend(event_rows(conn, workspace_id, channel, after_seq, limit))
        rows.sort(key=lambda r: r["seq"])
        more = len(rows) > limit
        encoded, cut = page_rows(rows[:limit], max_bytes)
        return encoded, more or cut

    def recent(self, workspace_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
        """The last `limit` messages across channels, oldest first (with workspace_id)."""
        m = messages
        query = sa.select(*_ROW_COLUMNS)
        if workspace_id is not None:
            query = query.where(m.c.workspace_id == workspace_id)
        query = query.order_by(m.c.pk.desc()).limit(_clamp(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            return list(_folded(conn, reversed(rows), with_ws=True))

    def recent_page(
        self, workspace_id: str | None, limit: int, max_bytes: int, skip: Any = None
    ) -> tuple[list[str], bool]:
        """`recent` as encoded rows within `max_bytes` (the newest that fit), oldest first;
        `skip(channel)` leaves channels out (the internal ones)."""
        m = messages
        query = sa.select(*_ROW_COLUMNS)
        if workspace_id is not None:
            query = query.where(m.c.workspace_id == workspace_id)
        query = query.order_by(m.c.pk.desc()).limit(_clamp(limit))

        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=50).execute(query)
            kept = (r for r in result if skip is None or not skip(r.channel))
            try:
                encoded, more = page_rows(_folded(conn, kept, with_ws=True), max_bytes)
            finally:
                result.close()
        encoded.reverse()
        return encoded, more

    def channels(self, workspace_id: str) -> dict[str, int]:
        """Channels with messages → last seq (= message count: seqs run 1, 2, 3…).

        A loose index scan (recursive CTE) keeps this cheap on millions of rows.
        """
        sql = sa.text(
            "WITH RECURSIVE c(ch) AS ("
            " SELECT MIN(channel) FROM messages WHERE workspace_id = :workspace"
            " UNION ALL"
            " SELECT (SELECT MIN(channel) FROM messages"
            "         WHERE workspace_id = :workspace AND channel > c.ch)"
            " FROM c WHERE c.ch IS NOT NULL"
            ") SELECT ch FROM c WHERE ch IS NOT NULL"
        )
        m = messages
        with self.engine.connect() as conn:
            names = [r[0] for r in conn.execute(sql, {"workspace": workspace_id})]
            return {
                name: conn.execute(
                    sa.select(sa.func.max(m.c.seq)).where(
                        m.c.workspace_id == workspace_id, m.c.channel == name
                    )
                ).scalar()
                or 0
                for name in sorted(names)
            }

    def search(
        self,
        workspace_id: str,
        query: str,
        *,
        channels: Iterable[str] | None = None,
        sender: str | None = None,
        before: str | float | None = None,
        after: str | float | None = None,
        limit: int = SEARCH_DEFAULT_LIMIT,
        order: str = "rank",
    ) -> list[dict[str, Any]]:
        """Messages of the workspace holding every word of `query` (free text: no search
        syntax is read from it), not deleted; rows as in `history` plus `num` and `rank`
        (higher is better: FTS5's bm25 negated, PostgreSQL's ts_rank).

        `channels`: the channels the caller may read (None: all); `sender`: one sender;
        `before`/`after`: ISO-8601 or epoch seconds, exclusive, on `ts`. `order="rank"`
        is best first, ties newest first; `"newest"` by time only. ValueError for a query
        without words or over SEARCH_MAX_CHARS characters, or a bad bound or order.
        """
        words = search_words(query)
        if order not in SEARCH_ORDERS:
            raise ValueError(f"order must be one of {', '.join(SEARCH_ORDERS)}, not {order!r}")
        if isinstance(channels, str):
            raise TypeError("channels is an iterable of channel names, not one string")
        names = None if channels is None else list(dict.fromkeys(channels))
        bounds = (
            None if before is None else search_epoch(before, "before"),
            None if after is None else search_epoch(after, "after"),
        )
        if names == []:
            return []
        where = ["m.workspace_id = :workspace", "NOT m.deleted"]
        params: dict[str, Any] = {"workspace": workspace_id, "window": SEARCH_WINDOW}
        if names is not None:
            where.append("m.channel IN :channels")
            params["channels"] = names
        if sender is not None:
            where.append("m.sender = :sender")
            params["sender"] = sender
        if bounds[0] is not None:
            where.append("m.ts_epoch < :before")
            params["before"] = bounds[0]
        if bounds[1] is not None:
            where.append("m.ts_epoch > :after")
            params["after"] = bounds[1]
        columns = ", ".join(f"m.{c.name}" for c in _ROW_COLUMNS)
        # The window: the newest SEARCH_WINDOW matches (by num, the order of arrival) that
        # pass the filters; ranked, then cut to `limit`. The index is walked newest first
        # and stops there, so a word found in half the hub costs a bounded walk.
        pg = self.dialect == "postgresql"
        if pg:
            # The query parsed as the text was (plainto_tsquery ANDs its words and reads
            # no operators): e-mail addresses, hosts or 3.14 stay one lexeme on both sides.
            params["words"] = query
            tsquery = f"plainto_tsquery('{migrations.PG_FTS_CONFIG}', :words)"
            where.insert(0, f"{migrations.pg_fts_vector('m.content')} @@ {tsquery}")
            hits = (
                f"SELECT {columns}, m.pk AS num, m.ts_epoch FROM messages AS m "
                f"WHERE {' AND '.join(where)} AND m.pk >= :floor "
                f"ORDER BY {_PG_NUM_UNINDEXED} DESC LIMIT :window"
            )
            # Normalization 1 divides by 1 + log(length), as bm25 weighs long texts down.
            rank = f"ts_rank({migrations.pg_fts_vector('hits.content')}, {tsquery}, 1)"
            best_first = "rank DESC"
        else:
            params["match"] = fts5_query(words)
            fts = migrations.FTS_TABLE
            # CROSS JOIN keeps the full-text index the outer loop (SQLite's planner would
            # rather walk messages by pk and probe the index for each row).
            hits = (
                f"SELECT {columns}, m.pk AS num, m.ts_epoch, bm25({fts}) AS score "
                f"FROM {fts} CROSS JOIN messages AS m ON m.pk = {fts}.rowid "
                f"WHERE {fts} MATCH :match AND {' AND '.join(where)} "
                f"ORDER BY {fts}.rowid DESC LIMIT :window"
            )
            rank = "-hits.score"
            best_first = "hits.score"
        newest = "hits.ts_epoch DESC, hits.num DESC"
        shown = ", ".join(f"hits.{c.name}" for c in _ROW_COLUMNS)
        sql = _search_text(
            f"SELECT {shown}, hits.num, {rank} AS rank FROM ({hits}) AS hits "
            f"ORDER BY {newest if order == 'newest' else best_first + ', ' + newest} "
            "LIMIT :limit",
            params,
        ).columns(*_ROW_COLUMNS)
        params["limit"] = max(1, min(SEARCH_MAX_LIMIT, _int_or(limit, SEARCH_DEFAULT_LIMIT)))
        with self.engine.connect() as conn:
            if pg:
                # psycopg prepares a statement run five times, and a generic plan of
                # it knows neither the words nor the ranges: it would walk the
                # primary key, testing every row against the query.
                conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                params["floor"] = _pg_window_floor(conn, " AND ".join(where), params)
            rows = conn.execute(sql, params).all()
            out = [row_dict(row) for row in rows]
            fold_rows(conn, out)  # the current state, as history shows it
        for item, row in zip(out, rows, strict=True):
            item["rank"] = float(row.rank)
        return out

    # -- persister side -------------------------------------------------------
    def max_seq(self, workspace_id: str, channel: str) -> int:
        """The channel's last seq: messages and channel events share one seq stream."""
        top = 0
        with self.engine.connect() as conn:
            for table in (messages, channel_events):
                value = conn.execute(
                    sa.select(sa.func.max(table.c.seq)).where(
                        table.c.workspace_id == workspace_id, table.c.channel == channel
                    )
                ).scalar()
                top = max(top, int(value or 0))
        return top

    def find_messages(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Stored messages by (workspace_id, msg_id): rows as in history, plus workspace_id.
        Ids are the senders' own, so an id means something only inside its workspace."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        by_workspace: dict[str, list[str]] = {}
        for workspace_id, msg_id in dict.fromkeys(keys):
            by_workspace.setdefault(workspace_id, []).append(msg_id)
        m = messages
        with self.engine.connect() as conn:
            for workspace_id, ids in by_workspace.items():
                for start in range(0, len(ids), FIND_CHUNK):
                    chunk = ids[start : start + FIND_CHUNK]
                    rows = conn.execute(
                        sa.select(*_ROW_COLUMNS).where(
                            m.c.workspace_id == workspace_id, m.c.msg_id.in_(chunk)
                        )
                    ).all()
                    items = [row_dict(row) for row in rows]
                    fold_rows(conn, items)
                    for item in items:
                        item["workspace_id"] = workspace_id
                        found[(workspace_id, item["msg_id"])] = item
        return found

    def insert_messages(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one transaction (all or nothing); raises on any failure.

        Each row: msg_id, workspace_id, channel, seq, ts, ts_epoch, sender,
        sender_type, content, mentions, metadata, attachments.
        """
        dumps = json_dumps
        first = self.max_num() + 1
        self.insert_params(
            [
                (
                    r.get("pk") or first + i,
                    r["msg_id"],
                    r["workspace_id"],
                    r["channel"],
                    r["seq"],
                    r["ts"],
                    r["ts_epoch"],
                    r["sender"],
                    r["sender_type"],
                    r["content"],
                    dumps(r["mentions"]),
                    dumps(r["metadata"]),
                    dumps(r["attachments"]),
                )
                for i, r in enumerate(rows)
            ]
        )

    def subscriptions(self, workspace_id: str, agent: str) -> list[tuple[str, bool]]:
        """An agent's lasting subscriptions: [(channel, mention_only)], oldest first."""
        with self.engine.connect() as conn:
            return lasting_subscriptions(conn, workspace_id, agent)

    def registry(self, workspace_id: str | None) -> list[dict[str, Any]]:
        """The lasting agent registry (store_registry.entries)."""
        with self.engine.connect() as conn:
            return store_registry.entries(conn, workspace_id)

    def diagnoses(self, workspace_id: str | None) -> dict[tuple[str, str], dict[str, Any]]:
        """The agents' last reported diagnoses (store_registry.diagnoses)."""
        with self.engine.connect() as conn:
            return store_registry.diagnoses(conn, workspace_id)

    def max_num(self) -> int:
        """The highest hub number in use (0 in an empty hub): the persister counts on."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(messages.c.pk))).scalar() or 0)

    def insert_params(self, params: list[tuple[Any, ...]]) -> None:
        """The persister's hot path: rows as tuples in INSERT_COLUMNS order, JSON columns
        already encoded, straight to the DBAPI (multi-row INSERTs on SQLite, executemany
        on PostgreSQL), bypassing SQLAlchemy's per-row parameter processing (about half
        the cost). One transaction, all or nothing."""
        if not params:
            return
        if self.engine.dialect.name == "sqlite":
            self._insert_sqlite(params)
            return
        with write_tx(self._writable()) as conn:
            conn.exec_driver_sql(self._insert_sql, params)

    def _insert_sqlite(self, params: list[tuple[Any, ...]]) -> None:
        """The persister's hot path on SQLite: one held DBAPI connection, no pool
        checkout or engine events per batch (they cost more than the insert).

        Multi-row INSERTs of SQLITE_INSERT_CHUNK rows, not executemany: sqlite3 lets
        go of the GIL around each statement step, and executemany takes it back once
        per row, which stalls the persister's writer thread behind the decoding one.
        """
        raw = self._raw_writer
        if raw is None:
            raw = self._raw_writer = self._writable().raw_connection()
            raw.cursor().execute(f"PRAGMA cache_size = {SQLITE_WRITER_CACHE_SIZE}")
            raw.cursor().execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}")
        cur = raw.cursor()
        chunk = SQLITE_INSERT_CHUNK
        try:
            cur.execute("BEGIN IMMEDIATE")
            for start in range(0, len(params), chunk):
                part = params[start : start + chunk]
                cur.execute(
                    self._insert_rows_sql(len(part)), [value for row in part for value in row]
                )
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise _sqlalchemy_error(self._insert_sql, exc) from exc
        finally:
            cur.close()

    @staticmethod
    def _insert_rows_sql(count: int) -> str:
        sql = _ROWS_SQL.get(count)
        if sql is None:
            one = f"({', '.join(['?'] * len(INSERT_COLUMNS))})"
            sql = f"INSERT INTO messages ({', '.join(INSERT_COLUMNS)}) VALUES " + ", ".join(
                [one] * count
            )
            if len(_ROWS_SQL) < 64:
                _ROWS_SQL[count] = sql
        return sql

    @property
    def _insert_sql(self) -> str:
        return self.insert_sql()

    def insert_sql(self, extra: tuple[str, ...] = ()) -> str:
        """INSERT of one message row: INSERT_COLUMNS then `extra` columns, driver style."""
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        columns = (*INSERT_COLUMNS, *extra)
        return (
            f"INSERT INTO messages ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )

    def write_tx(self) -> Any:
        """A write transaction on the store (the persister's conversation path)."""
        return write_tx(self._writable())

    # -- conversations: the REST gateway's reads (docs/conversations.md) ------------------
    def message_by_num(self, workspace_id: str, num: int) -> dict[str, Any] | None:
        """The folded history row of hub number `num`, if it is in the workspace."""
        m = messages
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_ROW_COLUMNS).where(m.c.workspace_id == workspace_id, m.c.pk == num)
            ).all()
            found = list(_folded(conn, rows))
        return found[0] if found else None

    def thread(
        self, workspace_id: str, num: int, limit: int = HISTORY_MAX_LIMIT
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """A thread: its root (folded; None if `num` is not in the workspace) and its
        replies (messages whose thread root is `num`), oldest first, at most `limit`."""
        m = messages
        with self.engine.connect() as conn:
            roots = conn.execute(
                sa.select(*_ROW_COLUMNS).where(m.c.workspace_id == workspace_id, m.c.pk == num)
            ).all()
            if not roots:
                return None, []
            replies = conn.execute(
                sa.select(*_ROW_COLUMNS)
                .where(m.c.workspace_id == workspace_id, m.c.thread_root == num)
                .order_by(m.c.pk.asc())
                .limit(_clamp(limit))
            ).all()
            root = list(_folded(conn, roots))[0]
            return root, list(_folded(conn, replies))

    def reactions_of(self, workspace_id: str, nums: list[int]) -> dict[int, dict[str, Any]]:
        """The current reactions of the workspace's messages among `nums`: `{num: {"channel",
        "reactions": {emoji: [reactor, ...]}}}` (first added first); a message without
        reactions is listed with `{}`, a num not in the workspace is left out."""
        m, r = messages.c, reactions.c
        out: dict[int, dict[str, Any]] = {}
        wanted = list(dict.fromkeys(nums))
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), FIND_CHUNK):
                chunk = wanted[start : start + FIND_CHUNK]
                query = sa.select(m.pk, m.channel).where(
                    m.workspace_id == workspace_id, m.pk.in_(chunk)
                )
                for pk, channel in conn.execute(query):
                    out[pk] = {"channel": channel, "reactions": {}}
                found = [n for n in chunk if n in out]
                if not found:
                    continue
                for num, emoji, reactor in conn.execute(
                    sa.select(r.message_num, r.emoji, r.reactor)
                    .where(r.workspace_id == workspace_id, r.message_num.in_(found))
                    .order_by(r.message_num, r.created_at, r.reactor)
                ):
                    out[num]["reactions"].setdefault(emoji, []).append(reactor)
        return out

    def human_participants(self, workspace_id: str, names: list[str]) -> set[str]:
        """Which of `names` take part in a DM of the workspace as a person (`human:<name>`)."""
        d = dm_participants.c
        keys = [f"human:{name}" for name in dict.fromkeys(names)]
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), FIND_CHUNK):
                chunk = keys[start : start + FIND_CHUNK]
                found.update(
                    key.partition(":")[2]
                    for key in conn.execute(
                        sa.select(d.participant)
                        .where(d.workspace_id == workspace_id, d.participant.in_(chunk))
                        .distinct()
                    ).scalars()
                )
        return found

    def dms(
        self, workspace_id: str, participant: str | None = None, limit: int = HISTORY_MAX_LIMIT
    ) -> list[dict[str, Any]]:
        """The workspace's DM channels (those of `participant`, `agent:<name>`, when given),
        by name: `[{name, participants, last_seq}]`, at most `limit`."""
        d = dm_participants.c
        query = sa.select(d.channel).where(d.workspace_id == workspace_id)
        if participant is not None:
            query = query.where(d.participant == participant)
        query = query.distinct().order_by(d.channel).limit(_clamp(limit))
        out = []
        with self.engine.connect() as conn:
            names = list(conn.execute(query).scalars())
            for name in names:
                members = sorted(
                    conn.execute(
                        sa.select(d.participant).where(
                            d.workspace_id == workspace_id, d.channel == name
                        )
                    ).scalars()
                )
                top = 0
                for table in (messages, channel_events):
                    value = conn.execute(
                        sa.select(sa.func.max(table.c.seq)).where(
                            table.c.workspace_id == workspace_id, table.c.channel == name
                        )
                    ).scalar()
                    top = max(top, int(value or 0))
                out.append({"name": name, "participants": members, "last_seq": top})
        return out
