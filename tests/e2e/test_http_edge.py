"""The HTTP gateway's edge against a real supervised hub: request bodies refused while they
stream, the request-head timeout, connection limits, and a bounded log under a flood.

Clients that should count as "another address" connect from 127.0.0.2..5 (loopback
on Linux); the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from support import rawhttp
from support.agent import RawAgent
from support.http_util import wait_http_ready
from support.rawhttp import chunk, head
from support.util import TIME_SCALE, eventually

HEAD_TIMEOUT_S = 1.0
PER_ADDR = 40
TOTAL = 60
ADMIN_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def edge_hub():
    from scitex_orochi.hub.testing import Hub

    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_HTTP_HEADER_TIMEOUT_S": str(HEAD_TIMEOUT_S),
            "SCITEX_OROCHI_HTTP_MAX_CONN_PER_ADDR": str(PER_ADDR),
            "SCITEX_OROCHI_HTTP_MAX_CONNECTIONS": str(TOTAL),
        }
    ).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


async def metric(hub, name: str) -> float:
    """One unlabelled sample of /metrics, read on a connection of its own."""
    resp = await rawhttp.request(hub.dashboard_port, "GET", "/metrics")
    for line in resp.body.decode().splitlines():
        if line.startswith(f"orochi_http_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def settled(hub) -> None:
    """Wait until only the probe itself is open on the dashboard port."""

    async def idle() -> bool:
        return await metric(hub, "connections_open") <= 1

    await eventually(idle, 10, "the dashboard port's connections closed")


async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(edge_hub):
    reader, writer = await rawhttp.connect(edge_hub.dashboard_port)
    try:
        writer.write(
            head(
                "POST",
                "/api/invites/redeem",
                Transfer_Encoding="chunked",
                Content_Type="application/json",
            )
        )
        sent = 0
        while sent <= ADMIN_BODY_LIMIT + 16 * 1024:  # a little past the limit, never ended
            writer.write(chunk(b" " * 16 * 1024))
            sent += 16 * 1024
        await writer.drain()
        resp = await rawhttp.read_response(reader)  # buffering the body would never answer
        assert resp.status == 413 and resp.json()["status"] == 413
        assert resp.json()["limit"] == ADMIN_BODY_LIMIT
        assert resp.headers.get("connection", "").lower() == "close"
    finally:
        writer.close()


async def test_content_length_over_the_limit_is_413_before_any_body(edge_hub):
    port = edge_hub.dashboard_port
    resp = await rawhttp.request(
        port,
        "POST",
        "/api/invites/redeem",
        Content_Length=str(10**9),
        Content_Type="application/json",
    )
    assert resp.status == 413 and "body over" in resp.json()["error"]
    # A message body is limited by the frame limit, once the admin token is proven.
    reader, writer = await rawhttp.connect(port)
    try:
        writer.write(
            head(
                "POST",
                "/api/messages",
                Transfer_Encoding="chunked",
                Authorization=f"Bearer {edge_hub.admin_token}",
                Content_Type="application/json",
            )
        )
        for _ in range(72):  # 1.1 MiB of a 1 MiB limit, never ended
            writer.write(chunk(b" " * 16 * 1024))
        await writer.drain()
        resp = await rawhttp.read_response(reader)
        assert resp.status == 413 and resp.json()["limit"] == edge_hub.cfg.ws.max_frame_bytes
    finally:
        writer.close()


@pytest.mark.parametrize(
    "target", ["/api/messages", "/api/upload-base64", "/api/workspaces", "/api/upload"]
)
async def test_routes_that_need_a_token_refuse_before_reading_the_body(edge_hub, target):
    reader, writer = await rawhttp.connect(edge_hub.dashboard_port)
    try:
        writer.write(
            head(
                "POST",
                target,
                Transfer_Encoding="chunked",
                Authorization=f"Bearer {edge_hub.default_token}",
                Content_Type="application/json",
            )
        )
        writer.write(chunk(b" " * 1024))  # the body has hardly begun
        await writer.drain()
        resp = await rawhttp.read_response(reader)
        assert resp.status == 401 and "admin token" in resp.json()["error"]
    finally:
        writer.close()


async def test_a_connection_without_a_complete_head_is_closed_after_the_timeout(edge_hub):
    port = edge_hub.dashboard_port
    # Half a head, then silence.
    reader, writer = await rawhttp.connect(port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await writer.drain()
    got = await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S + 4)
    elapsed = time.monotonic() - started
    writer.close()
    assert got == b"", "closed without an answer"
    assert HEAD_TIMEOUT_S * 0.8 <= elapsed <= (HEAD_TIMEOUT_S + 3) * TIME_SCALE, elapsed
    # Nothing at all.
    reader, writer = await rawhttp.connect(port)
    assert await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S + 4) == b""
    writer.close()
    # A head dripped a byte at a time: still one deadline for the whole head.
    reader, writer = await rawhttp.connect(port)
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    started = time.monotonic()
    closed = None
    while closed is None and time.monotonic() - started < (HEAD_TIMEOUT_S + 4) * TIME_SCALE:
        try:
            writer.write(b"x")
            await writer.drain()
        except ConnectionError:
            closed = b""
            break
        closed = await rawhttp.closed_by_server(reader, 0.2)  # paces the drip
    writer.close()
    assert closed == b"", "a dripping head is closed too"
    assert await metric(edge_hub, "header_timeouts_total") >= 3


async def test_a_kept_alive_connection_gets_the_timeout_for_each_head(edge_hub):
    reader, writer = await rawhttp.connect(edge_hub.dashboard_port)
    try:
        writer.write(head("GET", "/healthz"))
        await writer.drain()
        assert (await rawhttp.read_response(reader)).status == 200
        # Idle between requests is the keep-alive's business, not the head timeout's...
        assert await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S * 2) is None
        writer.write(head("GET", "/healthz"))
        await writer.drain()
        assert (await rawhttp.read_response(reader)).status == 200
        # ...but a second head that never completes is closed.
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await writer.drain()
        assert await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S + 4) == b""
    finally:
        writer.close()


async def test_the_head_timeout_never_cuts_a_body_or_an_observer_socket(edge_hub):
    port = edge_hub.dashboard_port
    obs = await RawAgent.connect(
        f"ws://127.0.0.1:{port}/ws?token={edge_hub.admin_token}", register=False
    )
    reader, writer = await rawhttp.connect(port)
    try:
        body = json.dumps(
            {"sender": "slow", "payload": {"channel": "#edge", "content": "sent slowly"}}
        ).encode()
        writer.write(
            head(
                "POST",
                "/api/messages",
                Content_Type="application/json",
                Content_Length=str(len(body)),
                Authorization=f"Bearer {edge_hub.admin_token}",
            )
            + body[:10]
        )
        await writer.drain()
        # Longer than the head timeout between two halves of the body: still open.
        assert await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S * 2) is None
        writer.write(body[10:])
        await writer.drain()
        resp = await rawhttp.read_response(reader, 10)
        assert resp.status == 201, resp.body
        got = await obs.wait(lambda f: f.get("id") == resp.json()["id"], timeout=10)
        assert got["payload"]["content"] == "sent slowly"
        assert not obs.closed.done()
    finally:
        writer.close()
        await obs.close()


async def _hold(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection the server must keep: a complete head, a body that has not arrived."""
    reader, writer = await rawhttp.connect(port, source)
    writer.write(
        head("POST", "/api/invites/redeem", Content_Type="application/json", Content_Length="100")
        + b"{"
    )
    await writer.drain()
    return reader, writer


