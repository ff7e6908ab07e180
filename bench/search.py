"""The search workload: `Store.search` on a store of `search_rows` messages (SQLite, and
PostgreSQL beside it), and what the full-text index costs the ingest hot path.

No hub runs: the store is the thing measured. The SQLite store is built once per
parameter set and kept under /tmp (`cache_path`); PostgreSQL is loaded into a throwaway
cluster each run. Texts are seeded: a Zipf draw over a vocabulary of common English and
technical words followed by made-up ones, plus ids and numbers as agents write them.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Log = Callable[[str], None]

NS_PER_MS = 1_000_000
GENERATOR_VERSION = 2  # bump when the texts change: the cached database is keyed by it
SEED = 11
VOCABULARY_SIZE = 40_000
ZIPF_S = 1.05
CHANNELS = ("#general", "#dev", "#ops", "#alerts", "#research", "#random", "#ci", "#design")
CHANNEL_WEIGHTS = (30, 20, 12, 10, 8, 8, 8, 4)
SENDERS = 40
OTHER_WORKSPACE = "ws_other"  # every tenth message: the search must never return them
BUILD_CHUNK = 2000  # rows per transaction, the persister's largest batch
READABLE = ("#general", "#dev", "#ops")  # the channel filter of the scoped queries

COMMON = (
    "the be to of and a in that have it for not on with he as you do at this but his by "
    "from they we say her she or an will my one all would there their what so up out if "
    "about who get which go me when make can like time no just him know take people into "
    "year your good some could them see other than then now look only come its over think "
    "also back after use two how our work first well way even new want because any these "
    "give day most us is was are been has had were said did getting made"
).split()
TECHNICAL = (
    "build test deploy failed passed error warning merge branch commit review patch fix "
    "release server client agent channel message queue worker latency throughput cache "
    "index query database migration schema config token session socket timeout retry "
    "backoff restart crash log trace metric alert dashboard pipeline runner artifact "
    "docker image container cluster node pod service endpoint request response header "
    "payload json yaml python rust golang typescript module package dependency version "
    "upgrade rollback snapshot backup restore disk memory cpu thread process lock "
    "deadlock race condition benchmark profile flame graph hotspot regression issue "
    "ticket sprint roadmap design proposal draft approve reject comment thread reply "
    "reaction emoji mention notify subscribe history search ranking tokenizer sqlite "
    "postgres vacuum checkpoint wal fsync replica leader follower election quorum"
).split()
ONSETS = tuple("bcdfghklmnprstvwz") + tuple("br ch cl dr fl gr pl pr sh sl st th tr".split())
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y")
CODAS = ("", "", "", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "x")


def vocabulary(rng: random.Random, size: int = VOCABULARY_SIZE) -> list[str]:
    """Common English words, then technical ones, then made-up words of 1-3 syllables."""
    words = list(dict.fromkeys(COMMON + TECHNICAL))
    seen = set(words)
    while len(words) < size:
        syllables = rng.choice((1, 2, 2, 2, 3, 3))
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_cum_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** s for rank in range(n)))


class Texts:
    """Seeded message texts: 1-120 words (median about 16), a word of rank r drawn with
    weight 1/(r+1)^ZIPF_S; one message in ten carries a build id, one in eight a number."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(random.Random(seed + 1))
        self.cum = zipf_cum_weights(len(self.words))

    def batch(self, count: int) -> list[str]:
        rng = self.rng
        lengths = [max(1, min(120, int(rng.lognormvariate(2.75, 0.6)))) for _ in range(count)]
        drawn = rng.choices(self.words, cum_weights=self.cum, k=sum(lengths))
        out = []
        at = 0
        for length in lengths:
            words = drawn[at : at + length]
            at += length
            if rng.random() < 0.1:
                words.append(f"build-{rng.getrandbits(24):06x}")
            if rng.random() < 0.125:
                words.insert(rng.randrange(len(words) + 1), str(rng.randrange(10_000)))
            text = " ".join(words)
            out.append(text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!", "")))
        return out


def message_params(start: int, texts: list[str], rng: random.Random) -> list[tuple[Any, ...]]:
    """Rows for `Store.insert_params` (INSERT_COLUMNS order, JSON already encoded)."""
    from datetime import UTC, datetime

    base = 1_767_225_600.0  # 2026-01-01T00:00:00Z; one message every 0.25 s
    channels = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS, k=len(texts))
    out = []
    for i, text in enumerate(texts):
        n = start + i
        epoch = base + n * 0.25
        workspace = OTHER_WORKSPACE if n % 10 == 9 else "default"
        out.append(
            (
                n + 1,  # the hub number (pk), as the persister allocates it
                f"s{n:08d}",
                workspace,
                channels[i],
                n + 1,  # unique per (workspace, channel): that is all the schema asks
                datetime.fromtimestamp(epoch, UTC).isoformat(),
                epoch,
                f"agent{rng.randrange(SENDERS):02d}",
                "agent",
                text,
                "[]",
                "{}",
                "[]",
            )
        )
    return out


