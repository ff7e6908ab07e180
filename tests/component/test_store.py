"""scitex_orochi.hub.store against a real SQLite file and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import stat
import statistics
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from scitex_orochi.hub import migrations, tables
from scitex_orochi.hub import store as store_module
from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.store import (
    Conflict,
    InviteError,
    ReadOnlyStore,
    Store,
    WorkspaceNotFound,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'orochi.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


def _row(seq, *, ws="default", channel="#general", msg_id=None, ts_epoch=None, sender="alice"):
    epoch = 1_700_000_000.0 + seq if ts_epoch is None else ts_epoch
    ts = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))
    return {
        "msg_id": msg_id or f"{ws}-{channel}-{seq}",
        "workspace_id": ws,
        "channel": channel,
        "seq": seq,
        "ts": ts,
        "ts_epoch": epoch,
        "sender": sender,
        "sender_type": "agent",
        "content": f"hello {seq} ü",
        "mentions": ["bob"] if seq % 2 else [],
        "metadata": {"n": seq},
        "attachments": [],
    }


def _index_names(store: Store) -> set[str]:
    return {ix["name"] for ix in sa.inspect(store.engine).get_indexes("messages")}


# -- migrations ---------------------------------------------------------------------------
def test_migrate_empty_then_noop(db_url):
    s = Store(db_url)
    assert s.schema_version() == 0
    assert s.migrate() == len(migrations.MIGRATIONS)
    assert s.migrate() == len(migrations.MIGRATIONS)
    with s.engine.connect() as conn:
        versions = conn.execute(sa.select(tables.schema_migrations.c.version)).scalars().all()
    assert sorted(versions) == [m[0] for m in migrations.MIGRATIONS]
    assert {"workspaces", "workspace_tokens", "invites", "messages"} <= set(
        sa.inspect(s.engine).get_table_names()
    )
    s.close()


def test_database_at_version_1_is_upgraded(db_url):
    s = Store(db_url)
    assert migrations.migrate(s.engine, migrations.MIGRATIONS[:1]) == 1
    assert "ix_messages_ws_channel_ts" not in _index_names(s)
    s.insert_messages([_row(1)])
    assert s.migrate() == len(migrations.MIGRATIONS)
    assert {"ix_messages_ws_channel_ts", "ix_messages_ws_pk"} <= _index_names(s)
    assert s.max_seq("default", "#general") == 1
    s.close()


V4_MESSAGE_COLUMNS = ("thread_root", "edited_at", "deleted")  # added by migration 4


def _v2_schema(engine: sa.Engine) -> None:
    """The schema as version 2 left it: message ids unique across the hub, no pinning."""
    old = sa.MetaData()
    sa.Table(
        "workspaces",
        old,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
    )
    sa.Table(
        "workspace_tokens",
        old,
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    sa.Table(
        "messages",
        old,
        sa.Column("pk", tables.BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(255), nullable=False, unique=True),
        *[
            sa.Column(c.name, c.type, nullable=False)
            for c in tables.messages.columns
            if c.name not in ("pk", "msg_id", *V4_MESSAGE_COLUMNS)
        ],
        sa.UniqueConstraint("workspace_id", "channel", "seq"),
    )
    with engine.begin() as conn:
        old.create_all(conn)
        tables.schema_migrations.create(conn)
        for version in (1, 2):
            conn.execute(
                tables.schema_migrations.insert().values(
                    version=version, name="old", applied_at="2025-01-01T00:00:00+00:00"
                )
            )
        migrations._v2_history_indexes(conn)
        conn.execute(sa.text("INSERT INTO workspaces VALUES ('default', 'default', '', '[]')"))
        conn.execute(
            sa.text("INSERT INTO workspace_tokens VALUES ('wks_old', 'default', 'old', '')")
        )


def test_version_2_is_upgraded_to_workspace_scoped_ids(db_url, tmp_path):
    """Ids were unique across the hub, so one workspace could take another's next id."""
    s = Store(db_url)
    _v2_schema(s.engine)
    with s.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO messages (msg_id, workspace_id, channel, seq, ts, ts_epoch, sender, "
            "sender_type, content, mentions, metadata, attachments) VALUES ('shared', "
            "'default', '#general', 1, 't', 1.0, 'alice', 'agent', 'kept', '[]', '{}', '[]')"
        )
    assert s.migrate() == len(migrations.MIGRATIONS)
    assert s.history("default", "#general")[0]["content"] == "kept"
    with s.engine.connect() as conn:  # migration 4's columns, with their defaults
        row = conn.execute(
            sa.select(*(tables.messages.c[name] for name in V4_MESSAGE_COLUMNS))
        ).one()
    assert tuple(row) == (None, None, False)
    s.insert_messages([_row(1, ws="ws2", msg_id="shared")])  # the same id elsewhere: fine
    with pytest.raises(IntegrityError):
        s.insert_messages([_row(2, msg_id="shared")])  # twice in one workspace: refused
    found = s.find_messages([("default", "shared"), ("ws2", "shared")])
    assert found[("default", "shared")]["content"] == "kept"
    assert found[("ws2", "shared")]["workspace_id"] == "ws2"
    assert s.authenticate("wks_old", "admin").agent_name is None
    pinned = s.create_token("default", "bot", agent_name="bot")
    assert s.authenticate(pinned["token"], "admin").agent_name == "bot"
    assert s.migrate() == len(migrations.MIGRATIONS)  # a no-op now
    s.close()


