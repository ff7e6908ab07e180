"""The persister's I/O loop: the single writer and sequencer of messages.

Takes `in.` bodies off the bus in bursts, dedupes them by (workspace, id) (a
bounded LRU of recently stored ids, then the database), assigns each channel's next seq,
inserts the batch in one transaction, and only after the commit publishes
`dlv.` then `ack.` for each message. A failed commit is retried with backoff;
nothing is acked that is not committed.

Commits run on one writer thread, one batch at a time, while this loop decodes
and prepares the next burst (the database step and fsync run without the GIL);
the writer also publishes each committed batch, on its own PUB socket.
The next batch's seqs count on the one in flight; if that commit fails, both are
redone in order on the synchronous path, which retries, dedupes against the
database and isolates bad messages.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from scitex_orochi.hub import store_push, store_registry
from scitex_orochi.hub.bus import SyncBus
from scitex_orochi.hub.bus_bodies import AckBody, AckItem, Delivery, DeliveryBody
from scitex_orochi.hub.store import Store
from scitex_orochi.hub.store_conv import Diagnosis, Forget, Subscription
from scitex_orochi.protocol import topics
from scitex_orochi.protocol.conversations import is_dm

from . import conversation
from .rows import (
    DUPLICATE_ID,
    INVALID_MESSAGE,
    Inbound,
    InvalidInbound,
    ack_body,
    build_message,
    change_ack,
    delivery_from_row,
    error_ack,
    event_delivery,
    parse_change,
    parse_diagnosis,
    parse_forget,
    parse_inbound,
    parse_push,
    parse_subscription,
    push_ack,
)

log = logging.getLogger("orochi.persister")

RECV_TIMEOUT_S = 0.2
# The persister allocates thousands of small objects per batch and keeps a large LRU:
# with CPython's default thresholds the cyclic GC rescans that LRU over and over.
GC_THRESHOLD = (100_000, 50, 1000)
RECENT_IDS_MAX = 100_000
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
SUMMARY_EVERY_S = 30.0
TOPIC_CACHE_MAX = 50_000
KNOWN_DMS_MAX = 50_000
CHANGE_TYPES = frozenset(("react", "edit", "delete"))
# The agent registry: presence records coalesced per agent, written every few seconds.
REGISTRY_FLUSH_S = 2.0
REGISTRY_PENDING_MAX = 20_000  # agents with an unwritten update (then flushed at once)

# The writer thread gets the GIL back after each statement; with the default 5 ms
# switch interval it would wait behind the decoding loop for that long each time.
SWITCH_INTERVAL_S = 0.001

SeqKey = tuple[str, str]
MsgKey = tuple[str, str]  # (workspace, message id)
Outcome = tuple[Inbound, Delivery | None, bool]  # (message, delivery, duplicate)


@dataclass(slots=True)
class Batch:
    """A prepared burst: the rows to insert and what to publish once they are committed."""

    msgs: list[Inbound]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    out: list[Outcome] = field(default_factory=list)
    fresh: dict[MsgKey, Delivery] = field(default_factory=dict)  # new deliveries


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying as they are: lost connections, a locked SQLite file."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Persister:
    # What the persister's bus subscribes to: inbound bodies, and presence for the registry.
    TOPICS = (topics.INBOUND, topics.PRESENCE)

    def __init__(
        self, store: Store, bus: SyncBus, batch_max: int, recent_max: int = RECENT_IDS_MAX
    ) -> None:
        self.store = store
        self.bus = bus
        self.batch_max = batch_max
        self.recent_max = recent_max
        self.stopping = threading.Event()
        self._seqs: dict[SeqKey, int] = {}
        self._num: int | None = None  # the last hub number handed out (None: read it)
        self._known_dms: set[SeqKey] = set()  # DM channels whose participants are stored
        self._registry: dict[tuple[str, str], dict[str, Any]] = {}  # unwritten entries
        self._registry_due = time.monotonic() + REGISTRY_FLUSH_S
        self._registry_write: Future[int] | None = None
        self.registry_written = 0
        self._recent: OrderedDict[MsgKey, None] = OrderedDict()  # recently stored ids
        self._dlv_topics: dict[Any, bytes] = {}
        self._ack_topics: dict[Any, bytes] = {}
        self.stored = 0
        self.dups = 0
        self.batches = 0
        self.rejected = 0
        self._reported = (0, 0, 0, 0)
        self._next_summary = time.monotonic() + SUMMARY_EVERY_S
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="persister-writer")
        # The writer's own PUB socket: prove it with bus.wait_ready(via=...) before run().
        self.announcer = bus.publisher()
        self._inflight: tuple[Future[tuple[int, int]], Batch] | None = None

    # -- loop -------------------------------------------------------------------
    def run(self) -> None:
        gc.set_threshold(*GC_THRESHOLD)
        gc.freeze()  # what start-up allocated is never garbage
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            while not self.stopping.is_set():
                # With a commit in flight, take what has arrived without waiting for more.
                burst = self.bus.recv_burst(
                    limit=self.batch_max, timeout_s=0.0 if self._inflight else RECV_TIMEOUT_S
                )
                inbound = []
                for topic, body in burst:
                    if topic.startswith(topics.INBOUND):
                        inbound.append(body)
                    elif topic.startswith(topics.PRESENCE):
                        self._note_presence(body)
                self._dispatch(self._parse(inbound))
                if self._registry and (
                    time.monotonic() >= self._registry_due
                    or len(self._registry) >= REGISTRY_PENDING_MAX
                ):
                    self._flush_registry()
                if time.monotonic() >= self._next_summary:
                    self._summary()
        finally:
            self.close()

    def close(self) -> None:
        """Finish the commit in flight (acking it if it succeeded), write the registry's
        last updates, and stop the writer."""
        self._settle()
        if self._registry:
            self._flush_registry()
        if self._registry_write is not None:
            try:
                self._registry_write.result(timeout=10)
            except Exception as exc:  # noqa: BLE001 - logged; the registry is best effort
                log.warning("last registry write failed: %s", exc)
        self._writer.shutdown(wait=True)
        self.announcer.close()

    def stop(self) -> None:
        self.stopping.set()

    def _summary(self) -> None:
        self._next_summary = time.monotonic() + SUMMARY_EVERY_S
        now = (self.stored, self.batches, self.dups, self.rejected)
        if now != self._reported:
            d = [a - b for a, b in zip(now, self._reported, strict=True)]
            log.info(
                "last %.0fs: stored %d in %d batches, %d dups, %d rejected (total stored %d)",
                SUMMARY_EVERY_S,
                d[0],
                d[1],
                d[2],
                d[3],
                self.stored,
            )
            self._reported = now

    # -- one burst ------------------------------------------------------------------
    def _parse(self, bodies: list[Any]) -> list[conversation.Item]:
        msgs: list[conversation.Item] = []
        for body in bodies:
            try:
                frame = body.get("frame") if isinstance(body, dict) else None
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind in CHANGE_TYPES:
                    msgs.append(parse_change(body))
                elif kind == "subscription":
                    msgs.append(parse_subscription(body))
                elif kind == "push":
                    msgs.append(parse_push(body))
                elif kind == "forget":
                    forget = parse_forget(body)
                    for name in forget.names:
                        if self._registry.pop((forget.workspace, name), None) is not None:
                            forget.pending.add(name)
                    msgs.append(forget)
                elif kind == "diagnosis":
                    diagnosis = parse_diagnosis(body)
                    for update in diagnosis.updates:
                        row = self._registry.pop((diagnosis.workspace, update["agent"]), None)
                        if row is not None:
                            diagnosis.rows.append(row)
                    msgs.append(diagnosis)
                else:
                    msgs.append(parse_inbound(body))
            except InvalidInbound as exc:
                self._reject(
                    exc.origin, exc.msg_id, INVALID_MESSAGE, exc.detail, exc.tk, exc.workspace
                )
        return msgs

    # -- the agent registry ----------------------------------------------------------
    def _note_presence(self, body: Any) -> None:
        """A presence delta: its agent's registry entry, kept until the next flush."""
        record = body.get("agent") if isinstance(body, dict) else None
        if not isinstance(record, dict):
            return
        row = store_registry.row_of(record, time.time())
        if row is not None:
            self._registry[(row["workspace_id"], row["name"])] = row

    def _flush_registry(self) -> None:
        """Hand the coalesced entries to the writer (between batches: the message path
        never waits for it; the previous registry write is done or failed by then)."""
        previous = self._registry_write
        if previous is not None and not previous.done():
            return  # still writing: keep coalescing
        if previous is not None and previous.exception() is not None:
            log.warning("registry write failed, retrying: %s", previous.exception())
        rows, self._registry = self._registry, {}
        self._registry_due = time.monotonic() + REGISTRY_FLUSH_S
        self._registry_write = self._writer.submit(self._write_registry, rows)

    def _write_registry(self, rows: dict[tuple[str, str], dict[str, Any]]) -> int:
        try:
            with self.store.write_tx() as conn:
                written = store_registry.upsert(conn, rows.values())
        except SQLAlchemyError:
            for key, row in rows.items():  # kept for the next flush, unless newer ones came
                self._registry.setdefault(key, row)
            raise
        self.registry_written += written
        return written

    def _dispatch(self, items: list[conversation.Item]) -> None:
        """A burst in arrival order: runs of plain messages take the pipelined fast path;
        changes, replies and first DM messages the conversation path."""
        run: list[Inbound] = []
        slow: list[conversation.Item] = []
        known = self._known_dms
        for item in items:
            if isinstance(item, Inbound) and not conversation.needs_database(item, known):
                if slow:
                    self._conversation(slow)
                    slow = []
                run.append(item)
            else:
                if run:
                    self._advance(run)
                    run = []
                slow.append(item)
        if slow:
            self._conversation(slow)
        if run or not items:
            self._advance(run)

    def _next_seq(self, workspace: str, channel: str) -> int:
        key = (workspace, channel)
        seq = self._next_base(key) + 1
        self._seqs[key] = seq
        return seq

    def _next_num(self) -> int:
        num = self._num
        if num is None:
            num = self.store.max_num()
        self._num = num + 1
        return num + 1

    def _conversation(self, items: list[conversation.Item]) -> None:
        """Store a run on the conversation path, after the batch in flight, retrying as
        the fast path does; a run that keeps failing for a data reason is split."""
        self._settle()
        delay = BACKOFF_START_S
        data_errors = 0
        while not self.stopping.is_set():
            try:
                self._writer.submit(self._write_conversation, items).result()
                return
            except SQLAlchemyError as exc:
                self._seqs.clear()
                self._num = None
                if not is_transient(exc):
                    data_errors += 1
                    if data_errors > 1:
                        if len(items) == 1:
                            self._reject_item(items[0], exc)
                        else:
                            for item in items:
                                self._conversation([item])
                        return
                log.warning(
                    "conversation write of %d items failed, retrying in %.2fs: %s",
                    len(items),
                    delay,
                    str(exc).splitlines()[0][:300],
                )
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_MAX_S)
        log.info("stopping with %d unstored conversation items (not acked)", len(items))

    def _reject_item(self, item: conversation.Item, exc: SQLAlchemyError) -> None:
        cause = (exc.orig if isinstance(exc, StatementError) else None) or exc
        detail = f"cannot be stored: {str(cause).splitlines()[0][:200]}"
        if isinstance(item, Inbound):
            self._reject(item.origin, item.msg_id, INVALID_MESSAGE, detail, item.tk, item.workspace)
        else:
            self._reject(item.origin, item.ref, INVALID_MESSAGE, detail, item.tk, item.workspace)

    def _write_conversation(self, items: list[conversation.Item]) -> None:
        """Writer thread: commit the run, then announce it (nothing if the commit raises)."""
        results = conversation.write_run(self.store, items, self._next_seq, self._next_num)
        for result in results:
            if isinstance(result, tuple):
                msg, delivery, dup = result
                if delivery is not None and not dup:
                    self.stored += 1
                    if is_dm(msg.channel):
                        if len(self._known_dms) >= KNOWN_DMS_MAX:
                            self._known_dms.clear()
                        self._known_dms.add((msg.workspace, msg.channel))
        self._announce([], results)

    def _advance(self, msgs: list[Inbound]) -> None:
        """Prepare `msgs` while the batch in flight commits, then hand them to the writer."""
        batch = None
        if msgs:
            try:
                batch = self._prepare(msgs)
            except SQLAlchemyError:  # a channel's last seq could not be read
                batch = None
        if not self._settle() or (msgs and batch is None):
            # The batch in flight failed (this one counted on its seqs), or this one could
            # not be prepared: the synchronous path, in arrival order.
            if msgs:
                self._store_with_retry(msgs)
            return
        if batch is not None:
            self._inflight = (self._writer.submit(self._write, batch), batch)

    def _settle(self) -> bool:
        """Wait for the batch in flight and publish it. False if its commit failed; its
        messages then went through the synchronous path (or, when stopping, stay unacked
        for their gateways to republish)."""
        if self._inflight is None:
            return True
        future, batch = self._inflight
        self._inflight = None
        try:
            counts = future.result()
        except SQLAlchemyError:
            self._seqs.clear()  # tentative: the database has the committed ones
            self._num = None
            if not self.stopping.is_set():
                self._store_with_retry(batch.msgs)
            return False
        self._committed(batch, counts)
        return True

    def _reject(
        self,
        origin: str | None,
        msg_id: str | None,
        code: str,
        detail: str,
        tk: Any = None,
        workspace: str | None = None,
    ) -> None:
        self.rejected += 1
        log.warning("rejected message %s from %s: %s", msg_id, origin, detail)
        if origin and msg_id:
            self.bus.publish(
                topics.ack(origin), AckBody(items=[error_ack(msg_id, code, detail, tk, workspace)])
            )

    def _store_with_retry(self, msgs: list[Inbound]) -> bool:
        """Commit and publish `msgs`; False when abandoned because we are stopping."""
        delay = BACKOFF_START_S
        data_errors = 0
        while True:
            try:
                self._commit(msgs)
                return True
            except SQLAlchemyError as exc:
                self._forget_seqs(msgs)
                if not is_transient(exc):
                    data_errors += 1
                    if data_errors > 1:
                        return self._isolate(msgs, exc)
                log.warning(
                    "commit of %d messages failed, retrying in %.2fs: %s",
                    len(msgs),
                    delay,
                    str(exc).splitlines()[0][:300],
                )
            if self.stopping.wait(delay):
                log.info("stopping with %d uncommitted messages (they were not acked)", len(msgs))
                return False
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _isolate(self, msgs: list[Inbound], exc: SQLAlchemyError) -> bool:
        """A batch that keeps failing for a non-transient reason: find the bad message(s)."""
        if len(msgs) == 1:
            msg = msgs[0]
            cause = (exc.orig if isinstance(exc, StatementError) else None) or exc
            self._reject(
                msg.origin,
                msg.msg_id,
                INVALID_MESSAGE,
                f"cannot be stored: {str(cause).splitlines()[0][:200]}",
                msg.tk,
                msg.workspace,
            )
            return True
        log.warning("batch of %d keeps failing, storing one by one", len(msgs))
        for msg in msgs:
            if not self._store_with_retry([msg]):
                return False
        return True

    def _forget_seqs(self, msgs: list[Inbound]) -> None:
        for msg in msgs:
            self._seqs.pop((msg.workspace, msg.channel), None)
        self._num = None

    def _next_base(self, key: SeqKey) -> int:
        base = self._seqs.get(key)
        if base is None:
            base = self.store.max_seq(*key)
            self._seqs[key] = base
        return base

    def _known(self, msgs: list[Inbound], check_store: bool) -> dict[MsgKey, Delivery]:
        """Delivery bodies of already stored messages, by (workspace, id).

        The batch in flight knows its own; an id in the recent-ids LRU (ids only, not
        messages: its memory is bounded by `recent_max`) is read back from the
        database, as is every id when `check_store` (after a unique violation).
        """
        known: dict[MsgKey, Delivery] = {}
        lookup: list[MsgKey] = []
        recent = self._recent
        pending = self._inflight[1].fresh if self._inflight else {}
        for msg in msgs:
            key = msg.key
            hit = pending.get(key)
            if hit is not None:
                known[key] = hit
            elif check_store or key in recent:
                lookup.append(key)
        if lookup:
            for key, row in self.store.find_messages(lookup).items():
                known[key] = delivery_from_row(row)
        return known

    def _prepare(self, msgs: list[Inbound], check_store: bool = False) -> Batch:
        """Dedupe, assign seqs (after those of the batch in flight) and build rows."""
        batch = Batch(msgs)
        known = self._known(msgs, check_store)
        assigned: dict[SeqKey, int] = {}
        num: int | None = None
        rows, out, fresh = batch.rows, batch.out, batch.fresh
        for msg in msgs:
            prior = known.get(msg.key)
            if prior is not None:
                out.append((msg, prior, True))
                continue
            key = (msg.workspace, msg.channel)
            seq = assigned.get(key, 0) or self._next_base(key)
            if num is None:
                num = self.store.max_num() if self._num is None else self._num
            try:
                row, delivery = build_message(msg, seq + 1, num + 1)
            except (TypeError, ValueError) as exc:
                out.append((msg, None, False))
                log.debug("unencodable message %s: %s", msg.msg_id, exc)
                continue
            num += 1
            assigned[key] = seq + 1
            rows.append(row)
            known[msg.key] = fresh[msg.key] = delivery
            out.append((msg, delivery, False))
        self._seqs.update(assigned)  # tentative until committed: failures forget them
        if num is not None:
            self._num = num
        return batch

    def _commit(self, msgs: list[Inbound], check_store: bool = False) -> None:
        """The synchronous path. Insert first; only a unique violation (an id stored
        before the LRU knew it, e.g. republished after a restart) pays for looking ids
        up in the database."""
        batch = self._prepare(msgs, check_store)
        try:
            counts = self._writer.submit(self._write, batch).result()
        except IntegrityError:
            if check_store:
                raise
            self._forget_seqs(msgs)
            self._commit(msgs, check_store=True)
            return
        self._committed(batch, counts)

    def _write(self, batch: Batch) -> tuple[int, int]:
        """Writer thread: commit the batch, then announce it; (dups, rejected).
        Nothing is published if the commit raises."""
        if batch.rows:
            self.store.insert_params(batch.rows)
        return self._announce(batch.out)

    def _committed(self, batch: Batch, counts: tuple[int, int]) -> None:
        """Main thread, once the writer committed and announced `batch`."""
        if batch.rows:
            self.batches += 1
            self.stored += len(batch.rows)
        self.dups += counts[0]
        self.rejected += counts[1]
        recent = self._recent
        for key in batch.fresh:
            recent[key] = None
        while len(recent) > self.recent_max:
            recent.popitem(last=False)

    @staticmethod
    def _remember(cache: dict[Any, bytes], key: Any, topic: bytes) -> bytes:
        if len(cache) >= TOPIC_CACHE_MAX:
            cache.clear()
        cache[key] = topic
        return topic

    def _announce(self, out: list[Outcome], mixed: list[Any] | None = None) -> tuple[int, int]:
        """Writer thread: one `dlv.` frame per channel and one `ack.` frame per origin for
        the whole batch, on the writer's own publisher; (dups, rejected). `mixed`: the
        conversation path's results (messages and changes, in seq order) instead."""
        publish = self.announcer.publish
        dups = rejected = 0
        dlv_groups: dict[SeqKey, list[Delivery]] = {}
        ack_groups: dict[str, list[AckItem]] = {}
        for entry in out if mixed is None else mixed:
            if isinstance(entry, Forget | Diagnosis):
                ack_groups.setdefault(entry.origin, []).append(
                    AckItem(tk=entry.tk, id=entry.ref, ws=entry.workspace, count=entry.count)
                )
                continue
            if isinstance(entry, store_push.PushChange):
                ack_groups.setdefault(entry.origin, []).append(push_ack(entry))
                continue
            if isinstance(entry, Subscription):  # recorded: its ack only empties ingest
                ack_groups.setdefault(entry.origin, []).append(
                    AckItem(tk=entry.tk, id=entry.ref, ws=entry.workspace)
                )
                continue
            if not isinstance(entry, tuple):  # a change's result
                ack = change_ack(entry)
                ack_groups.setdefault(entry.change.origin, []).append(ack)
                event = event_delivery(entry)
                if event is not None and not entry.dup:
                    dlv_groups.setdefault((event["ws"], event["channel"]), []).append(event)
                if entry.error is not None:
                    rejected += 1
                continue
            msg, delivery, dup = entry
            if delivery is None:
                code, detail = INVALID_MESSAGE, "message is not JSON-serializable"
            elif dup and delivery["sender"] != msg.sender:
                code, detail = DUPLICATE_ID, "this id belongs to another message"
            else:
                dups += dup
                dlv_groups.setdefault((delivery["ws"], delivery["channel"]), []).append(delivery)
                ack_groups.setdefault(msg.origin, []).append(ack_body(msg, delivery, dup))
                continue
            rejected += 1
            log.warning("rejected message %s from %s: %s", msg.msg_id, msg.origin, detail)
            ack_groups.setdefault(msg.origin, []).append(
                error_ack(msg.msg_id, code, detail, msg.tk, msg.workspace)
            )
        dlv_topics, ack_topics = self._dlv_topics, self._ack_topics
        for key, items in dlv_groups.items():
            topic = dlv_topics.get(key) or self._remember(dlv_topics, key, topics.deliver(*key))
            publish(topic, DeliveryBody(items=items))
        for origin, acks in ack_groups.items():
            topic = ack_topics.get(origin) or self._remember(ack_topics, origin, topics.ack(origin))
            publish(topic, AckBody(items=acks))
        return dups, rejected


def install_signal_handlers(persister: Persister) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        persister.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