def generate(rows: int, seed: int = SEED) -> Iterator[list[tuple[Any, ...]]]:
    """`rows` messages in chunks of BUILD_CHUNK, the same for the same seed."""
    texts = Texts(seed)
    rng = random.Random(seed + 2)
    for start in range(0, rows, BUILD_CHUNK):
        yield message_params(start, texts.batch(min(BUILD_CHUNK, rows - start)), rng)


def fill(store: Any, rows: int, seed: int = SEED) -> float:
    """Insert `rows` generated messages, one transaction per chunk; seconds taken."""
    t0 = time.perf_counter()
    for chunk in generate(rows, seed):
        store.insert_params(chunk)
    return time.perf_counter() - t0


def cache_path(rows: int, seed: int = SEED) -> Path:
    """Keyed by the parameters, the texts' version, the schema version and the FTS5 DDL."""
    import hashlib

    from scitex_orochi.hub import migrations

    version = max(m[0] for m in migrations.MIGRATIONS)
    ddl = hashlib.sha256("\n".join(migrations.SQLITE_FTS_DDL).encode()).hexdigest()[:8]
    name = f"orochi-bench-search-{rows}-s{seed}-g{GENERATOR_VERSION}-v{version}-{ddl}.db"
    return Path("/tmp") / name


def sqlite_store_file(rows: int, log: Log, seed: int = SEED) -> tuple[Path, float | None]:
    """The cached SQLite database of `rows` messages (built when missing); build seconds
    or None when it was cached."""
    from scitex_orochi.hub.store import Store

    path = cache_path(rows, seed)
    if path.exists():
        log(f"    using the cached {path}")
        return path, None
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        leftover.unlink(missing_ok=True)
    log(f"    building {rows:,} messages into {path}")
    store = Store(f"sqlite:///{tmp}", sqlite_sync="normal")
    try:
        store.migrate()
        took = fill(store, rows, seed)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    os.replace(tmp, path)
    log(f"    built in {took:.1f}s ({path.stat().st_size / 2**20:.0f} MiB)")
    return path, took


# ---- queries --------------------------------------------------------------------
KINDS = ("common1", "rare1", "common2", "mixed2", "common3", "mixed3")
COMMON_RANKS = (30, 500)  # past the stop-word-like head
RARE_RANKS = (3000, VOCABULARY_SIZE)
TOP_RANKS = (0, 10)  # "the", "be", "to": reported apart, outside the target


@dataclass(frozen=True)
class Search:
    kind: str
    query: str
    channels: tuple[str, ...] | None
    sender: str | None
    order: str


def queries(count: int, seed: int = SEED, kinds: tuple[str, ...] = KINDS) -> list[Search]:
    """`count` searches cycling through `kinds`; at random, a third scoped to READABLE
    channels, one in ten to a sender, one in five newest first."""
    words = vocabulary(random.Random(seed + 1))
    rng = random.Random(seed + 3)

    def pick(ranks: tuple[int, int]) -> str:
        return words[rng.randrange(*ranks)]

    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        if kind == "top1":
            chosen = [pick(TOP_RANKS)]
        else:
            size = int(kind[-1])
            rare = 1 if kind.startswith(("rare", "mixed")) else 0
            chosen = [pick(COMMON_RANKS) for _ in range(size - rare)]
            chosen += [pick(RARE_RANKS) for _ in range(rare)]
        rng.shuffle(chosen)
        out.append(
            Search(
                kind,
                " ".join(chosen),
                READABLE if rng.random() < 1 / 3 else None,
                f"agent{rng.randrange(SENDERS):02d}" if rng.random() < 0.1 else None,
                "newest" if rng.random() < 0.2 else "rank",
            )
        )
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_searches(store: Any, searches: list[Search], deadline: float) -> dict[str, Any]:
    """Time each search (after one warm-up pass over a few): p50/p99 overall and by kind."""
    for s in searches[:10]:
        store.search("default", s.query, channels=s.channels, sender=s.sender, order=s.order)
    by_kind: dict[str, list[float]] = {}
    returned = 0
    for s in searches:
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter_ns()
        rows = store.search("default", s.query, channels=s.channels, sender=s.sender, order=s.order)
        by_kind.setdefault(s.kind, []).append((time.perf_counter_ns() - t0) / NS_PER_MS)
        returned += len(rows)
    every = [v for values in by_kind.values() for v in values]
    out: dict[str, Any] = {
        "queries": len(every),
        "p50_ms": pct(every, 50),
        "p99_ms": pct(every, 99),
        "max_ms": max(every) if every else None,
        "mean_returned": returned / len(every) if every else None,
    }
    for kind, values in by_kind.items():
        out[f"{kind}_p99_ms"] = pct(values, 99)
    return out


