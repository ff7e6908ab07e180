"""The agent registry in the store: every agent name ever registered in a workspace, with
its last known profile, first and last seen, last task and last diagnosis.

The persister keeps it from the presence deltas on the bus (`upsert`, coalesced and
written between message batches, so the message path does not wait for it); the HTTP
gateway reads it (`entries`) to list agents that are offline, also after a restart;
operators forget agents (`forget`, `purge`) through the persister as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from scitex_orochi.hub.tables import agent_registry

PROFILE_KEYS = ("agent_id", "machine", "role", "model", "project", "multiplexer", "icon", "color")
MAX_PROFILE_CHARS = 1000  # per value: a record from another process is read defensively
MAX_TASK_CHARS = 1000
MAX_LIST = 10_000  # rows one read returns


def row_of(record: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """The registry row of a presence record, or None when it names no agent (or a
    one-shot client, which is not an agent of the fleet)."""
    ws, name = record.get("ws"), record.get("name")
    if not isinstance(ws, str) or not ws or not isinstance(name, str) or not name:
        return None
    if record.get("transient") is True:
        return None
    profile = {
        key: value[:MAX_PROFILE_CHARS]
        for key in PROFILE_KEYS
        if isinstance(value := record.get(key), str) and value
    }
    since, seen = record.get("since"), record.get("last_seen")
    last_seen = float(seen) if isinstance(seen, int | float) and not isinstance(seen, bool) else now
    first = float(since) if isinstance(since, int | float) and not isinstance(since, bool) else now
    task = record.get("current_task")
    return {
        "workspace_id": ws[:64],
        "name": name[:255],
        "profile": profile,
        "first_seen": min(first, last_seen),
        "last_seen": last_seen,
        "last_task": task[:MAX_TASK_CHARS] if isinstance(task, str) else "",
    }


def upsert(conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or update rows in one statement each (first_seen kept from the first)."""
    table = agent_registry
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    count = 0
    for row in rows:
        stmt = insert(table).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.workspace_id, table.c.name],
            set_={
                "profile": stmt.excluded.profile,
                "last_seen": sa.func.max(table.c.last_seen, stmt.excluded.last_seen)
                if conn.dialect.name == "sqlite"
                else sa.func.greatest(table.c.last_seen, stmt.excluded.last_seen),
                "last_task": stmt.excluded.last_task,
            },
        )
        conn.execute(stmt)
        count += 1
    return count


def entries(conn: Connection, workspace_id: str | None) -> list[dict[str, Any]]:
    """Registry rows of a workspace (every workspace for None), most recently seen first."""
    r = agent_registry.c
    query = sa.select(agent_registry).order_by(r.last_seen.desc()).limit(MAX_LIST)
    if workspace_id is not None:
        query = query.where(r.workspace_id == workspace_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def forget(conn: Connection, workspace_id: str, names: Iterable[str]) -> set[str]:
    """Delete the entries of `names`; the names that had one."""
    r = agent_registry.c
    names = list(names)
    found: set[str] = set()
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        where = (r.workspace_id == workspace_id, r.name.in_(chunk))
        found.update(conn.execute(sa.select(r.name).where(*where)).scalars())
        conn.execute(agent_registry.delete().where(*where))
    return found


def diagnose(
    conn: Connection, workspace_id: str, name: str, diagnosis: dict[str, Any], at: float
) -> bool:
    """Record the last diagnosis of an agent (`{status, reason, source, by, at}`); an
    agent the registry does not know yet gets its entry (a healer may report one the
    hub has not seen register). Whether the entry existed."""
    r = agent_registry.c
    done = conn.execute(
        agent_registry.update()
        .where(r.workspace_id == workspace_id, r.name == name)
        .values(last_diagnosis=diagnosis)
    )
    if done.rowcount:
        return True
    conn.execute(
        agent_registry.insert().values(
            workspace_id=workspace_id,
            name=name,
            profile={},
            first_seen=at,
            last_seen=at,
            last_task="",
            last_diagnosis=diagnosis,
        )
    )
    return False


def diagnoses(conn: Connection, workspace_id: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    """{(workspace, name): last diagnosis} of the agents that have one."""
    r = agent_registry.c
    query = (
        sa.select(r.workspace_id, r.name, r.last_diagnosis)
        .where(r.last_diagnosis.is_not(None))
        .limit(MAX_LIST)
    )
    if workspace_id is not None:
        query = query.where(r.workspace_id == workspace_id)
    return {
        (row.workspace_id, row.name): row.last_diagnosis
        for row in conn.execute(query)
        if isinstance(row.last_diagnosis, dict)
    }
