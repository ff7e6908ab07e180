"""ZAP for the broker's CURVE sockets: admit a client only if its public key is authorized.

A `ThreadAuthenticator` answers ZeroMQ's ZAP requests in a thread of the broker's
context (the proxy itself runs in C and never sees a handshake). The authorized
keys are the `*.key` files of one directory, re-read when the directory changes,
so `scitex-orochi bus-keys add-client` / `remove-client` need no broker restart.
A handshake happens once per connection, never per message.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from scitex_orochi.hub.bus_keys import authorized_keys

log = logging.getLogger("orochi.broker")

REFUSED_LOG_EVERY_S = 60.0  # a refused peer reconnects every second; say so once a minute


class AuthorizedKeys:
    """The ZAP credentials provider: `callback(domain, z85 key) -> bool`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[int, int] | None = None
        self._names: dict[bytes, str] = {}
        self._refused_logged: dict[bytes, float] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self.directory)
        except OSError as exc:
            if self._stamp is not None or self._names:
                log.error("authorized keys dir unreadable, refusing every client: %s", exc)
            self._stamp, self._names = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._stamp:
            self._names = authorized_keys(self.directory)
            self._stamp = stamp
            log.info("%d authorized bus clients in %s", len(self._names), self.directory)

    def callback(self, _domain: str, key: bytes) -> bool:
        self._refresh()
        name = self._names.get(key)
        if name is not None:
            log.debug("bus client %s admitted", name)
            return True
        now = time.monotonic()
        if now - self._refused_logged.get(key, -REFUSED_LOG_EVERY_S) >= REFUSED_LOG_EVERY_S:
            self._refused_logged[key] = now
            log.warning("refused bus client with unknown key %s", key.decode(errors="replace"))
        return False


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]], authorized_dir: Path
) -> ThreadAuthenticator:
    """Start ZAP on `ctx` before any CURVE socket binds (without a ZAP handler, libzmq
    would admit any client that knows the server key)."""
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("orochi.broker.zap"))
    auth.start()
    auth.configure_curve_callback("*", credentials_provider=AuthorizedKeys(authorized_dir))
    return auth
