"""XSUB <-> XPUB forwarding in C (`zmq.proxy_steerable`), stopped through its control socket.

Publishers connect to the XSUB endpoint (`bus_in`), subscribers to the XPUB
endpoint (`bus_out`). Subscriptions flow upstream, so publishers filter at the
source. A SIGTERM sends TERMINATE on the control socket from the main thread;
the proxy returns and the broker exits within its deadline.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import zmq

log = logging.getLogger("orochi.broker")

BROKER_HWM = 500_000


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        path = Path(endpoint[len("ipc://"):])
        path.parent.mkdir(parents=True, exist_ok=True)


class Broker:
    def __init__(self, bus_in: str, bus_out: str, ctx: zmq.Context | None = None) -> None:
        self.bus_in = bus_in
        self.bus_out = bus_out
        self._ctx = ctx or zmq.Context()
        self._control_endpoint = f"inproc://broker-control-{os.getpid()}-{id(self)}"
        self._ready = threading.Event()

    def run(self) -> None:
        ctx = self._ctx
        xsub = ctx.socket(zmq.XSUB)
        xpub = ctx.socket(zmq.XPUB)
        control = ctx.socket(zmq.PAIR)
        for sock in (xsub, xpub):
            sock.setsockopt(zmq.LINGER, 0)
        xsub.setsockopt(zmq.RCVHWM, BROKER_HWM)
        xpub.setsockopt(zmq.SNDHWM, BROKER_HWM)
        _prepare_ipc(self.bus_in)
        _prepare_ipc(self.bus_out)
        xsub.bind(self.bus_in)
        xpub.bind(self.bus_out)
        control.bind(self._control_endpoint)
        log.info("broker up: publishers -> %s, subscribers <- %s", self.bus_in, self.bus_out)
        self._ready.set()
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        finally:
            for sock in (xsub, xpub, control):
                sock.close(linger=0)
            log.info("broker stopped")

    def wait_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        """Ask the proxy to return; safe from any thread."""
        sock = self._ctx.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.connect(self._control_endpoint)
        sock.send(b"TERMINATE")
        sock.close()


def serve(bus_in: str, bus_out: str) -> None:
    broker = Broker(bus_in, bus_out)
    thread = threading.Thread(target=broker.run, name="broker-proxy", daemon=True)
    thread.start()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while thread.is_alive() and not stopping.wait(0.5):
        pass
    if thread.is_alive():
        broker.stop()
        thread.join(5.0)
