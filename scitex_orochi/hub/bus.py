"""Bus clients: one PUB socket to the broker's XSUB side, one SUB socket to its XPUB side.

Frames are `[topic, msgpack(body)]`. Sockets are owned by one object, closed with
linger=0. Readiness is proved, not slept for: `wait_ready` publishes a probe on a
topic only this client subscribes to and waits until it comes back through the
broker, which shows both directions and the subscription are live.

A socket to a tcp endpoint is a CURVE client (keys from `scitex_orochi.hub.bus_keys`,
loaded by `from_config`); one to an ipc endpoint is left as it is, so the local
message path pays nothing. CURVE sockets also watch their handshakes, so a failed
`wait_ready` can say that the keys were refused rather than only that it timed out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, Self, cast

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

from scitex_orochi.hub.bus_keys import HOWTO, CurveClient, client_keys
from scitex_orochi.hub.config import Config, is_tcp
from scitex_orochi.hub.errors import BusError
from scitex_orochi.protocol import topics

log = logging.getLogger("orochi.bus")

PUB_HWM = 200_000
SUB_HWM = 200_000
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 5000
RECONNECT_IVL_MS = 50
RECONNECT_IVL_MAX_MS = 1000
READY_PROBE_EVERY_S = 0.05
# Plain ints, not zmq's enum members: pyzmq converts an enum flag on every call, and
# recv_multipart/send_multipart add an RCVMORE getsockopt and a list per message.
# Together that was 3 µs of a 4 µs receive. Every bus message is exactly two parts
# (topic, body), which is what lets one recv per part replace recv_multipart.
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_HANDSHAKE_FAILURES: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: (
        "the broker refused this client's CURVE key "
        "(its public key is not in the broker's authorized dir)"
    ),
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: (
        "the CURVE handshake failed (is the server key the broker's?)"
    ),
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: (
        "the CURVE handshake failed with a protocol error (is the broker using CURVE?)"
    ),
}
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
)


def pack(body: Any) -> bytes:
    data: bytes = msgpack.packb(body, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def new_origin(kind: str) -> str:
    """A unique id for one running process: kind, host, pid and a random tail."""
    return f"{kind}-{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _secure(
    sock: zmq.Socket[bytes], endpoint: str, curve: CurveClient | None
) -> zmq.Socket[bytes] | None:
    """Make a socket to a tcp endpoint a CURVE client; return its handshake monitor.

    Called before connect. A tcp endpoint without keys is refused here, so no bus
    client can ever talk to the broker in the clear over the network.
    """
    if not is_tcp(endpoint):
        return None
    if curve is None:
        raise BusError(
            f"bus endpoint {endpoint} is tcp, which needs CURVE keys: build the "
            "client with from_config(cfg), or pass curve=bus_keys.load_client(cfg)"
        )
    curve.apply(sock)
    return sock.get_monitor_socket(_HANDSHAKE_EVENTS)


def _handshake_failures(monitor: zmq.Socket[bytes] | None) -> set[str]:
    """Failures reported since the last call, without waiting."""
    seen: set[str] = set()
    while monitor is not None:
        try:
            event = recv_monitor_message(monitor, flags=_NOBLOCK)["event"]
        except zmq.Again:
            break
        seen.add(_HANDSHAKE_FAILURES.get(event, f"handshake event {event}"))
    return seen


def _close(sock: zmq.Socket[bytes], monitor: zmq.Socket[bytes] | None) -> None:
    if monitor is not None:
        try:
            sock.disable_monitor()  # unbinds its inproc endpoint, which a later fd would reuse
        except zmq.ZMQError:
            pass
        monitor.close(linger=0)
    try:
        sock.close(linger=0)
    except zmq.ZMQError:
        pass


def _tune(sock: zmq.Socket[bytes]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)


class Publisher:
    """One PUB socket to the broker. A bus client has one; a thread that publishes on
    its own (the persister's writer) gets another, since a ZeroMQ socket belongs to
    one thread at a time: prove it with `wait_ready(via=...)`, then hand it over."""

    def __init__(
        self, bus_in: str, ctx: zmq.Context[zmq.Socket[bytes]], curve: CurveClient | None = None
    ) -> None:
        self.published = 0
        self.sock = ctx.socket(zmq.PUB)
        _tune(self.sock)
        self.sock.setsockopt(zmq.SNDHWM, PUB_HWM)
        try:
            self.monitor = _secure(self.sock, bus_in, curve)
        except BusError:
            self.sock.close(linger=0)
            raise
        self.sock.connect(bus_in)

    def publish(self, topic: bytes, body: Any) -> None:
        """Never blocks: PUB drops at its high-water mark (inbound is republished until acked)."""
        self.publish_raw(topic, pack(body))

    def publish_raw(self, topic: bytes, data: bytes) -> None:
        send = self.sock.send
        send(topic, _NOBLOCK_MORE)
        send(data, _NOBLOCK)
        self.published += 1

    def close(self) -> None:
        _close(self.sock, self.monitor)


class _BusBase:
    def __init__(
        self, bus_in: str, bus_out: str, origin: str, curve: CurveClient | None = None
    ) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.origin = origin
        self.bus_in = bus_in
        self.bus_out = bus_out
        self.received = 0
        self._ctx = ctx
        self._curve = curve
        self._out = Publisher(bus_in, ctx, curve)
        self.publish = self._out.publish
        self.publish_raw = self._out.publish_raw
        self._sub = ctx.socket(zmq.SUB)
        _tune(self._sub)
        self._sub.setsockopt(zmq.RCVHWM, SUB_HWM)
        try:
            self._sub_monitor = _secure(self._sub, bus_out, curve)
        except BusError:
            self._out.close()
            self._sub.close(linger=0)
            raise
        self._sub.connect(bus_out)
        self._sub_sync = self._sub  # name kept from when this was a zmq.asyncio shadow
        self._probe_topic = b""

    @classmethod
    def from_config(cls, cfg: Config, origin: str) -> Self:
        """A client of `cfg`'s bus, with CURVE keys when an endpoint is tcp.

        Raises ConfigError naming a missing key file and how to get it.
        """
        return cls(cfg.bus.in_endpoint, cfg.bus.out_endpoint, origin, curve=client_keys(cfg))

    @property
    def published(self) -> int:
        return self._out.published

    def publisher(self) -> Publisher:
        """Another PUB socket to the same broker, for another thread."""
        return Publisher(self.bus_in, self._ctx, self._curve)

    def subscribe(self, *prefixes: bytes) -> None:
        for prefix in prefixes:
            self._sub_sync.setsockopt(zmq.SUBSCRIBE, prefix)

    def unsubscribe(self, *prefixes: bytes) -> None:
        for prefix in prefixes:
            self._sub_sync.setsockopt(zmq.UNSUBSCRIBE, prefix)

    def drain(self, limit: int) -> list[tuple[bytes, Any]]:
        """Everything already queued on the SUB socket, up to `limit`, without waiting.

        Readiness probes are consumed here and recorded, never returned.
        """
        out: list[tuple[bytes, Any]] = []
        recv = self._sub_sync.recv
        while len(out) < limit:
            try:
                topic = recv(_NOBLOCK)
            except zmq.Again:
                break
            data = recv(_NOBLOCK)  # the body travels with its topic: already here
            if topic[:6] == b"probe.":
                self._on_probe(topic, data)
                continue
            try:
                out.append((topic, unpack(data)))
            except Exception:  # noqa: BLE001 - a bad body must not stop the loop
                log.warning("dropped undecodable bus frame on %r", topic[:60])
        self.received += len(out)
        return out

    _probe_seen = False
    _probe_nonce = b""

    def _on_probe(self, topic: bytes, data: bytes) -> None:
        if topic == self._probe_topic:
            if data == self._probe_nonce:
                self._probe_seen = True
        else:
            self._on_barrier(topic)

    def _on_barrier(self, topic: bytes) -> None:
        """A barrier probe came back (AsyncBus.barrier)."""

    def _next_probe(self) -> None:
        """Each wait_ready call subscribes a fresh probe topic and waits for it.

        Subscriptions travel in order on one connection, so once the fresh topic
        has reached the publisher, every earlier subscription has too.
        """
        if self._probe_topic:
            self._sub_sync.setsockopt(zmq.UNSUBSCRIBE, self._probe_topic)
        self._handshake_failures()  # report only what happens during this wait
        self._probe_seen = False
        self._probe_nonce = uuid.uuid4().bytes
        self._probe_topic = topics.probe(f"{self.origin}.{self._probe_nonce.hex()}")
        self._sub_sync.setsockopt(zmq.SUBSCRIBE, self._probe_topic)

    def _send_probe(self, via: Publisher | None = None) -> None:
        sock = (via or self._out).sock
        sock.send(self._probe_topic, _NOBLOCK_MORE)
        sock.send(self._probe_nonce, _NOBLOCK)

    def _handshake_failures(self, via: Publisher | None = None) -> set[str]:
        seen = _handshake_failures(self._out.monitor) | _handshake_failures(self._sub_monitor)
        if via is not None:
            seen |= _handshake_failures(via.monitor)
        return seen

    def _not_ready(self, timeout_s: float, via: Publisher | None = None) -> BusError:
        """The error for a wait_ready that timed out: with CURVE on, say what the keys did."""
        text = (
            f"no round trip through the bus ({self.bus_in} -> {self.bus_out}) "
            f"within {timeout_s:.1f}s"
        )
        curve = self._curve
        if curve is None:
            return BusError(f"{text}: is the broker running?")
        keys = f"server key {curve.server_key_file}, client key {curve.client_key_file}"
        failures = self._handshake_failures(via)
        if failures:
            return BusError(f"{text}: {'; '.join(sorted(failures))} ({keys}; see {HOWTO})")
        return BusError(
            f"{text}: is the broker running? CURVE is on, so the keys may also be "
            f"wrong ({keys}): the server key must be the broker's and the client's "
            f"public key must be in the broker's authorized dir (see {HOWTO})"
        )

    def close(self) -> None:
        self._out.close()
        _close(self._sub, self._sub_monitor)


class AsyncBus(_BusBase):
    """Bus client for asyncio processes (gateways, bridges).

    Plain (synchronous) ZeroMQ sockets with the SUB socket's file descriptor
    watched by the event loop: a wake-up costs one callback, not a poller and a
    Future per call as `zmq.asyncio` does. The descriptor is edge-triggered in
    ZeroMQ's sense, so readiness is always confirmed with `EVENTS` before waiting.
    """

    def __init__(
        self, bus_in: str, bus_out: str, origin: str, curve: CurveClient | None = None
    ) -> None:
        super().__init__(bus_in, bus_out, origin, curve)
        self._pending: list[tuple[bytes, Any]] = []
        self._readable: asyncio.Event | None = None
        # Barriers: subscribed from the start, so wait_ready proves them live too.
        self._barrier_prefix = topics.PROBE + f"{origin}.b.".encode()
        self._barriers: dict[bytes, asyncio.Future[None]] = {}
        self._barrier_count = 0
        self._sub_sync.setsockopt(zmq.SUBSCRIBE, self._barrier_prefix)

    def _on_barrier(self, topic: bytes) -> None:
        future = self._barriers.pop(topic, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def barrier(self, timeout_s: float) -> bool:
        """Wait until everything this process published before the call has passed the
        broker: a probe published now comes back after it (one publisher's frames keep
        their order), so every subscriber's copy is on its way. Needs a running
        dispatch loop (`dispatch_forever`) to read the probe. False on timeout."""
        self._barrier_count += 1
        topic = self._barrier_prefix + f"{self._barrier_count}|".encode()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers[topic] = future
        self.publish_raw(topic, b"")
        try:
            async with asyncio.timeout(timeout_s):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            self._barriers.pop(topic, None)

    def _watch(self) -> asyncio.Event:
        if self._readable is None:
            self._readable = asyncio.Event()
            asyncio.get_running_loop().add_reader(self._sub_sync.fileno(), self._readable.set)
        return self._readable

    def _has_input(self) -> bool:
        return bool(cast(int, self._sub_sync.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    async def _wait_input(self, timeout_s: float | None) -> bool:
        readable = self._watch()
        readable.clear()
        if self._has_input():
            return True
        # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a task's
        # cancellation when the event fires at the same moment, and a gateway then
        # never finishes its shutdown.
        try:
            async with asyncio.timeout(timeout_s):
                await readable.wait()
        except TimeoutError:
            return self._has_input()
        return True

    async def recv_burst(
        self, limit: int = 1000, timeout_s: float | None = None
    ) -> list[tuple[bytes, Any]]:
        """Wait for at least one frame (or the timeout), then drain a burst."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._pending:
                out, self._pending = self._pending, []
                return out
            batch = self.drain(limit)
            if batch:
                return batch
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            await self._wait_input(left)

    async def dispatch_forever(
        self, handle: Callable[[bytes, Any], None], burst: int = 2000
    ) -> None:
        """Feed every frame to `handle(topic, body)`; one bad frame never stops the loop."""
        while True:
            for topic, body in await self.recv_burst(burst, timeout_s=1.0):
                try:
                    handle(topic, body)
                except Exception:  # noqa: BLE001
                    log.exception("bad bus frame on %r", topic[:60])

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Publish probes until one comes back through the broker, or fail.

        Frames that arrive meanwhile are kept and returned by the next recv_burst.
        """
        deadline = time.monotonic() + timeout_s
        self._next_probe()
        while time.monotonic() < deadline:
            self._send_probe()
            if await self._wait_input(READY_PROBE_EVERY_S):
                self._pending.extend(self.drain(10_000))
            if self._pending and self._readable is not None:
                self._readable.set()  # a concurrent recv_burst returns what we drained
            if self._probe_seen:
                return
        raise self._not_ready(timeout_s)

    def close(self) -> None:
        if self._readable is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sub_sync.fileno())
            except (RuntimeError, zmq.ZMQError, ValueError):
                pass
            self._readable = None
        super().close()


class SyncBus(_BusBase):
    """Bus client for blocking processes (persister, tail)."""

    def __init__(
        self, bus_in: str, bus_out: str, origin: str, curve: CurveClient | None = None
    ) -> None:
        super().__init__(bus_in, bus_out, origin, curve)
        self._pending: list[tuple[bytes, Any]] = []

    def recv_burst(
        self, limit: int = 1000, timeout_s: float | None = None
    ) -> list[tuple[bytes, Any]]:
        if self._pending:
            out, self._pending = self._pending, []
            return out
        batch = self.drain(limit)
        if batch:
            return batch
        timeout_ms = -1 if timeout_s is None else int(timeout_s * 1000)
        if not self._sub_sync.poll(timeout=timeout_ms, flags=zmq.POLLIN):
            return []
        return self.drain(limit)

    def wait_ready(self, timeout_s: float = 10.0, via: Publisher | None = None) -> None:
        """Probe round trips until one comes back; `via` proves another Publisher."""
        deadline = time.monotonic() + timeout_s
        self._next_probe()
        while time.monotonic() < deadline:
            self._send_probe(via)
            if self._sub_sync.poll(timeout=int(READY_PROBE_EVERY_S * 1000)):
                self._pending.extend(self.drain(10_000))
                if self._probe_seen:
                    return
        raise self._not_ready(timeout_s, via)
