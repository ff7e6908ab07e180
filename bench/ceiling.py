"""The ceiling: a bare websockets server that relays and acks, doing no other work.

Every `message` frame is relayed unchanged to every other connection
(`websockets.broadcast`, which never awaits a socket) and acked to its sender;
every other frame is acked (after an empty reply for `presence` and `query`).
No storage, no channels, no validation beyond reading `type` and `id`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

CONNECTIONS: set[ServerConnection] = set()
NAMES: dict[ServerConnection, str] = {}


def _ack(ref: object) -> str:
    return json.dumps(
        {"type": "ack", "sender": "orochi-server", "payload": {"status": "ok", "ref": ref}}
    )


async def handle(ws: ServerConnection) -> None:
    CONNECTIONS.add(ws)
    try:
        async for raw in ws:
            try:
                frame = json.loads(raw)
                ftype, ref = frame.get("type"), frame.get("id")
            except (ValueError, AttributeError):
                continue
            if ftype == "message":
                broadcast([c for c in CONNECTIONS if c is not ws], raw)
            elif ftype == "register":
                NAMES[ws] = str(frame.get("sender"))
            elif ftype == "presence":
                await ws.send(
                    json.dumps(
                        {
                            "type": "presence",
                            "sender": "orochi-server",
                            "payload": {"agents": {n: [] for n in NAMES.values()}},
                        }
                    )
                )
            elif ftype == "query":
                await ws.send(
                    json.dumps(
                        {"type": "message", "sender": "orochi-server", "payload": {"history": []}}
                    )
                )
            await ws.send(_ack(ref))
    except ConnectionClosed:
        pass
    finally:
        CONNECTIONS.discard(ws)
        NAMES.pop(ws, None)


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(
        handle, host, port, compression=None, max_size=1 << 20, ping_interval=30, ping_timeout=10
    ):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
