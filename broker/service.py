"""XSUB <-> XPUB forwarding in C (`zmq.proxy`), in the main thread.

Publishers connect to the XSUB endpoint (`bus_in`), subscribers to the XPUB
endpoint (`bus_out`). Subscriptions flow upstream, so publishers filter at the
source. SIGTERM interrupts the blocking proxy call (EINTR), its handler raises
`BrokerStop`, and the broker closes its sockets with linger 0 and exits.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import zmq

log = logging.getLogger("orochi.broker")

BROKER_HWM = 500_000


class BrokerStop(Exception):
    """Raised by the signal handler to leave the proxy loop."""


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        Path(endpoint[len("ipc://"):]).parent.mkdir(parents=True, exist_ok=True)


def bind_sockets(ctx: zmq.Context, bus_in: str, bus_out: str) -> tuple[zmq.Socket, zmq.Socket]:
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.LINGER, 0)
    xsub.setsockopt(zmq.RCVHWM, BROKER_HWM)
    xpub.setsockopt(zmq.SNDHWM, BROKER_HWM)
    _prepare_ipc(bus_in)
    _prepare_ipc(bus_out)
    xsub.bind(bus_in)
    xpub.bind(bus_out)
    return xsub, xpub


def serve(bus_in: str, bus_out: str) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        raise BrokerStop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx = zmq.Context()
    xsub, xpub = bind_sockets(ctx, bus_in, bus_out)
    log.info("broker up: publishers -> %s, subscribers <- %s", bus_in, bus_out)
    try:
        zmq.proxy(xsub, xpub)
    except (BrokerStop, KeyboardInterrupt):
        pass
    except zmq.ContextTerminated:
        pass
    finally:
        xsub.close(linger=0)
        xpub.close(linger=0)
        ctx.term()
        log.info("broker stopped")
