"""The five workloads: fleet, latency, connections, ingest, history.

Each takes a started target and a parameter set, runs bounded in count and in
time (a deadline per workload), and returns a flat dict of figures. Load runs
in this process (asyncio + websockets client, or the bus for ingest); the
servers are subprocesses. Both share the machine's cores.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sqlite3
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .agents import HEARTBEAT, Agent, close_all, connect_many
from .targets import OursTarget, PublishedTarget, Target

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Params:
    fleet_agents: int = 50
    fleet_senders: int = 5
    fleet_per_sender: int = 400
    fleet_window: int = 20
    fleet_rounds: int = 3
    msg_bytes: int = 200
    latency_agents: int = 10
    latency_messages: int = 1000
    latency_warmup: int = 50
    idle_agents: int = 5000
    idle_heartbeat_rounds: int = 2
    presence_queries: int = 50
    ingest_messages: int = 100_000
    ingest_window: int = 20_000
    history_rows: int = 1_000_000
    history_queries: int = 200
    storm_agents: int = 50
    storm_rounds: int = 5
    search_rows: int = 1_000_000
    search_pg_rows: int = 1_000_000
    search_queries: int = 300
    search_insert_rows: int = 200_000
    deadline_s: float = 120.0


QUICK = Params(
    fleet_agents=10,
    fleet_senders=2,
    fleet_per_sender=50,
    fleet_rounds=1,
    latency_agents=5,
    latency_messages=100,
    latency_warmup=10,
    idle_agents=200,
    idle_heartbeat_rounds=1,
    presence_queries=20,
    ingest_messages=5000,
    ingest_window=2000,
    history_rows=20_000,
    history_queries=50,
    storm_agents=10,
    storm_rounds=2,
    search_rows=20_000,
    search_pg_rows=20_000,
    search_queries=60,
    search_insert_rows=10_000,
    deadline_s=60.0,
)


class WorkloadSkipped(RuntimeError):
    """This workload does not apply to this target."""


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms_summary(prefix: str, ns_values: list[int]) -> dict[str, float | None]:
    ms = [v / NS_PER_MS for v in ns_values]
    return {
        f"{prefix}_p50_ms": pct(ms, 50),
        f"{prefix}_p99_ms": pct(ms, 99),
        f"{prefix}_mean_ms": statistics.fmean(ms) if ms else None,
    }


def content_of(t_ns: int, sender: str, n: int, size: int) -> str:
    head = f"{t_ns} {sender} {n} "
    return head + "x" * max(0, size - len(head))


def parse_content(content: str) -> tuple[int, str, int]:
    t, sender, n, _ = content.split(" ", 3)
    return int(t), sender, int(n)


# ---- fleet ---------------------------------------------------------------------
async def fleet(target: Target, p: Params) -> dict[str, Any]:
    """`fleet_rounds` runs of the fleet workload on one server (fresh agents and channel
    each): one run lasts a second or two, where one scheduling hiccup on a shared
    machine moves the figure by a third. Reports the median round, lists every round."""
    rounds = []
    for k in range(max(1, p.fleet_rounds)):
        rounds.append(await fleet_round(target, p, f"#fleet{k}", prefix=f"f{k}-"))
    ranked = sorted(rounds, key=lambda r: r["deliveries_per_s"])
    out = dict(ranked[len(ranked) // 2])
    out["rounds"] = len(rounds)
    out["deliveries_per_s_by_round"] = [round(r["deliveries_per_s"]) for r in rounds]
    return out


async def fleet_b(target: Target, p: Params) -> dict[str, Any]:
    """The fleet workload with every other receiver on dialect B (FLEET.md): the same
    messages, delivered to flat-frame sockets as well; compare with `fleet`."""
    if not isinstance(target, OursTarget):
        raise WorkloadSkipped("dialect B is ours")
    rounds = []
    for k in range(max(1, p.fleet_rounds)):
        rounds.append(await fleet_round(target, p, f"#fleetb{k}", prefix=f"b{k}-", b_share=True))
    ranked = sorted(rounds, key=lambda r: r["deliveries_per_s"])
    out = dict(ranked[len(ranked) // 2])
    out["rounds"] = len(rounds)
    out["deliveries_per_s_by_round"] = [round(r["deliveries_per_s"]) for r in rounds]
    return out


async def fleet_round(
    target: Target,
    p: Params,
    channel: str = "#fleet",
    prefix: str = "",
    b_share: bool = False,
) -> dict[str, Any]:
    """N agents in one channel; S of them send M messages each, at most W unacked each
    (`b_share`: every other receiver speaks dialect B)."""
    deadline = time.monotonic() + p.deadline_s
    names = [f"{prefix}fleet{i:03d}" for i in range(p.fleet_agents)]
    b_names = frozenset(
        n for i, n in enumerate(names) if b_share and i >= p.fleet_senders and i % 2
    )
    agents = await connect_many(
        target.url, names, [channel], concurrency=25, deadline=deadline, dialect_b=b_names
    )
    # connect_many lists agents as they finish connecting: pick the senders by dialect
    # (dialect B gets no acks, so a B sender would stall on its window).
    senders = [a for a in agents if a.name not in b_names][: p.fleet_senders]
    expected = p.fleet_senders * p.fleet_per_sender * (len(agents) - 1)
    e2e: list[int] = []
    acks: list[int] = []
    seen: set[tuple[str, str, int]] = set()
    sent_at: dict[str, int] = {}
    dups = 0
    last = [0]
    done = asyncio.Event()
    windows = {a.name: asyncio.Semaphore(p.fleet_window) for a in senders}
    acked = [0]
    total_msgs = p.fleet_senders * p.fleet_per_sender

    def check_done() -> None:
        if len(seen) >= expected and acked[0] >= total_msgs:
            done.set()

    def on_message(agent: Agent, frame: dict[str, Any], t: int) -> None:
        nonlocal dups
        try:
            payload = frame.get("payload")
            text = payload["content"] if payload is not None else frame["text"]  # A or B
            t0, sender, n = parse_content(text)
        except (KeyError, ValueError, TypeError):
            return
        key = (agent.name, sender, n)
        if key in seen:
            dups += 1
            return
        seen.add(key)
        e2e.append(t - t0)
        last[0] = t
        check_done()

    def on_ack(agent: Agent, ref: str, t: int) -> None:
        t0 = sent_at.pop(ref, None)
        if t0 is None:
            return
        acks.append(t - t0)
        acked[0] += 1
        windows[agent.name].release()
        last[0] = max(last[0], t)
        check_done()

    for agent in agents:
        agent.on_message = on_message
        agent.on_ack = on_ack

    async def send_all(agent: Agent) -> None:
        window = windows[agent.name]
        for n in range(p.fleet_per_sender):
            await window.acquire()
            t0 = time.perf_counter_ns()
            msg_id = f"{agent.name}-{n}-{uuid.uuid4().hex[:8]}"
            sent_at[msg_id] = t0
            await agent.send(
                "message",
                {"channel": channel, "content": content_of(t0, agent.name, n, p.msg_bytes)},
                msg_id,
            )

    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(send_all(a)) for a in senders]
    try:
        await asyncio.wait_for(done.wait(), max(1.0, deadline - time.monotonic()))
    except TimeoutError:
        pass
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_all(agents)
    duration_s = max(1e-9, (last[0] - start) / 1e9)
    out: dict[str, Any] = {
        "agents": len(agents),
        "messages": total_msgs,
        "deliveries": len(seen),
        "expected_deliveries": expected,
        "deliveries_per_s": len(seen) / duration_s,
        "messages_per_s": acked[0] / duration_s,
        "completeness_pct": 100.0 * len(seen) / expected if expected else 0.0,
        "acked": acked[0],
        "duplicates": dups,
        "duration_s": duration_s,
    }
    out.update(ms_summary("ack", acks))
    out.update(ms_summary("e2e", e2e))
    return out


# ---- latency ------------------------------------------------------------------
async def latency(target: Target, p: Params) -> dict[str, Any]:
    """One sender, one message in flight: wait for its ack and every delivery, then the next."""
    return await _latency_run(target.url, p, "#latency", "lat", time.monotonic() + p.deadline_s)


async def _latency_run(
    url: str, p: Params, channel: str, prefix: str, deadline: float
) -> dict[str, Any]:
    names = [f"{prefix}{i:02d}" for i in range(p.latency_agents)]
    agents = await connect_many(url, names, [channel], concurrency=10, deadline=deadline)
    sender, receivers = agents[0], agents[1:]
    e2e: list[int] = []
    acks: list[int] = []
    state: dict[str, Any] = {"n": -1, "got": 0, "acked": False, "t0": 0, "event": None}

    def on_message(agent: Agent, frame: dict[str, Any], t: int) -> None:
        try:
            t0, _, n = parse_content(frame["payload"]["content"])
        except (KeyError, ValueError, TypeError):
            return
        if n != state["n"]:
            return
        state["got"] += 1
        if state["record"]:
            e2e.append(t - t0)
        if state["got"] >= len(receivers) and state["acked"]:
            state["event"].set()

    def on_ack(agent: Agent, ref: str, t: int) -> None:
        if ref != state["id"]:
            return
        state["acked"] = True
        if state["record"]:
            acks.append(t - state["t0"])
        if state["got"] >= len(receivers):
            state["event"].set()

    for agent in receivers:
        agent.on_message = on_message
    sender.on_ack = on_ack
    complete = 0
    total = p.latency_warmup + p.latency_messages
    for n in range(total):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter_ns()
        state.update(
            n=n,
            got=0,
            acked=False,
            t0=t0,
            event=asyncio.Event(),
            id=f"{prefix}-{n}-{uuid.uuid4().hex[:8]}",
            record=n >= p.latency_warmup,
        )
        await sender.send(
            "message",
            {"channel": channel, "content": content_of(t0, sender.name, n, p.msg_bytes)},
            state["id"],
        )
        try:
            await asyncio.wait_for(state["event"].wait(), 5.0)
            complete += n >= p.latency_warmup
        except TimeoutError:
            pass
    await close_all(agents)
    out: dict[str, Any] = {
        "agents": len(agents),
        "messages": p.latency_messages,
        "completeness_pct": 100.0 * complete / p.latency_messages,
    }
    out.update(ms_summary("e2e", e2e))
    out.update(ms_summary("ack", acks))
    return out


# ---- noisy neighbour --------------------------------------------------------------
FLOOD_WINDOW = 500  # unacked frames each flooder keeps in flight
FLOOD_WARMUP_S = 1.0


async def _flood(
    url: str, names: list[str], channel: str, p: Params, stop: asyncio.Event, counts: dict[str, int]
) -> None:
    """Each agent sends as fast as the hub lets it, FLOOD_WINDOW frames in flight."""
    agents = await connect_many(url, names, [channel], concurrency=10)
    windows = {a.name: asyncio.Semaphore(FLOOD_WINDOW) for a in agents}

    def on_ack(agent: Agent, ref: str, t: int) -> None:
        counts["answered"] += 1
        windows[agent.name].release()

    for agent in agents:
        agent.on_ack = on_ack

    async def pump(agent: Agent) -> None:
        n = 0
        while not stop.is_set() and not agent.closed:
            await windows[agent.name].acquire()
            n += 1
            counts["sent"] += 1
            await agent.send(
                "message",
                {
                    "channel": channel,
                    "content": content_of(time.perf_counter_ns(), agent.name, n, p.msg_bytes),
                },
                f"{agent.name}-{n}",
            )

    tasks = [asyncio.create_task(pump(a)) for a in agents]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_all(agents)


async def noisy(target: Target, p: Params) -> dict[str, Any]:
    """A quiet workspace's latency (the latency workload) alone, then while two agents of
    another workspace flood as fast as the hub lets them: the ratio of the p99s."""
    flood_url = target.workspace_url("noisy") if hasattr(target, "workspace_url") else None
    if flood_url is None:
        raise WorkloadSkipped("needs a second workspace")
    deadline = time.monotonic() + p.deadline_s
    quiet = await _latency_run(target.url, p, "#quiet", "qa", deadline)
    stop = asyncio.Event()
    counts = {"sent": 0, "answered": 0}
    flood = asyncio.create_task(
        _flood(flood_url, ["flood-a", "flood-b"], "#flood", p, stop, counts)
    )
    try:
        await asyncio.sleep(FLOOD_WARMUP_S)  # past the flooders' burst: the steady state
        before = dict(counts)
        t0 = time.monotonic()
        loaded = await _latency_run(target.url, p, "#quiet2", "qb", deadline)
        flood_s = time.monotonic() - t0
        during = {k: counts[k] - before[k] for k in counts}
    finally:
        stop.set()
        await flood
    out: dict[str, Any] = {
        "quiet_p99_ms": quiet["e2e_p99_ms"],
        "loaded_p99_ms": loaded["e2e_p99_ms"],
        "quiet_p50_ms": quiet["e2e_p50_ms"],
        "loaded_p50_ms": loaded["e2e_p50_ms"],
        "flood_frames_per_s": during["answered"] / max(1e-9, flood_s),
        "completeness_pct": loaded["completeness_pct"],
    }
    if quiet["e2e_p99_ms"] and loaded["e2e_p99_ms"]:
        out["p99_ratio"] = loaded["e2e_p99_ms"] / quiet["e2e_p99_ms"]
    return out


# ---- connections ----------------------------------------------------------------
def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process_fd_limit(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/limits") as limits:
            text = limits.read()
        for line in text.splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


async def _settle_rss(target: Target, settle_s: float) -> int:
    await asyncio.sleep(settle_s)
    return target.rss_kb()


async def connections(target: Target, p: Params) -> dict[str, Any]:
    """N idle agents that register and heartbeat: memory per connection, presence latency."""
    deadline = time.monotonic() + p.deadline_s + p.idle_agents / 100
    limit = raise_fd_limit(p.idle_agents * 2 + 1000)
    server_limits = [x for x in (process_fd_limit(pid) for pid in target.pids()) if x]
    if limit < p.idle_agents + 100 or (server_limits and min(server_limits) < p.idle_agents):
        raise WorkloadSkipped(
            f"open-file limit too low (load {limit}, server "
            f"{min(server_limits) if server_limits else '?'})"
        )
    base_kb = await _settle_rss(target, 1.0)
    names = [f"idle{i:05d}" for i in range(p.idle_agents)]
    t0 = time.monotonic()
    agents = await connect_many(target.url, names, ["#idle"], concurrency=100, deadline=deadline)
    connect_s = time.monotonic() - t0
    sem = asyncio.Semaphore(200)

    async def beat(agent: Agent) -> None:
        async with sem:
            await agent.request("heartbeat", dict(HEARTBEAT))

    for _ in range(p.idle_heartbeat_rounds):
        await asyncio.gather(*(beat(a) for a in agents if not a.closed), return_exceptions=True)
    loaded_kb = await _settle_rss(target, 2.0)
    probe = agents[0]
    presence: list[int] = []
    listed = 0
    # 5,000 client connections make this process's cyclic GC pauses long enough to
    # show up as presence latency: keep them out of the measurement.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        listed = await _presence_queries(probe, p.presence_queries, deadline, presence)
    finally:
        gc.enable()
        gc.unfreeze()
    alive = sum(not a.closed for a in agents)
    await close_all(agents)
    n = max(1, alive)
    out: dict[str, Any] = {
        "connections": alive,
        "connect_s": connect_s,
        "rss_base_mb": base_kb / 1024,
        "rss_loaded_mb": loaded_kb / 1024,
        "rss_per_conn_kb": (loaded_kb - base_kb) / n,
        "presence_listed": listed,
        "processes": len(target.pids()),
    }
    out.update(ms_summary("presence", presence))
    return out


async def _presence_queries(probe: Agent, count: int, deadline: float, out: list[int]) -> int:
    """`presence` requests one at a time; appends latencies (ns); the agents listed."""
    listed = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        sent, _acked, replies = await probe.request("presence", {})
        for frame, t in replies:
            if frame.get("type") == "presence":
                out.append(t - sent)
                listed = len((frame.get("payload") or {}).get("agents") or {})
    return listed


# ---- ingest (our persister only) -------------------------------------------------
def ingest(target: Target, p: Params) -> dict[str, Any]:
    """Inbound bodies published straight on the bus; messages/s the persister acks (committed)."""
    if not isinstance(target, OursTarget):
        raise WorkloadSkipped("no bus: the persister path exists only in our hub")
    from scitex_orochi.hub.bus import SyncBus, new_origin, pack
    from scitex_orochi.protocol import topics

    cfg = target.cfg
    origin = new_origin("bench")
    bus = SyncBus.from_config(cfg, origin)
    try:
        bus.subscribe(topics.ack(origin))
        bus.wait_ready(30.0)
        in_topic = topics.inbound("default")
        now = datetime.now(UTC)
        content = "x" * p.msg_bytes
        bodies = []
        for i in range(p.ingest_messages):
            frame = {
                "type": "message",
                "sender": "bench-ingest",
                "id": uuid.uuid4().hex,
                "ts": (now + timedelta(microseconds=i)).isoformat(),
                "payload": {
                    "channel": f"#ingest{i % 4}",
                    "content": content,
                    "metadata": {},
                    "attachments": [],
                },
            }
            bodies.append(
                pack(
                    {
                        "origin": origin,
                        "ws": "default",
                        "sender_type": "agent",
                        "mentions": [],
                        "frame": frame,
                    }
                )
            )
        sent = acked = errors = 0
        deadline = time.monotonic() + p.deadline_s
        start = time.perf_counter()
        last = start
        while acked + errors < len(bodies) and time.monotonic() < deadline:
            while sent < len(bodies) and sent - acked - errors < p.ingest_window:
                bus.publish_raw(in_topic, bodies[sent])
                sent += 1
                if sent % 1000 == 0:
                    break
            for _topic, frame in bus.recv_burst(
                limit=10_000, timeout_s=0.001 if sent < len(bodies) else 0.2
            ):
                for body in frame.get("items") or ():
                    if body.get("error"):
                        errors += 1
                    else:
                        acked += 1
                last = time.perf_counter()
    finally:
        bus.close()
    elapsed = max(1e-9, last - start)
    return {
        "messages": len(bodies),
        "acked": acked,
        "errors": errors,
        "completeness_pct": 100.0 * acked / len(bodies),
        "duration_s": elapsed,
        "messages_per_s": acked / elapsed,
        "db": "postgresql" if cfg.db.url.startswith("postgresql") else "sqlite",
    }


# ---- history --------------------------------------------------------------------
HISTORY_CHANNEL = "#history"
FILL_BATCH = 20_000


def _history_rows(start: int, count: int, base: datetime) -> list[dict[str, Any]]:
    rows = []
    for seq in range(start + 1, start + count + 1):
        ts = base + timedelta(milliseconds=seq)
        rows.append(
            {
                "msg_id": f"h{seq:08d}",
                "workspace_id": "default",
                "channel": HISTORY_CHANNEL,
                "seq": seq,
                "ts": ts.isoformat(),
                "ts_epoch": ts.timestamp(),
                "sender": f"agent{seq % 50}",
                "sender_type": "agent",
                "content": "x" * 200,
                "mentions": [],
                "metadata": {},
                "attachments": [],
            }
        )
    return rows


REACTED_EVERY, EDITED_EVERY, REPLY_EVERY = 4, 9, 10


def fill_ours(target: OursTarget, rows: int) -> float:
    """Bulk-insert `rows` messages into our store, with conversations on them (every 4th
    message two reactions, every 9th edited, every 10th a reply in the thread of the
    one before it), so that history reads fold real state; seconds taken."""
    from scitex_orochi.hub.store import Store

    store = Store(target.db_url)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    try:
        for start in range(0, rows, FILL_BATCH):
            store.insert_messages(_history_rows(start, min(FILL_BATCH, rows - start), base))
        _fill_conversations(store, rows)
    finally:
        store.close()
    return time.perf_counter() - t0


def _fill_conversations(store: Any, rows: int) -> None:
    import sqlalchemy as sa

    from scitex_orochi.hub import tables

    m = tables.messages.c
    with store.engine.begin() as conn:
        first = conn.execute(
            sa.select(sa.func.min(m.pk)).where(m.channel == HISTORY_CHANNEL)
        ).scalar_one()
        for start in range(0, rows, FILL_BATCH):
            nums = range(first + start, first + min(rows, start + FILL_BATCH))
            reacted = [
                {
                    "message_num": n,
                    "emoji": emoji,
                    "reactor": f"agent{(n + k) % 50}",
                    "workspace_id": "default",
                    "created_at": "2026-01-01T00:00:00+00:00",
                }
                for n in nums
                if n % REACTED_EVERY == 0
                for k, emoji in enumerate(("👀", "✅"))
            ]
            conn.execute(tables.reactions.insert(), reacted)
            edited = [n for n in nums if n % EDITED_EVERY == 0]
            conn.execute(
                tables.messages.update()
                .where(m.pk.in_(edited))
                .values(edited_at="2026-01-02T00:00:00+00:00")
            )
            for n in nums:
                if n % REPLY_EVERY == 0:
                    conn.execute(
                        tables.messages.update().where(m.pk == n).values(thread_root=n - 1)
                    )


def fill_published(target: PublishedTarget, rows: int) -> float:
    """Bulk-insert into the published server's SQLite table (its own schema, created at start)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    conn = sqlite3.connect(target.db_path, timeout=30)
    try:
        for start in range(0, rows, FILL_BATCH):
            batch = _history_rows(start, min(FILL_BATCH, rows - start), base)
            conn.executemany(
                "INSERT INTO messages (msg_id, ts, channel, sender, content, mentions, metadata,"
                " sender_type) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
                [
                    (
                        r["msg_id"],
                        r["ts"],
                        r["channel"],
                        r["sender"],
                        r["content"],
                        r["sender_type"],
                    )
                    for r in batch
                ],
            )
            conn.commit()
    finally:
        conn.close()
    return time.perf_counter() - t0


