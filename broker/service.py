"""XSUB <-> XPUB forwarding in C (`zmq.proxy`), in the main thread.

Publishers connect to the XSUB endpoint (`bus_in`), subscribers to the XPUB
endpoint (`bus_out`). Subscriptions flow upstream, so publishers filter at the
source. SIGTERM interrupts the blocking proxy call (EINTR), its handler raises
`BrokerStop`, and the broker closes its sockets with linger 0 and exits.

A tcp endpoint is a CURVE server socket, with ZAP admitting only authorized client
keys (`broker.auth`); an ipc endpoint is left as it is (the run dir's modes guard it).
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import zmq

from scitex_orochi.hub.bus_keys import CurveServer
from scitex_orochi.hub.config import is_tcp

from .auth import start_authenticator

log = logging.getLogger("orochi.broker")

BROKER_HWM = 500_000


class BrokerStop(Exception):
    """Raised by the signal handler to leave the proxy loop."""


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
    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        raise BrokerStop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = start_authenticator(ctx, curve.authorized_dir) if curve is not None else None
    try:
        xsub, xpub = bind_sockets(ctx, bus_in, bus_out, curve)
    except BaseException:
        if auth is not None:
            auth.stop()
        ctx.destroy(linger=0)
        raise
    log.info(
        "broker up: publishers -> %s, subscribers <- %s%s",
        bus_in,
        bus_out,
        " (curve)" if auth is not None else "",
    )
    try:
        zmq.proxy(xsub, xpub)
    except (BrokerStop, KeyboardInterrupt):
        pass
    except zmq.ContextTerminated:
        pass
    finally:
        xsub.close(linger=0)
        xpub.close(linger=0)
        if auth is not None:
            auth.stop()
        ctx.term()
        log.info("broker stopped")
