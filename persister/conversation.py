"""The persister's conversation path: changes, replies and DM messages, in one transaction.

What the fast path cannot do without reading the database goes here, in arrival
order, after the batch in flight has committed: a change (`react`, `edit`,
`delete`: its target is looked up, the rule checked, the channel's next seq taken
for the event), a reply (its thread root looked up, so that the delivery carries
`payload.thread`) and the first message of a DM (its participants recorded). One
transaction for a run of them; the caller publishes only once it committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scitex_orochi.hub import store_conv, store_push, store_registry
from scitex_orochi.hub.bus_bodies import Delivery
from scitex_orochi.hub.store import Store
from scitex_orochi.protocol import conversations as conv

from .rows import Inbound, build_message, delivery_from_row, ts_and_epoch

THREAD_COLUMNS = ("thread_root",)

Item = (
    Inbound
    | store_conv.Change
    | store_conv.Subscription
    | store_conv.Forget
    | store_push.PushChange
    | store_conv.Diagnosis
)
# A message's (message, delivery, dup), a change's result, or a recorded subscription.
Result = (
    tuple[Inbound, Delivery | None, bool]
    | store_conv.ChangeResult
    | store_conv.Subscription
    | store_conv.Forget
    | store_conv.Diagnosis
    | store_push.PushChange
)


def needs_database(msg: Inbound, known_dms: set[tuple[str, str]]) -> bool:
    """Whether storing `msg` needs a read first: a reply, or a DM not yet recorded."""
    metadata = msg.payload.get("metadata")
    if metadata and metadata.get("reply_to") not in (None, ""):
        return True
    return conv.is_dm(msg.channel) and (msg.workspace, msg.channel) not in known_dms


def write_run(
    store: Store,
    items: list[Item],
    next_seq: Callable[[str, str], int],
    next_num: Callable[[], int],
) -> list[Result]:
    """Store `items` in one transaction; their results in order. Raises on a database
    failure (nothing of the run is then stored)."""
    results: list[Result] = []
    insert = store.insert_sql(THREAD_COLUMNS)
    with store.write_tx() as conn:
        for item in items:
            if isinstance(item, store_conv.Change):
                results.append(store_conv.apply_change(conn, item, next_seq))
                continue
            if isinstance(item, store_conv.Subscription):
                store_conv.apply_subscription(conn, item)
                results.append(item)
                continue
            if isinstance(item, store_push.PushChange):
                results.append(store_push.apply(conn, item))
                continue
            if isinstance(item, store_conv.Forget):
                stored = store_registry.forget(conn, item.workspace, item.names)
                item.count = len(stored | item.pending)
                results.append(item)
                continue
            if isinstance(item, store_conv.Diagnosis):
                store_registry.upsert(conn, item.rows)
                for update in item.updates:
                    diagnosis = {k: v for k, v in update.items() if k != "agent"}
                    store_registry.diagnose(
                        conn, item.workspace, update["agent"], diagnosis, update["at"]
                    )
                item.count = len(item.updates)
                results.append(item)
                continue
            results.append(_message(conn, insert, item, next_seq, next_num))
    return results


def _message(
    conn: Any,
    insert: str,
    msg: Inbound,
    next_seq: Callable[[str, str], int],
    next_num: Callable[[], int],
) -> Result:
    stored = store_conv.stored_ids(conn, msg.workspace, [msg.msg_id])
    if msg.msg_id in stored:
        return (msg, delivery_from_row(stored[msg.msg_id]), True)
    thread = None
    reply_to = (msg.payload.get("metadata") or {}).get("reply_to")
    if reply_to not in (None, ""):
        thread = store_conv.thread_root_of(conn, msg.workspace, msg.channel, reply_to)
    if conv.is_dm(msg.channel):
        store_conv.record_dm(conn, msg.workspace, msg.channel, ts_and_epoch(None)[0])
    seq = next_seq(msg.workspace, msg.channel)
    num = next_num()
    try:
        params, delivery = build_message(msg, seq, num, thread)
    except (TypeError, ValueError):
        return (msg, None, False)
    conn.exec_driver_sql(insert, (*params, thread[0] if thread else None))
    return (msg, delivery, False)