async def history(target: Target, p: Params) -> dict[str, Any]:
    """`query` for the last 50 of a channel holding `history_rows` messages (filled beforehand)."""
    if not target.has_history:
        raise WorkloadSkipped("no storage")
    deadline = time.monotonic() + p.deadline_s
    agent = await Agent.connect(target.url, "hist-reader", ["#general"])
    ws_ns: list[int] = []
    returned = 0
    try:
        for _ in range(p.history_queries):
            if time.monotonic() > deadline:
                break
            sent, _acked, replies = await agent.request(
                "query", {"channel": HISTORY_CHANNEL, "limit": 50}
            )
            for frame, t in replies:
                rows = (frame.get("payload") or {}).get("history")
                if rows is not None:
                    ws_ns.append(t - sent)
                    returned = len(rows)
    finally:
        await agent.close()
    out: dict[str, Any] = {"rows": p.history_rows, "queries": len(ws_ns), "returned": returned}
    out.update(ms_summary("ws", ws_ns))
    if isinstance(target, OursTarget):
        out.update(ms_summary("raw", _raw_history(target, p)))
    return out


def _raw_history(target: OursTarget, p: Params) -> list[int]:
    from scitex_orochi.hub.store import Store

    store = Store(target.db_url, readonly=True)
    out = []
    try:
        store.history("default", HISTORY_CHANNEL, limit=50)  # warm the connection
        for _ in range(p.history_queries):
            t0 = time.perf_counter_ns()
            store.history("default", HISTORY_CHANNEL, limit=50)
            out.append(time.perf_counter_ns() - t0)
    finally:
        store.close()
    return out