async def test_connections_over_the_limits_get_a_503_and_are_closed(edge_hub):
    port = edge_hub.dashboard_port
    await settled(edge_hub)
    held = []
    try:
        for _ in range(PER_ADDR):
            held.append(await _hold(port, "127.0.0.2"))

        async def all_admitted() -> bool:
            return await metric(edge_hub, "connections_open") >= PER_ADDR + 1

        await eventually(all_admitted, 10, "the held connections admitted")
        reader, writer = await rawhttp.connect(port, "127.0.0.2")
        writer.write(head("GET", "/healthz"))
        resp = await rawhttp.read_response(reader)
        assert resp.status == 503 and resp.headers["retry-after"].isdigit()
        assert resp.json() == {
            "error": "too many connections from your address; retry later",
            "status": 503,
        }
        assert await rawhttp.closed_by_server(reader, 5) is not None
        writer.close()
        # Another address is still welcome...
        assert (await rawhttp.request(port, "GET", "/healthz")).status == 200
        # ...until the process-wide limit.
        for _ in range(TOTAL - PER_ADDR):
            held.append(await _hold(port, "127.0.0.3"))

        async def full() -> bool:
            resp = await rawhttp.request(port, "GET", "/healthz", source="127.0.0.4")
            return resp.status == 503 and "too many connections" in resp.json()["error"]

        await eventually(full, 10, "the total limit reached")
        resp = await rawhttp.request(port, "GET", "/healthz")
        assert resp.status == 503 and resp.json()["error"].startswith("the server has")
        for _reader, writer in held[:5]:
            writer.close()

        async def room_again() -> bool:
            return (await rawhttp.request(port, "GET", "/healthz")).status == 200

        await eventually(room_again, 10, "room after some connections closed")
    finally:
        for _reader, writer in held:
            writer.close()
    await settled(edge_hub)
    refused = await rawhttp.request(port, "GET", "/metrics")
    assert 'orochi_http_connections_refused_total{reason="per_address"}' in refused.body.decode()