def test_concurrent_migrate_and_bootstrap(db_url, tmp_path):
    stores = [Store(db_url) for _ in range(4)]
    results: list = []
    errors: list = []
    barrier = threading.Barrier(len(stores))

    def work(s: Store) -> None:
        try:
            barrier.wait()
            version = s.migrate()
            results.append((version, s.bootstrap(tmp_path / "admin_token", None)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert {v for v, _ in results} == {len(migrations.MIGRATIONS)}
    assert len({b.default_token for _, b in results}) == 1
    assert len({b.admin_token for _, b in results}) == 1
    assert sum(b.default_token_generated for _, b in results) == 1
    assert len(stores[0].list_tokens("default")) == 1
    assert [w["id"] for w in stores[0].list_workspaces()] == ["default"]
    for s in stores:
        s.close()


# -- bootstrap and auth ---------------------------------------------------------------------
def test_bootstrap_idempotent(store, tmp_path):
    path = tmp_path / "data" / "admin_token"
    first = store.bootstrap(path, None)
    assert first.admin_generated and first.default_token_generated
    assert first.default_workspace_id == "default"
    assert first.default_token.startswith("wks_") and len(first.default_token) == 36
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.admin_token
    second = store.bootstrap(path, None)
    assert second.admin_token == first.admin_token and not second.admin_generated
    assert second.default_token == first.default_token and not second.default_token_generated
    ws = store.get_workspace("default")
    assert ws["name"] == "default" and ws["channels"] == ["#general"]


def test_bootstrap_given_admin_token_is_not_written(store, tmp_path):
    path = tmp_path / "admin_token"
    boot = store.bootstrap(path, "s3cret")
    assert boot.admin_token == "s3cret" and not boot.admin_generated
    assert not path.exists()


def test_authenticate(store, tmp_path):
    boot = store.bootstrap(tmp_path / "admin_token", "admin-token")
    admin = store.authenticate("admin-token", boot.admin_token)
    assert admin is not None and admin.is_admin and admin.workspace_id == "default"
    user = store.authenticate(boot.default_token, boot.admin_token)
    assert user is not None and not user.is_admin and user.workspace_id == "default"
    ws, token = store.create_workspace("team")
    other = store.authenticate(token, boot.admin_token)
    assert other is not None and other.workspace_id == ws["id"] and not other.is_admin
    for wrong in ("", "admin-toke", "wks_" + "0" * 32, boot.default_token + "x", None):
        assert store.authenticate(wrong, boot.admin_token) is None
    assert store.authenticate("", "") is None


# -- messages ----------------------------------------------------------------------------------
def test_history_order_since_limit_after_seq(store):
    store.insert_messages([_row(s) for s in range(1, 11)])
    store.insert_messages([_row(s, channel="#other") for s in range(1, 4)])
    store.insert_messages([_row(s, ws="ws2") for s in range(1, 4)])

    newest = store.history("default", "#general")
    assert [r["seq"] for r in newest] == list(range(10, 0, -1))
    assert set(newest[0]) == {
        "num",  # the hub number; folded fields appear only once set
        "msg_id",
        "ts",
        "channel",
        "sender",
        "content",
        "mentions",
        "metadata",
        "sender_type",
        "attachments",
        "seq",
    }
    assert newest[0]["content"] == "hello 10 ü" and newest[0]["metadata"] == {"n": 10}
    assert newest[1]["mentions"] == ["bob"] and newest[0]["mentions"] == []

    assert [r["seq"] for r in store.history("default", "#general", limit=3)] == [10, 9, 8]
    assert len(store.history("default", "#general", limit=0)) == 1
    assert len(store.history("default", "#general", limit=10**6)) == 10

    since = _row(7)["ts"]
    assert [r["seq"] for r in store.history("default", "#general", since=since)] == [10, 9, 8, 7]
    # The same instant written differently compares equal.
    since_z = since.replace("+00:00", "Z")
    assert [r["seq"] for r in store.history("default", "#general", since=since_z)][-1] == 7
    with pytest.raises(ValueError):
        store.history("default", "#general", since="yesterday")

    after = store.history("default", "#general", after_seq=4, limit=3)
    assert [r["seq"] for r in after] == [5, 6, 7]
    assert store.history("default", "#general", after_seq=10) == []
    assert [r["seq"] for r in store.history("default", "#other")] == [3, 2, 1]
    assert [r["seq"] for r in store.history("ws2", "#general")] == [3, 2, 1]
    assert store.history("nope", "#general") == []


def test_insert_is_atomic_and_unique(store):
    store.insert_messages([_row(1), _row(2)])
    with pytest.raises(IntegrityError):  # msg_id already stored
        store.insert_messages([_row(3), _row(4, msg_id=_row(1)["msg_id"])])
    with pytest.raises(IntegrityError):  # (ws, channel, seq) already taken
        store.insert_messages([_row(2, msg_id="fresh")])
    assert store.max_seq("default", "#general") == 2
    assert [r["seq"] for r in store.history("default", "#general")] == [2, 1]
    store.insert_messages([])


def test_max_seq_find_recent_channels(store):
    assert store.max_seq("default", "#general") == 0
    store.insert_messages(
        [_row(s) for s in (1, 2, 3)] + [_row(1, channel="#b")] + [_row(1, ws="ws2", channel="#c")]
    )
    assert store.max_seq("default", "#general") == 3
    assert store.max_seq("default", "#b") == 1
    two, other = ("default", _row(2)["msg_id"]), ("ws2", "ws2-#c-1")
    found = store.find_messages(
        [two, ("default", "missing"), other, ("ws2", _row(2)["msg_id"])]
    )  # an id of another workspace
    assert set(found) == {two, other}
    assert found[two]["workspace_id"] == "default"
    assert found[two]["seq"] == 2
    assert found[other]["workspace_id"] == "ws2"
    assert store.find_messages([]) == {}
    many = [two] + [("default", f"x{i}") for i in range(1200)]
    assert list(store.find_messages(many)) == [two]

    recent = store.recent("default", 3)
    assert [(r["channel"], r["seq"]) for r in recent] == [
        ("#general", 2),
        ("#general", 3),
        ("#b", 1),
    ]
    assert recent[0]["workspace_id"] == "default"
    assert len(store.recent(None, 100)) == 5
    assert store.recent(None, 1)[0]["workspace_id"] == "ws2"
    assert store.channels("default") == {"#b": 1, "#general": 3}
    assert store.channels("ws2") == {"#c": 1}
    assert store.channels("none") == {}


def test_history_is_fast_on_a_big_channel(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'big.db'}")
    s.migrate()
    n = 100_000
    base = _row(1)
    rows = [
        {
            **base,
            "msg_id": f"m{i}",
            "seq": i,
            "ts_epoch": base["ts_epoch"] + i,
            "channel": "#big" if i % 4 else "#small",
        }
        for i in range(1, n + 1)
    ]
    s.insert_messages(rows)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        rows = s.history("default", "#big", limit=50)
        timings.append(time.perf_counter() - started)
    assert len(rows) == 50 and rows[0]["seq"] == n - 1
    assert statistics.median(timings) < 0.01, timings
    started = time.perf_counter()
    assert len(s.history("default", "#big", after_seq=n - 200, limit=50)) == 50
    assert len(s.history("default", "#big", since="2100-01-01T00:00:00+00:00")) == 0
    assert time.perf_counter() - started < 0.05
    s.close()


# -- workspaces, tokens, invites ------------------------------------------------------------
def test_workspaces(store, tmp_path):
    store.bootstrap(tmp_path / "admin_token", "a")
    ws, token = store.create_workspace("team", ["#dev", "#ops"])
    assert ws["id"].startswith("ws_") and ws["channels"] == ["#dev", "#ops"]
    assert token.startswith("wks_")
    assert store.get_workspace(ws["id"]) == ws
    assert store.get_workspace("missing") is None
    assert [w["name"] for w in store.list_workspaces()] == ["default", "team"]
    with pytest.raises(Conflict):
        store.create_workspace("team")
    with pytest.raises(ValueError):
        store.create_workspace("  ")
    with pytest.raises(Conflict):
        store.delete_workspace("default")
    store.create_invite(ws["id"], 1)
    assert store.delete_workspace(ws["id"]) is True
    assert store.delete_workspace(ws["id"]) is False
    assert store.get_workspace(ws["id"]) is None
    assert store.authenticate(token, "a") is None
    assert store.list_invites(ws["id"]) == []


def test_tokens(store, tmp_path):
    boot = store.bootstrap(tmp_path / "admin_token", "a")
    tok = store.create_token("default", "laptop")
    assert tok["token"].startswith("wks_") and tok["label"] == "laptop"
    listed = store.list_tokens("default")
    assert {t["token"] for t in listed} == {boot.default_token, tok["token"]}
    assert store.authenticate(tok["token"], "a").workspace_id == "default"
    ws, _ = store.create_workspace("other")
    assert store.delete_token(ws["id"], tok["token"]) is False  # not that workspace's token
    assert store.delete_token("default", tok["token"]) is True
    assert store.delete_token("default", tok["token"]) is False
    assert store.authenticate(tok["token"], "a") is None
    with pytest.raises(WorkspaceNotFound):
        store.create_token("missing")


def test_invites(store, tmp_path):
    store.bootstrap(tmp_path / "admin_token", "a")
    ws, _ = store.create_workspace("team")
    inv = store.create_invite(ws["id"], max_uses=2)
    assert inv["token"].startswith("inv_") and inv["uses"] == 0 and inv["expires_at"] is None
    first_ws, first_token = store.redeem_invite(inv["token"])
    second_ws, second_token = store.redeem_invite(inv["token"])
    assert first_ws == second_ws == ws["id"] and first_token != second_token
    assert store.authenticate(second_token, "a").workspace_id == ws["id"]
    with pytest.raises(InviteError, match="used up"):
        store.redeem_invite(inv["token"])
    assert store.list_invites(ws["id"])[0]["uses"] == 2
    with pytest.raises(InviteError, match="unknown"):
        store.redeem_invite("inv_nope")

    timed = store.create_invite(ws["id"], max_uses=5, expires_in_s=3600)
    assert timed["expires_at"] > time.time()
    with store.engine.begin() as conn:  # move the expiry into the past
        conn.execute(
            tables.invites.update()
            .where(tables.invites.c.token == timed["token"])
            .values(expires_at=time.time() - 1)
        )
    with pytest.raises(InviteError, match="expired"):
        store.redeem_invite(timed["token"])

    with pytest.raises(WorkspaceNotFound):
        store.create_invite("missing", 1)
    with pytest.raises(ValueError):
        store.create_invite(ws["id"], 0)
    assert store.delete_invite("default", inv["token"]) is False
    assert store.delete_invite(ws["id"], inv["token"]) is True
    assert [i["token"] for i in store.list_invites(ws["id"])] == [timed["token"]]


def test_concurrent_redeem_respects_max_uses(db_url, tmp_path):
    s = Store(db_url)
    s.migrate()
    s.bootstrap(tmp_path / "admin_token", "a")
    inv = s.create_invite("default", max_uses=3)
    stores = [Store(db_url) for _ in range(8)]
    outcomes: list = []
    barrier = threading.Barrier(len(stores))

    def redeem(st: Store) -> None:
        barrier.wait()
        try:
            outcomes.append(st.redeem_invite(inv["token"]))
        except InviteError:
            outcomes.append(None)

    threads = [threading.Thread(target=redeem, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 8
    assert sum(o is not None for o in outcomes) == 3
    assert len(s.list_tokens("default")) == 1 + 3
    for st in [s, *stores]:
        st.close()


# -- engine details ---------------------------------------------------------------------------
def test_readonly_store_reads_but_never_writes(db_url, tmp_path):
    writer = Store(db_url)
    writer.migrate()
    writer.insert_messages([_row(1)])
    reader = Store(db_url, readonly=True)
    assert reader.history("default", "#general")[0]["seq"] == 1
    with pytest.raises(ReadOnlyStore):
        reader.insert_messages([_row(2)])
    with pytest.raises(ReadOnlyStore):
        reader.migrate()
    with pytest.raises(ReadOnlyStore):
        reader.create_workspace("x")
    writer.close()
    reader.close()


def test_sqlite_pragmas(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'a' / 'b' / 'p.db'}")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    s.close()
    sync = Config.load({"SCITEX_OROCHI_SQLITE_SYNC": "normal"}).db.sqlite_sync
    s = Store(f"sqlite:///{tmp_path / 'n.db'}", sqlite_sync=sync)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    s.close()
    with pytest.raises(ConfigError, match="SCITEX_OROCHI_SQLITE_SYNC='sometimes' is not one of"):
        Config.load({"SCITEX_OROCHI_SQLITE_SYNC": "sometimes"})
    with pytest.raises(ValueError):
        Store(f"sqlite:///{tmp_path / 'x.db'}", sqlite_sync="sometimes")


@pytest.mark.postgres
def test_plain_postgresql_url_is_accepted(pg_url):
    s = Store(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert s.dialect == "postgresql"
    assert s.migrate() == len(migrations.MIGRATIONS)
    s.close()


# -- conversations (migration 4) -------------------------------------------------------
def _insert(store: Store, table: sa.Table, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(table.insert().values(**values))


def test_conversation_tables_keep_their_rules(store):
    """One reaction per (message, emoji, reactor); one seq per channel across messages'
    events; one subscription per (workspace, agent, channel); one DM participant row."""
    store.insert_messages([_row(1)])
    with store.engine.connect() as conn:
        num = conn.execute(sa.select(tables.messages.c.pk)).scalar_one()
    now = "2026-12-02T00:00:00+00:00"
    reaction = {
        "message_num": num,
        "emoji": "👀",
        "reactor": "healer",
        "workspace_id": "default",
        "created_at": now,
    }
    _insert(store, tables.reactions, **reaction)
    _insert(store, tables.reactions, **{**reaction, "emoji": "✅"})
    with pytest.raises(IntegrityError):
        _insert(store, tables.reactions, **reaction)
    event = {
        "workspace_id": "default",
        "channel": "#general",
        "seq": 2,
        "kind": "reaction",
        "message_num": num,
        "actor": "healer",
        "ts": now,
        "ts_epoch": 1.0,
        "data": {"emoji": "👀", "action": "add"},
        "ref": "r-1",
    }
    assert store.max_seq("default", "#general") == 1
    _insert(store, tables.channel_events, **event)
    assert store.max_seq("default", "#general") == 2  # one seq stream: the persister resumes at 3
    _insert(store, tables.channel_events, **{**event, "channel": "#other", "ref": "r-2"})
    with pytest.raises(IntegrityError):
        _insert(store, tables.channel_events, **{**event, "ref": "r-3"})  # seq taken
    with pytest.raises(IntegrityError):  # one change frame is stored once
        _insert(store, tables.channel_events, **{**event, "seq": 3})
    sub = {
        "workspace_id": "default",
        "agent": "worker",
        "channel": "#general",
        "created_at": now,
        "updated_at": now,
    }
    _insert(store, tables.subscriptions, **sub)
    with pytest.raises(IntegrityError):
        _insert(store, tables.subscriptions, **sub)
    dm = {
        "workspace_id": "default",
        "channel": "dm:agent:a|agent:b",
        "participant": "agent:a",
        "created_at": now,
    }
    _insert(store, tables.dm_participants, **dm)
    _insert(store, tables.dm_participants, **{**dm, "participant": "agent:b"})
    with pytest.raises(IntegrityError):
        _insert(store, tables.dm_participants, **dm)
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(tables.subscriptions)).one()._mapping
        message = conn.execute(
            sa.select(*(tables.messages.c[name] for name in V4_MESSAGE_COLUMNS))
        ).one()
        edits = conn.execute(sa.select(sa.func.count()).select_from(tables.message_edits))
        assert edits.scalar_one() == 0
    # The defaults a subscription row takes: every message, read and write.
    assert (got["mention_only"], got["can_read"], got["can_write"]) == (False, True, True)
    assert tuple(message) == (None, None, False)


def test_a_version_3_database_gains_the_conversation_schema(db_url):
    """Migration 4 on a database that version 3 left: columns added with their defaults,
    the new tables created, rows kept."""
    s = Store(db_url)
    _v2_schema(s.engine)
    assert migrations.migrate(s.engine, migrations.MIGRATIONS[:3]) == 3
    s.insert_messages([_row(1)])  # the hot path's columns do not include the new ones
    inspector = sa.inspect(s.engine)
    before = {c["name"] for c in inspector.get_columns("messages")}
    if "deleted" in before:  # SQLite's v3 rebuild made the table of the current shape
        assert s.engine.dialect.name == "sqlite"
    assert s.migrate() == len(migrations.MIGRATIONS)
    inspector = sa.inspect(s.engine)
    assert set(V4_MESSAGE_COLUMNS) <= {c["name"] for c in inspector.get_columns("messages")}
    for table in tables.CONVERSATION_TABLES:
        assert inspector.has_table(table.name), table.name
    assert "ix_messages_ws_thread_root" in _index_names(s)
    assert [r["content"] for r in s.history("default", "#general")] == ["hello 1 ü"]
    s.insert_messages([_row(2)])
    with s.engine.connect() as conn:
        deleted = conn.execute(sa.select(tables.messages.c.deleted)).scalars().all()
    assert deleted == [False, False]
    s.close()


# -- full-text search (migration 5) ------------------------------------------------------
HISTORY_KEYS = set(_row(1)) - {"workspace_id", "ts_epoch"}


def _msg(seq, content, **kw):
    return {**_row(seq, **kw), "content": content}


def _num(store: Store, msg_id: str, ws: str = "default") -> int:
    m = tables.messages
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(m.c.pk).where(m.c.workspace_id == ws, m.c.msg_id == msg_id)
        ).scalar_one()


def _update(store: Store, num: int, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(tables.messages.update().where(tables.messages.c.pk == num).values(**values))


def _found(store: Store, query: str, **kw) -> list[str]:
    return [r["content"] for r in store.search("default", query, **kw)]


def test_search_finds_every_word_scoped_to_the_workspace(store):
    store.insert_messages(
        [
            _msg(1, "Deploy failed on node seven", sender="alice"),
            _msg(2, "the deploy passed", sender="bob"),
            _msg(3, "nothing to see here"),
            _msg(1, "deploy failed in the ops channel", channel="#ops", sender="bob"),
        ]
    )
    store.insert_messages([_msg(1, "deploy failed elsewhere", ws="ws2")])
    hits = store.search("default", "deploy FAILED")
    assert sorted(r["content"] for r in hits) == [
        "Deploy failed on node seven",
        "deploy failed in the ops channel",
    ]
    first = hits[0]
    assert set(first) == HISTORY_KEYS | {"num", "rank"}
    assert isinstance(first["rank"], float) and first["rank"] > 0
    assert first["num"] == _num(store, first["msg_id"])
    assert first["mentions"] in ([], ["bob"]) and isinstance(first["metadata"], dict)
    history = {r["msg_id"]: r for r in store.history("default", first["channel"])}
    assert {k: v for k, v in first.items() if k != "rank"} == history[first["msg_id"]]
    # Another workspace's rows are never returned, whatever the words.
    assert [r["content"] for r in store.search("ws2", "deploy")] == ["deploy failed elsewhere"]
    assert store.search("nope", "deploy") == []
    assert _found(store, "deploy missingword") == []
    # Case and diacritics (SQLite folds both; PostgreSQL's 'simple' folds case only).
    assert _found(store, "SEVEN") == ["Deploy failed on node seven"]


def test_search_filters_channels_sender_and_time(store):
    store.insert_messages(
        [_msg(s, f"report number {s}", sender="alice" if s % 2 else "bob") for s in range(1, 7)]
        + [_msg(1, "report from ops", channel="#ops"), _msg(1, "report in dm", channel="#dm")]
    )
    assert len(store.search("default", "report")) == 8
    assert sorted(_found(store, "report", channels=["#ops", "#dm"])) == [
        "report from ops",
        "report in dm",
    ]
    assert _found(store, "report", channels=("#ops",)) == ["report from ops"]
    assert _found(store, "report", channels=[]) == []  # may read nothing: finds nothing
    assert _found(store, "report", channels=["#general"], sender="bob", order="newest") == [
        "report number 6",
        "report number 4",
        "report number 2",
    ]
    # before/after are exclusive, on ts: ISO-8601 (any offset) or epoch seconds.
    after, before = _row(2)["ts"], _row(5)["ts_epoch"]
    between = ["report number 4", "report number 3"]  # the same rank: newest first
    assert _found(store, "report", channels=["#general"], after=after, before=before) == between
    assert (
        _found(
            store, "report", channels=["#general"], after=_row(2)["ts_epoch"], before=str(before)
        )
        == between
    )
    # seq 1 of each channel is the oldest instant: alice wrote all three.
    assert sorted(_found(store, "report", sender="alice", before=after.replace("+00:00", "Z"))) == [
        "report from ops",
        "report in dm",
        "report number 1",
    ]
    assert _found(store, "report", after=time.time() + 3600) == []
    for bad in ({"before": "yesterday"}, {"after": True}, {"after": "nan"}, {"order": "best"}):
        with pytest.raises(ValueError):
            store.search("default", "report", **bad)
    with pytest.raises(TypeError):
        store.search("default", "report", channels="#general")


def test_search_ranks_by_relevance_ties_newest_first(store):
    store.insert_messages(
        [
            _msg(1, "deploy checklist reviewed"),
            _msg(2, "deploy deploy deploy, deploy again"),
            _msg(3, "deploy checklist reviewed"),  # the same words, newer: before seq 1
            _msg(4, "unrelated text entirely"),
            _msg(5, "the deploy of the service to production is late, see the checklist"),
        ]
    )
    hits = store.search("default", "deploy")
    assert hits[0]["content"] == "deploy deploy deploy, deploy again"
    assert [r["seq"] for r in hits if r["content"] == "deploy checklist reviewed"] == [3, 1]
    assert hits[-1]["seq"] == 5  # the longest text that says it once
    ranks = [r["rank"] for r in hits]
    assert ranks == sorted(ranks, reverse=True) and len(hits) == 4
    newest = store.search("default", "deploy", order="newest")
    assert [r["seq"] for r in newest] == [5, 3, 2, 1]
    assert [r["seq"] for r in store.search("default", "deploy", limit=2)] == [2, 3]
    # limit is clamped to 1..200.
    assert len(store.search("default", "deploy", limit=0)) == 1
    store.insert_messages([_msg(s, "bulk deploy row") for s in range(10, 260)])
    assert len(store.search("default", "bulk", limit=10**6)) == 200
    assert len(store.search("default", "bulk", limit="x")) == 50


def test_search_ranks_the_newest_window_of_matches(store, monkeypatch):
    """A query matching more than SEARCH_WINDOW rows (after the filters) ranks the newest
    of them: the cost of a common word stays bounded. PostgreSQL finds the window's start
    walking back in growing ranges of num."""
    monkeypatch.setattr(store_module, "SEARCH_WINDOW", 3)
    rows = [_msg(s, f"filler text {s}") for s in range(1, 301)]
    for seq in (2, 40, 90, 150, 160, 250, 299):
        rows[seq - 1] = _msg(seq, f"needle {seq}", channel="#general")
    rows[1] = _msg(2, "needle needle needle")  # the best match, but old
    rows[39] = _msg(40, "needle in a side channel", channel="#side")
    store.insert_messages(rows)
    assert [r["seq"] for r in store.search("default", "needle")] == [299, 250, 160]
    assert [r["seq"] for r in store.search("default", "needle", order="newest")] == [299, 250, 160]
    assert [r["seq"] for r in store.search("default", "needle", channels=["#side"])] == [40]
    older = store.search("default", "needle", before=_row(150)["ts_epoch"])
    assert [r["seq"] for r in older] == [2, 90, 40]  # the newest three before 150, ranked
    monkeypatch.setattr(store_module, "SEARCH_WINDOW", 50)
    assert [r["seq"] for r in store.search("default", "needle")][0] == 2
    assert len(store.search("default", "needle")) == 7


def test_search_follows_edits_and_deletes(store):
    store.insert_messages([_msg(1, "the original wording"), _msg(2, "another original line")])
    num = _num(store, _row(1)["msg_id"])
    _update(store, num, content="entirely rewritten text", edited_at="2026-12-02T00:00:00+00:00")
    assert _found(store, "wording") == []
    assert _found(store, "original") == ["another original line"]
    assert _found(store, "rewritten") == ["entirely rewritten text"]
    _update(store, num, deleted=True, content="")  # the persister's tombstone
    assert _found(store, "rewritten") == [] and _found(store, "entirely") == []
    other = _num(store, _row(2)["msg_id"])
    _update(store, other, deleted=True)  # a tombstone that kept its text is not found either
    assert _found(store, "another") == []
    _update(store, other, deleted=False)
    assert _found(store, "another") == ["another original line"]
    with store.engine.begin() as conn:
        conn.execute(tables.messages.delete().where(tables.messages.c.pk == other))
    assert _found(store, "another") == []
    store.insert_messages([_msg(3, "the original wording, posted again")])
    assert _found(store, "original wording") == ["the original wording, posted again"]


def test_search_reads_no_syntax_from_the_query(store):
    store.insert_messages(
        [
            _msg(1, 'He said "alpha or beta" near the end'),
            _msg(2, "alpha beta gamma"),
            _msg(3, "error: build-4f3a failed (see log)"),
            _msg(4, "content: alpha and not beta"),
        ]
    )
    # FTS5 would read these as syntax (and fail on several); here they are words.
    assert _found(store, '"alpha" OR beta*') == ['He said "alpha or beta" near the end']
    assert _found(store, "NEAR(alpha, beta") == ['He said "alpha or beta" near the end']
    assert _found(store, "-gamma") == ["alpha beta gamma"]
    assert _found(store, "content:alpha NOT") == ["content: alpha and not beta"]
    assert _found(store, "build-4f3a (see") == ["error: build-4f3a failed (see log)"]
    for query in (
        '"unbalanced',
        "NEAR(",
        "alpha AND",
        "OR",
        "beta -",
        "^alpha",
        "(alpha",
        'a"b"c',
        "{content}: x",
        "alpha + beta",
        "col:*",
        "x" * 10,
    ):
        store.search("default", query)  # no error
    for query in ("", "   \n\t", "*", '- : "" ( ) ^ *', "x" * 501):
        with pytest.raises(ValueError):
            store.search("default", query)
    assert len(store.search("default", "alpha " * 83)) == 3  # 498 characters: one word


def test_search_indexes_a_huge_message(store):
    """A text whose tsvector would pass PostgreSQL's 1 MB limit is still stored (and found
    by its first words): the index reads the first PG_FTS_MAX_CHARS characters."""
    words = [f"w{n:06x}" for n in range(150_000)]
    store.insert_messages([_msg(1, "needle " + " ".join(words))])
    assert len(_found(store, "needle")) == 1
    assert len(_found(store, f"needle {words[1000]}")) == 1


def test_migration_5_indexes_rows_written_before_it(db_url):
    s = Store(db_url)
    assert migrations.migrate(s.engine, migrations.MIGRATIONS[:4]) == 4
    s.insert_messages(
        [
            _msg(1, "written before the index existed"),
            _msg(2, "also before, later deleted"),
            _msg(3, ""),
            _msg(1, "before, in another workspace", ws="ws2"),
        ]
    )
    _update(s, _num(s, _row(2)["msg_id"]), deleted=True)
    assert s.migrate() == len(migrations.MIGRATIONS)
    assert _found(s, "before") == ["written before the index existed"]
    assert [r["content"] for r in s.search("ws2", "before")] == ["before, in another workspace"]
    s.insert_messages([_msg(4, "written after the index existed")])
    assert sorted(_found(s, "written index")) == [
        "written after the index existed",
        "written before the index existed",
    ]
    assert s.migrate() == len(migrations.MIGRATIONS)  # a no-op: nothing indexed twice
    assert len(_found(s, "written index")) == 2
    s.close()


def _fts_documents(store: Store) -> dict[int, list[str]]:
    """Every row FTS5 holds and its terms in order (fts5vocab over the index itself)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_terms "
            "USING fts5vocab(main, messages_fts, 'instance')"
        )
        rows = conn.exec_driver_sql(
            "SELECT doc, term FROM temp.fts_terms ORDER BY doc, offset"
        ).all()
    out: dict[int, list[str]] = {}
    for doc, term in rows:
        out.setdefault(doc, []).append(term)
    return out


def test_sqlite_index_holds_exactly_the_live_rows(tmp_path):
    """The triggers keep FTS5 (external content: it trusts what it is told to delete)
    equal to "every row not deleted and not empty, by its current content"."""
    s = Store(f"sqlite:///{tmp_path / 'fts.db'}")
    s.migrate()
    s.insert_messages(
        [_msg(n, f"Row {n} Déjà-vu") for n in range(1, 6)] + [_msg(6, ""), _msg(7, "   ")]
    )
    nums = {n: _num(s, _row(n)["msg_id"]) for n in range(1, 8)}
    _update(s, nums[1], content="edited once")
    _update(s, nums[1], content="edited twice")
    _update(s, nums[2], deleted=True, content="")
    _update(s, nums[3], deleted=True)
    _update(s, nums[6], content="no longer empty")
    _update(s, nums[4], sender="someone else")  # not a column the index reads
    with s.engine.begin() as conn:
        conn.execute(tables.messages.delete().where(tables.messages.c.pk == nums[5]))
    assert _fts_documents(s) == {
        nums[1]: ["edited", "twice"],
        nums[4]: ["row", "4", "deja", "vu"],
        nums[6]: ["no", "longer", "empty"],
    }
    s.close()


def test_a_migration_missing_below_the_recorded_version_is_applied(db_url):
    """A database made without migration 5 (full-text search) but with the later ones
    gets it on the next migrate: the recorded numbers decide, not the highest."""
    s = Store(db_url)
    later = [m for m in migrations.MIGRATIONS if m[0] != 5]
    assert migrations.migrate(s.engine, later) == len(migrations.MIGRATIONS)
    s.insert_messages([{**_row(1), "content": "findable words here"}])
    assert s.migrate() == len(migrations.MIGRATIONS)
    assert [r["content"] for r in s.search("default", "findable")] == ["findable words here"]
    s.close()