# ---- reaction storm -------------------------------------------------------------
STORM_CHANNEL = "#storm"


async def storm(target: Target, p: Params) -> dict[str, Any]:
    """`storm_agents` agents (events capability) react at once to one message, for
    `storm_rounds` messages: every agent must get every other agent's reaction_update,
    in seq order, none lost; latency from the react to each delivery."""
    if not isinstance(target, OursTarget):
        raise WorkloadSkipped("reactions are ours (PROTOCOL.md §10)")
    deadline = time.monotonic() + p.deadline_s
    agents = [
        await Agent.connect(target.url, f"storm{i:03d}", [STORM_CHANNEL], capabilities=["events"])
        for i in range(p.storm_agents)
    ]
    got: dict[str, list[tuple[int, int, int]]] = {a.name: [] for a in agents}  # (num, seq, t)
    sent_at: dict[tuple[int, str], int] = {}
    lat_ns: list[int] = []
    lost = disorder = 0
    done = asyncio.Event()
    want = [0]

    def on_event(agent: Agent, frame: dict[str, Any], t: int) -> None:
        pl = frame.get("payload") or {}
        num, seq, reactor = int(pl.get("num") or 0), int(pl.get("seq") or 0), pl.get("reactor")
        got[agent.name].append((num, seq, t))
        start = sent_at.get((num, str(reactor)))
        if start is not None:
            lat_ns.append(t - start)
        if sum(len(v) for v in got.values()) >= want[0]:
            done.set()

    for agent in agents:
        agent.on_event = on_event
    rounds = 0
    t_all = time.perf_counter()
    try:
        for r in range(p.storm_rounds):
            if time.monotonic() > deadline:
                break
            _s, _a, _replies = await agents[0].request(
                "message", {"channel": STORM_CHANNEL, "content": f"storm {r}"}
            )
            history = await agents[0].request("query", {"channel": STORM_CHANNEL, "limit": 1})
            rows: list[dict[str, Any]] = next(
                (f["payload"]["history"] for f, _t in history[2] if "history" in f["payload"]),
                [],
            )
            num = rows[0]["num"]
            want[0] += p.storm_agents * (p.storm_agents - 1)
            done.clear()

            async def react(agent: Agent, num: int = num) -> None:
                sent_at[(num, agent.name)] = time.perf_counter_ns()
                await agent.request("react", {"message": num, "emoji": "👍"})

            await asyncio.gather(*(react(a) for a in agents))
            try:
                await asyncio.wait_for(done.wait(), max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            rounds += 1
    finally:
        elapsed = time.perf_counter() - t_all
        await close_all(agents)
    expected = rounds * p.storm_agents * (p.storm_agents - 1)
    received = sum(len(v) for v in got.values())
    lost = max(0, expected - received)
    for events in got.values():
        seqs = [seq for _num, seq, _t in events]
        disorder += sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b <= a)
    out: dict[str, Any] = {
        "agents": p.storm_agents,
        "rounds": rounds,
        "events_expected": expected,
        "events_received": received,
        "lost": lost,
        "out_of_order": disorder,
        "elapsed_s": round(elapsed, 3),
    }
    out.update(ms_summary("event", lat_ns))
    return out


WORKLOAD_FUNCS = {
    "fleet": fleet,
    "latency": latency,
    "connections": connections,
    "ingest": ingest,
    "history": history,
    "noisy": noisy,
    "storm": storm,
    "fleet_b": fleet_b,
}
