"""XSUB <-> XPUB forwarding in C (`zmq.proxy_steerable`), in the main thread.

Publishers connect to the XSUB endpoint (`bus_in`), subscribers to the XPUB
endpoint (`bus_out`). Subscriptions flow upstream, so publishers filter at the
source.

Stopping: SIGTERM and SIGINT are blocked in every thread (`block_stop_signals`, called
first thing by `python -m broker`) and taken by one waiter thread with `sigwait`, which
sends TERMINATE on the proxy's inproc control socket; the proxy returns and the broker
closes its sockets with linger 0. A Python signal handler raising out of `zmq.proxy` would
lose a signal that lands after the interpreter's last check and before the C call blocks
(the handler only runs between bytecodes): the broker then never stopped. A signal that
arrives while the broker is still starting waits, blocked, until the waiter takes it.

A tcp endpoint is a CURVE server socket, with ZAP admitting only authorized client
keys (`broker.auth`); an ipc endpoint is left as it is (the run dir's modes guard it).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import zmq

from scitex_orochi.hub.bus_keys import CurveServer
from scitex_orochi.hub.config import is_tcp

from .auth import start_authenticator

log = logging.getLogger("orochi.broker")

BROKER_HWM = 500_000


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
CONTROL_ENDPOINT = "inproc://broker-control"


def block_stop_signals() -> None:
    """Hold SIGTERM/SIGINT pending in this thread and every thread started after it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _await_stop(steer: zmq.Socket[bytes]) -> None:
    """The waiter thread: the one user of `steer` until `serve` joins it."""
    signum = signal.sigwait(STOP_SIGNALS)
    log.info("received %s, stopping", signal.Signals(signum).name)
    steer.send(b"TERMINATE")


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        Path(endpoint[len("ipc://") :]).parent.mkdir(parents=True, exist_ok=True)


def bind_sockets(
    ctx: zmq.Context[zmq.Socket[bytes]], bus_in: str, bus_out: str, curve: CurveServer | None = None
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    for sock, endpoint in ((xsub, bus_in), (xpub, bus_out)):
        sock.setsockopt(zmq.LINGER, 0)
        if is_tcp(endpoint):
            if curve is None:
                raise ValueError(f"bus endpoint {endpoint} is tcp: the broker needs CURVE keys")
            curve.apply(sock)
    xsub.setsockopt(zmq.RCVHWM, BROKER_HWM)
    xpub.setsockopt(zmq.SNDHWM, BROKER_HWM)
    _prepare_ipc(bus_in)
    _prepare_ipc(bus_out)
    xsub.bind(bus_in)
    xpub.bind(bus_out)
    return xsub, xpub


def serve(bus_in: str, bus_out: str, curve: CurveServer | None = None) -> None:
    """Forward until SIGTERM or SIGINT. Blocks those signals itself if the caller did not."""
    block_stop_signals()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = start_authenticator(ctx, curve.authorized_dir) if curve is not None else None
    try:
        xsub, xpub = bind_sockets(ctx, bus_in, bus_out, curve)
    except BaseException:
        if auth is not None:
            auth.stop()
        ctx.destroy(linger=0)
        raise
    control = ctx.socket(zmq.PAIR)
    control.setsockopt(zmq.LINGER, 0)
    control.bind(CONTROL_ENDPOINT)
    steer = ctx.socket(zmq.PAIR)
    steer.setsockopt(zmq.LINGER, 0)
    steer.connect(CONTROL_ENDPOINT)
    waiter = threading.Thread(target=_await_stop, args=(steer,), name="stop-waiter", daemon=True)
    waiter.start()
    log.info(
        "broker up: publishers -> %s, subscribers <- %s%s",
        bus_in,
        bus_out,
        " (curve)" if auth is not None else "",
    )
    try:
        zmq.proxy_steerable(xsub, xpub, None, control)
    except zmq.ContextTerminated:
        pass
    finally:
        waiter.join(timeout=2)
        for sock in (xsub, xpub, control, steer):
            sock.close(linger=0)
        if auth is not None:
            auth.stop()
        ctx.term()
        log.info("broker stopped")
