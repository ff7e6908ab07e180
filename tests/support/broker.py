"""The broker in a thread of the test process, for the component tier.

The same sockets as `python -m broker` (`broker.service.bind_sockets`: XSUB in, XPUB
out, linger 0, the broker's high-water marks), forwarded by `zmq.proxy_steerable` so
that `stop()` ends the proxy with TERMINATE instead of a signal (the broker's own
`serve()` installs signal handlers, which only the main thread may do).

    with BrokerThread("ipc:///tmp/x/bus-in.sock", "ipc:///tmp/x/bus-out.sock"):
        ...
"""

from __future__ import annotations

import threading
import uuid

import zmq

from broker.service import bind_sockets

JOIN_TIMEOUT_S = 5.0


class BrokerThread:
    def __init__(self, bus_in: str, bus_out: str) -> None:
        self.bus_in, self.bus_out = bus_in, bus_out
        self._ctx = zmq.Context()
        self._xsub, self._xpub = bind_sockets(self._ctx, bus_in, bus_out)
        endpoint = f"inproc://broker-control-{uuid.uuid4().hex}"
        self._control = self._ctx.socket(zmq.PAIR)
        self._control.setsockopt(zmq.LINGER, 0)
        self._control.bind(endpoint)
        self._steer = self._ctx.socket(zmq.PAIR)
        self._steer.setsockopt(zmq.LINGER, 0)
        self._steer.connect(endpoint)
        # The proxy thread owns the bus sockets and `_steer` from here on (handed over
        # before it starts); this thread only ever touches `_control`.
        self._thread = threading.Thread(
            target=zmq.proxy_steerable,
            name="broker",
            args=(self._xsub, self._xpub, None, self._steer),
            daemon=True,
        )

    def start(self) -> BrokerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._control.send(b"TERMINATE")
            self._thread.join(JOIN_TIMEOUT_S)
            assert not self._thread.is_alive(), "the broker thread did not stop"
        for sock in (self._xsub, self._xpub, self._steer, self._control):
            sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
