"""Web push subscriptions (table `push_subscriptions`, migration 7): per person of a
workspace, one row per browser endpoint, at most MAX_PER_PERSON (one more is refused,
LIMIT_EXCEEDED: the person removes one first, or the push worker removes the gone ones).

The persister is the writer: the HTTP gateway's routes (gateway_http/api_push.py) and
the push worker (bridges/push: subscriptions the push service calls gone) send a `push`
in-item, which the persister applies on its conversation path (`apply`, in the run's
transaction) and acks with its outcome. The push worker reads them (`of_people`).
`add` and `remove` on an engine do the same outside the persister (tests, tools).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.hub.tables import push_subscriptions as t
from scitex_orochi.protocol.constants import new_id, now_iso
from scitex_orochi.protocol.errors import ErrorCode

MAX_PER_PERSON = 10
ADD, REMOVE = "add", "remove"
ACTIONS = (ADD, REMOVE)


class PushSubscription(TypedDict):
    endpoint: str
    workspace_id: str
    person: str
    p256dh: str
    auth: str


class TooManySubscriptions(ValueError):
    """The person has MAX_PER_PERSON subscriptions already (LIMIT_EXCEEDED on the wire)."""


@dataclass(slots=True)
class PushChange:
    """A `push` in-item: store (`add`) or drop (`remove`) one endpoint's subscription.
    `outcome` once applied: added, updated, moved (it was another person's or
    workspace's), removed, not_found; or `error` (code, detail)."""

    origin: str
    workspace: str
    tk: Any
    ref: str
    action: str
    endpoint: str
    person: str = ""
    p256dh: str = ""
    auth: str = ""
    outcome: str = ""
    error: tuple[str, str] | None = None


def put(conn: Connection, sub: PushSubscription, limit: int = MAX_PER_PERSON) -> str:
    """Store one endpoint's subscription for its person; its outcome (added, updated,
    moved). Raises TooManySubscriptions when the person already has `limit` others."""
    old = conn.execute(
        sa.select(t.c.workspace_id, t.c.person).where(t.c.endpoint == sub["endpoint"])
    ).first()
    if old is not None and (old.workspace_id, old.person) == (sub["workspace_id"], sub["person"]):
        conn.execute(
            t.update()
            .where(t.c.endpoint == sub["endpoint"])
            .values(p256dh=sub["p256dh"], auth=sub["auth"])
        )
        return "updated"
    others = conn.execute(
        sa.select(sa.func.count())
        .select_from(t)
        .where(t.c.workspace_id == sub["workspace_id"], t.c.person == sub["person"])
    ).scalar_one()
    if others >= limit:
        raise TooManySubscriptions(
            f"{sub['person']!r} has {others} push subscriptions in workspace "
            f"{sub['workspace_id']!r}, the most there may be ({limit}): remove one "
            "(DELETE /api/push/subscriptions) before adding another"
        )
    if old is not None:
        conn.execute(t.delete().where(t.c.endpoint == sub["endpoint"]))
    conn.execute(t.insert().values(**sub, created_at=datetime.now(UTC).isoformat()))
    return "added" if old is None else "moved"


def drop(conn: Connection, endpoint: str, workspace_id: str | None = None) -> bool:
    query = t.delete().where(t.c.endpoint == endpoint)
    if workspace_id is not None:
        query = query.where(t.c.workspace_id == workspace_id)
    return bool(conn.execute(query).rowcount)


def apply(conn: Connection, change: PushChange, limit: int = MAX_PER_PERSON) -> PushChange:
    """The persister's step for one `push` in-item, in the run's transaction."""
    if change.action == REMOVE:
        change.outcome = "removed" if drop(conn, change.endpoint, change.workspace) else "not_found"
        return change
    sub = PushSubscription(
        endpoint=change.endpoint,
        workspace_id=change.workspace,
        person=change.person,
        p256dh=change.p256dh,
        auth=change.auth,
    )
    try:
        change.outcome = put(conn, sub, limit)
    except TooManySubscriptions as exc:
        change.error = (ErrorCode.LIMIT_EXCEEDED, str(exc))
    return change


def add(engine: sa.Engine, sub: PushSubscription, limit: int = MAX_PER_PERSON) -> str:
    with write_tx(engine) as conn:
        return put(conn, sub, limit)


def remove(engine: sa.Engine, endpoint: str, workspace_id: str | None = None) -> bool:
    with write_tx(engine) as conn:
        return drop(conn, endpoint, workspace_id)


def of_people(engine: sa.Engine, workspace_id: str, people: list[str]) -> list[PushSubscription]:
    if not people:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.endpoint, t.c.workspace_id, t.c.person, t.c.p256dh, t.c.auth).where(
                t.c.workspace_id == workspace_id, t.c.person.in_(people)
            )
        ).all()
    return [
        PushSubscription(endpoint=r[0], workspace_id=r[1], person=r[2], p256dh=r[3], auth=r[4])
        for r in rows
    ]


def of_person(engine: sa.Engine, workspace_id: str, person: str) -> list[dict[str, str]]:
    """A person's subscriptions, oldest first: endpoint and created_at (never the keys)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.endpoint, t.c.created_at)
            .where(t.c.workspace_id == workspace_id, t.c.person == person)
            .order_by(t.c.created_at, t.c.endpoint)
        ).all()
    return [{"endpoint": r[0], "created_at": r[1]} for r in rows]


def envelope(
    action: str, endpoint: str, person: str = "", p256dh: str = "", auth: str = ""
) -> dict[str, Any]:
    """The frame of a `push` in-item (persister/rows.parse_push), posted with admin=True."""
    payload: dict[str, Any] = {"action": action, "endpoint": endpoint}
    if action == ADD:
        payload.update(p256dh=p256dh, auth=auth)
    return {
        "type": "push",
        "sender": person or "push",
        "id": new_id(),
        "ts": now_iso(),
        "payload": payload,
    }