# ---- the cost on the ingest hot path ------------------------------------------------
FTS_MIGRATION = 5


def without_fts() -> list[Any]:
    """Every migration but the full-text one: the schema the hot path had before it."""
    from scitex_orochi.hub import migrations

    return [m for m in migrations.MIGRATIONS if m[0] != FTS_MIGRATION]


def insert_cost(
    make_store: Callable[[bool], Any], rows: int, log: Log, rounds: int = 2
) -> dict[str, Any]:
    """`Store.insert_params` of `rows` messages in BUILD_CHUNK-row transactions (the
    persister's largest batch) into a fresh store without the index and one with it,
    alternating `rounds` times; the best round of each. `make_store(with_fts)` gives a
    fresh, migrated store."""
    chunks = list(generate(rows, SEED + 100))
    best: dict[bool, float] = {}
    for _ in range(rounds):
        for with_fts in (False, True):
            store = make_store(with_fts)
            try:
                t0 = time.perf_counter()
                for chunk in chunks:
                    store.insert_params(chunk)
                took = time.perf_counter() - t0
            finally:
                store.close()
            best[with_fts] = min(best.get(with_fts, took), took)
            kind = "with" if with_fts else "without"
            log(f"    insert {rows:,} rows {kind} the index: {took:.1f}s")
    return {
        "insert_rows": rows,
        "insert_plain_rows_per_s": rows / best[False],
        "insert_fts_rows_per_s": rows / best[True],
        "insert_cost_ratio": best[True] / best[False],
    }


def measure(store: Any, p: Any) -> dict[str, Any]:
    """The query mix (within the workload's deadline), then the stop-word-like words apart."""
    deadline = time.monotonic() + p.deadline_s
    out = run_searches(store, queries(p.search_queries), deadline)
    top = run_searches(store, queries(TOP_QUERIES, kinds=("top1",)), deadline)
    out["top_p50_ms"], out["top_p99_ms"] = top["p50_ms"], top["p99_ms"]
    return out


TOP_QUERIES = 30


def sqlite_cell(p: Any, log: Log) -> dict[str, Any]:
    """The search workload on SQLite: the cached store of `search_rows`, then the ingest
    cost of the triggers (fresh files, the hub's default synchronous=FULL)."""
    import tempfile

    from scitex_orochi.hub import migrations
    from scitex_orochi.hub.store import Store

    path, build_s = sqlite_store_file(p.search_rows, log)
    store = Store(f"sqlite:///{path}", readonly=True)
    try:
        out = measure(store, p)
    finally:
        store.close()
    out.update(rows=p.search_rows, build_s=build_s, db_mib=path.stat().st_size / 2**20)
    with tempfile.TemporaryDirectory(prefix="orosearch", dir="/tmp") as tmp:
        made = itertools.count()

        def make_store(with_fts: bool) -> Any:
            fresh = Store(f"sqlite:///{tmp}/ingest{next(made)}.db")
            migrations.migrate(fresh.engine, None if with_fts else without_fts())
            return fresh

        out.update(insert_cost(make_store, p.search_insert_rows, log))
    return out


def postgresql_cell(cluster: Any, p: Any, log: Log) -> dict[str, Any]:
    """The search workload on a throwaway PostgreSQL cluster: `search_pg_rows` loaded
    without the index, then migration 5 builds it (the backfill), then the same queries;
    and the ingest cost of the GIN index."""
    from scitex_orochi.hub import migrations
    from scitex_orochi.hub.store import Store

    store = Store(cluster.create_database("orochi_bench_search"))
    try:
        # The versions before full-text search: migrate() then applies it (the backfill)
        # and the later ones; a migration list that skipped it would leave the version
        # past it, and migrate() would never build the index.
        migrations.migrate(store.engine, [m for m in migrations.MIGRATIONS if m[0] < FTS_MIGRATION])
        log(f"    loading {p.search_pg_rows:,} messages")
        load_s = fill(store, p.search_pg_rows)
        t0 = time.perf_counter()
        store.migrate()
        index_s = time.perf_counter() - t0
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE messages"
            )
        log(f"    loaded in {load_s:.1f}s, index built in {index_s:.1f}s")
        out = measure(store, p)
    finally:
        store.close()
    out.update(rows=p.search_pg_rows, build_s=load_s, index_s=index_s)
    made = itertools.count()

    def make_store(with_fts: bool) -> Any:
        fresh = Store(cluster.create_database(f"orochi_bench_ingest{next(made)}"))
        migrations.migrate(fresh.engine, None if with_fts else without_fts())
        return fresh

    out.update(insert_cost(make_store, p.search_insert_rows, log))
    return out
