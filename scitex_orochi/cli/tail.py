"""`scitex-orochi tail [PREFIX]`: print bus traffic live, decoded, one line per message."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime
from typing import Any

import click

from scitex_orochi.cli.group import main

SUMMARY_CHARS = 120


def summarize(topic: bytes, body: Any) -> str:
    """One human line for a bus message."""
    t = topic.decode("utf-8", "replace")
    if not isinstance(body, dict):
        return f"{t} {body!r}"[:400]
    if t.startswith("in."):
        frame = body.get("frame") or {}
        payload = frame.get("payload") or {}
        return (
            f"{t} {frame.get('sender')} -> {payload.get('channel')} id={frame.get('id')} "
            f"{_short(payload.get('content'))}"
        )
    if t.startswith("dlv."):
        return "\n".join(_delivery_line(t, item) for item in body.get("items") or ())
    if t.startswith("ack."):
        return "\n".join(_ack_line(t, item) for item in body.get("items") or ())
    if t.startswith("pres."):
        agent = body.get("agent") or {}
        return (
            f"{t} {body.get('event')} {agent.get('name')} gw={body.get('gw')} "
            f"channels={','.join(agent.get('channels') or [])} status={agent.get('status')}"
        )
    if t.startswith("snap"):
        names = [a.get("name") for a in body.get("agents") or []]
        return f"{t} gw={body.get('gw')} agents={len(names)} {','.join(map(str, names))[:200]}"
    return f"{t} {json.dumps(body, default=str)[:300]}"


def _delivery_line(t: str, item: dict[str, Any]) -> str:
    try:
        content = json.loads(item.get("frame") or "{}").get("payload", {}).get("content")
    except ValueError:
        content = None
    return f"{t} seq={item.get('seq')} {item.get('sender')} id={item.get('id')} {_short(content)}"


def _ack_line(t: str, item: dict[str, Any]) -> str:
    if item.get("error"):
        return f"{t} id={item.get('id')} error={item['error']}"
    return f"{t} id={item.get('id')} seq={item.get('seq')} channel={item.get('channel')}" + (
        " dup" if item.get("dup") else ""
    )


def _short(content: Any) -> str:
    text = json.dumps(content if content is not None else "", ensure_ascii=False)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + '…"'


@main.command(
    epilog="""\b
Examples:
  scitex-orochi tail                 # everything on the bus
  scitex-orochi tail dlv.            # delivered (stored) messages
  scitex-orochi tail pres.default    # presence of the default workspace
  scitex-orochi tail in. --json      # inbound messages as JSON lines
  scitex-orochi tail ack. -n 10      # stop after 10 messages
Topics: in. (to store), dlv. (stored, with seq), ack. (durable acks),
pres. (presence), snap| (presence snapshots), ctl. (control), rpc. / rep.
""",
)
@click.argument("prefix", default="")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("-n", "--count", type=int, default=0, help="Stop after N messages (0: never).")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=0.0,
    help="Stop after this many seconds (0: never).",
)
@click.option("--no-snapshots", is_flag=True, help="Hide periodic presence snapshots.")
def tail(prefix: str, as_json: bool, count: int, timeout_s: float, no_snapshots: bool) -> None:
    """Print bus traffic as it happens (operators' view of the hub's internals).

    PREFIX filters topics by byte prefix; the default shows everything.
    """
    from scitex_orochi.hub.bus import SyncBus, new_origin
    from scitex_orochi.hub.config import Config, ConfigError
    from scitex_orochi.hub.errors import BusError

    try:
        cfg = Config.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        bus = SyncBus.from_config(cfg, new_origin("tail"))
    except (ConfigError, BusError) as exc:
        raise click.ClickException(str(exc)) from None
    bus.subscribe(prefix.encode())
    try:
        bus.wait_ready(5.0)
    except BusError as exc:
        raise click.ClickException(
            f"{exc}\n  (bus: {cfg.bus.out_endpoint}; start the hub with "
            "`scitex-orochi serve` or set SCITEX_OROCHI_DATA_DIR)"
        ) from None
    click.echo(
        f"tailing {prefix or 'all topics'} on {cfg.bus.out_endpoint} (Ctrl-C to stop)", err=True
    )
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    seen = 0
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
    try:
        while not stop["now"]:
            if deadline is not None and time.monotonic() >= deadline:
                break
            for topic, body in bus.recv_burst(500, timeout_s=0.2):
                if topic.startswith(b"probe."):
                    continue
                if no_snapshots and topic == b"snap|":
                    continue
                stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
                if as_json:
                    line = json.dumps(
                        {"ts": stamp, "topic": topic.decode("utf-8", "replace"), "body": body},
                        ensure_ascii=False,
                        default=str,
                    )
                else:
                    line = "\n".join(
                        f"{stamp} {part}" for part in summarize(topic, body).splitlines()
                    )
                sys.stdout.write(line + "\n")
                seen += 1
                if count and seen >= count:
                    stop["now"] = True
                    break
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        bus.close()
