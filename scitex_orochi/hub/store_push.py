"""Web push subscriptions (table `push_subscriptions`, migration 6): per person of a
workspace, one row per browser endpoint, at most MAX_PER_PERSON (the oldest give way).

Plain functions over an engine: the HTTP gateway writes them (its admin store), the
push worker (bridges/push) reads them and deletes the ones the push service calls gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

import sqlalchemy as sa

from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.hub.tables import push_subscriptions as t

MAX_PER_PERSON = 10


class PushSubscription(TypedDict):
    endpoint: str
    workspace_id: str
    person: str
    p256dh: str
    auth: str


def add(engine: sa.Engine, sub: PushSubscription) -> None:
    """Store (or move) one endpoint's subscription; drop the person's oldest beyond the bound."""
    now = datetime.now(UTC).isoformat()
    with write_tx(engine) as conn:
        conn.execute(t.delete().where(t.c.endpoint == sub["endpoint"]))
        conn.execute(t.insert().values(**sub, created_at=now))
        rows = conn.execute(
            sa.select(t.c.endpoint)
            .where(t.c.workspace_id == sub["workspace_id"], t.c.person == sub["person"])
            .order_by(t.c.created_at.desc(), t.c.endpoint)
        ).all()
        for (endpoint,) in rows[MAX_PER_PERSON:]:
            conn.execute(t.delete().where(t.c.endpoint == endpoint))


def remove(engine: sa.Engine, endpoint: str, workspace_id: str | None = None) -> bool:
    with write_tx(engine) as conn:
        query = t.delete().where(t.c.endpoint == endpoint)
        if workspace_id is not None:
            query = query.where(t.c.workspace_id == workspace_id)
        return bool(conn.execute(query).rowcount)


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
