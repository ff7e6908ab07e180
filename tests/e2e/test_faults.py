"""Fault injection under steady load through the full supervised stack.

In turn: kill -9 the persister, the broker and one WebSocket gateway; SIGSTOP the
persister for 5 s; restart PostgreSQL (on the PostgreSQL run). A checker over
what every agent saw asserts, per fault: every acked message stored exactly
once, and every agent has every message of its channels in seq order with no
gap and no duplicate. A table of the results is printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass

import pytest

from support.loadagent import LoadAgent
from support.util import eventually

pytestmark = pytest.mark.slow

AGENTS = 24
SENDERS = 4
CHANNELS = ["#f1", "#f2", "#f3"]
RATE_PER_SENDER_HZ = 40
PHASE_S = 3.0  # steady load before and after each fault
STOP_S = 5.0  # SIGSTOP duration
SETTLE_TIMEOUT_S = 60.0


@dataclass
class Row:
    fault: str
    sent: int
    acked: int
    lost: int
    duplicated: int
    gaps: int
    recovery_s: float


class Fleet:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.agents = [
            LoadAgent(
                hub.agent_url(),
                f"ld{i}-{uuid.uuid4().hex[:4]}",
                [CHANNELS[i % len(CHANNELS)], CHANNELS[(i + 1) % len(CHANNELS)]],
            )
            for i in range(AGENTS)
        ]
        self.senders = self.agents[:SENDERS]
        self.tasks: list[asyncio.Task] = []
        self.sending = False
        self.counter = 0

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(a.run()) for a in self.agents]
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in self.agents)), 30)

    async def _send_loop(self, agent: LoadAgent, stop_at: float) -> None:
        period = 1.0 / RATE_PER_SENDER_HZ
        i = 0
        while time.monotonic() < stop_at and self.sending:
            channel = agent.channels[i % len(agent.channels)]
            self.counter += 1
            await agent.post(channel, f"load {self.counter} from {agent.name}")
            await agent.resend_unacked()
            i += 1
            await asyncio.sleep(period)

    async def load(self, seconds: float) -> None:
        self.sending = True
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(self._send_loop(a, stop_at) for a in self.senders))

    async def settle(self) -> float:
        """Until every sent message is acked (re-sending), then every agent resyncs."""

        async def all_acked() -> bool:
            for a in self.senders:
                await a.resend_unacked()
            return not any(a.unacked() for a in self.senders)

        await eventually(all_acked, SETTLE_TIMEOUT_S, "every sent message acked")
        await asyncio.wait_for(
            asyncio.gather(*(a.connected.wait() for a in self.agents)), SETTLE_TIMEOUT_S
        )
        return time.monotonic()

    async def stop(self) -> None:
        for a in self.agents:
            a.stop()
            if a.ws is not None:
                await a.ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def run_fault(fleet: Fleet, name: str, inject, store, sent_before: set[str]) -> Row:
    load = asyncio.create_task(fleet.load(PHASE_S * 2 + (STOP_S if "SIGSTOP" in name else 0)))
    # Inject once the load is flowing: every sender has messages acked in this phase.
    await eventually(
        lambda: all(
            sum(1 for mid, s in a.sent.items() if mid not in sent_before and s.acked_at) >= 20
            for a in fleet.senders
        ),
        PHASE_S * 3,
        "load flowing",
    )
    fault_at = time.monotonic()
    await inject()
    await load
    await fleet.settle()
    # Recovery: the longest send->ack time of messages sent after the fault started.
    recovery = max(
        (
            s.acked_at - s.first_sent
            for a in fleet.senders
            for s in a.sent.values()
            if s.first_sent >= fault_at and s.acked_at
        ),
        default=0.0,
    )
    for a in fleet.agents:
        await a.resync()
    return check(fleet, name, store, sent_before, recovery)


def check(fleet: Fleet, name: str, store, sent_before: set[str], recovery: float) -> Row:
    sent = {mid: s for a in fleet.senders for mid, s in a.sent.items() if mid not in sent_before}
    acked = {mid for mid, s in sent.items() if s.acked_at}
    stored: dict[str, list[int]] = {}
    max_seq: dict[str, int] = {}
    for channel in CHANNELS:
        rows = store.history("default", channel, after_seq=0, limit=1000)
        after = rows[-1]["seq"] if rows else 0
        while len(rows) % 1000 == 0 and rows:
            more = store.history("default", channel, after_seq=after, limit=1000)
            if not more:
                break
            rows += more
            after = more[-1]["seq"]
        seqs = [r["seq"] for r in rows]
        assert seqs == list(range(1, len(seqs) + 1)), f"{channel}: stored seqs not contiguous"
        max_seq[channel] = len(seqs)
        for r in rows:
            stored.setdefault(r["msg_id"], []).append(r["seq"])
    lost = [mid for mid in acked if mid not in stored]
    duplicated = [mid for mid, seqs in stored.items() if len(seqs) > 1]
    gaps = 0
    for agent in fleet.agents:
        for channel, log in agent.logs.items():
            assert log.live_dups == 0, f"{agent.name} got a live duplicate on {channel}"
            assert log.live_out_of_order == 0, f"{agent.name} got {channel} out of order"
            expected = list(range(1, max_seq[channel] + 1))
            if log.accepted != expected:
                gaps += 1
    return Row(name, len(sent), len(acked), len(lost), len(duplicated), gaps, recovery)


def print_table(rows: list[Row]) -> None:
    header = f"{'fault':<28}{'sent':>7}{'acked':>7}{'lost':>6}{'dup':>5}{'gaps':>6}{'recovery':>10}"
    print("\n" + header)
    for r in rows:
        print(
            f"{r.fault:<28}{r.sent:>7}{r.acked:>7}{r.lost:>6}{r.duplicated:>5}{r.gaps:>6}"
            f"{r.recovery_s:>9.2f}s"
        )


async def fault_suite(hub, pg_cluster=None) -> list[Row]:
    store = hub.store()
    fleet = Fleet(hub)
    await fleet.start()
    rows: list[Row] = []
    loop = asyncio.get_running_loop()

    def killer(program: str):
        async def inject():
            old = hub.kill(program, signal.SIGKILL)
            await loop.run_in_executor(None, hub.wait_restarted, program, old)

        return inject

    async def stop_persister():
        pid = hub.pid("persister")
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(STOP_S)
        os.kill(pid, signal.SIGCONT)

    faults = [
        ("kill -9 persister", killer("persister")),
        ("kill -9 broker", killer("broker")),
        ("kill -9 gateway_ws_00", killer("gateway_ws:gateway_ws_00")),
        (f"SIGSTOP persister {STOP_S:.0f}s", stop_persister),
    ]
    if pg_cluster is not None:

        async def restart_pg():
            await loop.run_in_executor(None, pg_cluster.restart)

        faults.append(("restart PostgreSQL", restart_pg))
    try:
        for name, inject in faults:
            before = {mid for a in fleet.senders for mid in a.sent}
            rows.append(await run_fault(fleet, name, inject, store, before))
    finally:
        await fleet.stop()
        print_table(rows)
    return rows


def assert_clean(rows: list[Row]) -> None:
    for r in rows:
        assert r.sent > 0 and r.acked == r.sent, r
        assert r.lost == 0 and r.duplicated == 0 and r.gaps == 0, r


async def test_faults_under_load_sqlite(hub_factory):
    hub = hub_factory(ws_procs=2)
    assert_clean(await fault_suite(hub))


@pytest.mark.postgres
async def test_faults_under_load_postgres(hub_factory, pg_cluster, pg_url):
    hub = hub_factory(ws_procs=2, db_url=pg_url)
    assert_clean(await fault_suite(hub, pg_cluster))