async def test_a_flood_of_slow_and_refused_connections_keeps_healthz_and_the_log_bounded(edge_hub):
    port = edge_hub.dashboard_port
    await settled(edge_hub)
    log_start = edge_hub.log_path.stat().st_size
    flood_size = 300  # PER_ADDR are admitted and time out, the rest are refused
    stop = asyncio.Event()
    latencies: list[float] = []

    async def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            resp = await rawhttp.request(port, "GET", "/healthz", timeout=2)
            latencies.append(time.monotonic() - started)
            assert resp.status == 200
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass

    async def slow_client(n: int) -> bytes | None:
        reader, writer = await rawhttp.connect(port, "127.0.0.5")
        try:
            writer.write(f"GET /api/agents?n={n} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            await writer.drain()
            return await rawhttp.closed_by_server(reader, HEAD_TIMEOUT_S + 10)
        except ConnectionError:
            return b""
        finally:
            writer.close()

    prober = asyncio.create_task(probe())
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(slow_client(n) for n in range(flood_size))), 60 * TIME_SCALE
        )
    finally:
        stop.set()
        await prober
    assert all(a is not None for a in answers), "every flood connection was closed by the server"
    refused = [a for a in answers if a and a.startswith(b"HTTP/1.1 503")]
    assert len(refused) >= flood_size - PER_ADDR
    assert latencies and max(latencies) < 1.0, max(latencies)
    await settled(edge_hub)

    text = edge_hub.log_path.read_bytes()[log_start:].decode(errors="replace")
    lines = [
        line
        for line in text.splitlines()
        if " gateway_http " in line
        and '"GET /healthz ' not in line
        and '"GET /metrics ' not in line
    ]
    # Without the repeat filter: one line per refused and per timed-out connection.
    assert len(lines) <= 60, "\n".join(lines[:80])
    assert any("refused a connection from 127.0.0.5" in line for line in lines)
    marker = uuid.uuid4().hex  # the log still works for something new
    assert (await rawhttp.request(port, "GET", f"/no-such-{marker}")).status == 404

    async def logged() -> bool:
        return marker.encode() in edge_hub.log_path.read_bytes()[log_start:]

    await eventually(logged, 10, "a new line logged after the flood")


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
async def test_memory_stays_bounded_under_many_large_chunked_bodies(hub_factory):
    """50 concurrent 30 MB chunked bodies without a token: buffered, they held ~1.4 GB."""
    hub = hub_factory()
    wait_http_ready(hub)
    pid = hub.pid("gateway_http")
    port = hub.dashboard_port
    body_bytes, piece = 30 * 1024 * 1024, chunk(b" " * 256 * 1024)
    baseline = vm_rss_kib(pid)
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, vm_rss_kib(pid))
            try:
                await asyncio.wait_for(done.wait(), 0.05)
            except TimeoutError:
                pass

    async def sender() -> int | None:
        reader, writer = await rawhttp.connect(port)
        try:
            writer.write(
                head(
                    "POST",
                    "/api/invites/redeem",
                    Transfer_Encoding="chunked",
                    Content_Type="application/json",
                )
            )
            sent = 0
            while sent < body_bytes:
                writer.write(piece)
                await writer.drain()
                sent += 256 * 1024
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass  # the server answered and stopped listening to the rest
        try:
            return (await rawhttp.read_response(reader, 15)).status
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        finally:
            writer.close()

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    try:
        statuses = await asyncio.wait_for(
            asyncio.gather(*(sender() for _ in range(50))), 120 * TIME_SCALE
        )
    finally:
        done.set()
        await sampler
    grown_mib = (peak - baseline) / 1024
    print(
        f"gateway_http VmRSS {baseline / 1024:.1f} MiB -> peak {peak / 1024:.1f} MiB "
        f"(+{grown_mib:.1f} MiB) over 50 x 30 MiB in {time.monotonic() - started:.1f}s; "
        f"answers {sorted(set(map(str, statuses)))}"
    )
    assert grown_mib < 100, grown_mib
    assert statuses.count(413) >= 25, statuses  # the rest were cut off while still sending
    assert (await rawhttp.request(port, "GET", "/healthz")).status == 200
