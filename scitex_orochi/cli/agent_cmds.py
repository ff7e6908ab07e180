"""Agent commands: send, login, join over the agent WebSocket; list-agents, list-channels,
list-members, show-status, show-history over the REST API of the dashboard port (the
conversation commands, react to search, are in conv_cmds)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from scitex_orochi.cli.group import Globals, main
from scitex_orochi.cli.output import (
    EXIT_CODES_HELP,
    colour_enabled,
    dry_run,
    emit_json,
    handle_errors,
    normalize_channel,
    paint,
    relative_time,
    table,
)
from scitex_orochi.client.core import reply_metadata
from scitex_orochi.client.errors import NotFound
from scitex_orochi.client.rest import RestClient, channel_path, http_url

NAME_HELP = (
    "Agent name to register as (env SCITEX_OROCHI_AGENT, else user@host). "
    "An agent already online under this name is replaced."
)


# One-shot commands (send, join) say so when they register: the hub does not keep them
# in its list of recently disconnected agents, so they do not show up as dead.
ONE_SHOT = {"transient": True}


def _client(g: Globals, name: str | None, channels: list[str], **kw: Any) -> Any:
    from scitex_orochi.client.agent import OrochiClient

    return OrochiClient(name, host=g.host, port=g.port, token=g.token, channels=channels, **kw)


def _rest(g: Globals) -> RestClient:
    return RestClient(http_url(g.host, g.dashboard_port), g.token)


def _channels(text: str) -> list[str]:
    return [normalize_channel(c) for c in text.split(",") if c.strip()]


def _name_option(func: Any) -> Any:
    return click.option("--name", envvar="SCITEX_OROCHI_AGENT", default=None, help=NAME_HELP)(func)


def format_message(msg: Any, colour: bool) -> str:
    when = msg.time.astimezone().strftime("%H:%M:%S") if msg.time else "--:--:--"
    seq = f"#{msg.seq}" if msg.seq is not None else ""
    return (
        f"{paint(when, 'dim', colour)} {paint(msg.channel, 'cyan', colour)}"
        f"{paint(seq, 'dim', colour)} {paint(msg.sender, 'yellow', colour)}: {msg.content}"
    )


# ---- WebSocket commands -----------------------------------------------------------
@main.command(
    epilog="""\b
Examples:
  scitex-orochi send '#general' 'Build #42 passed. @deployer ready to ship.'
  echo 'from stdin' | scitex-orochi send '#builds' -
  scitex-orochi send '#general' 'hi' --metadata '{"build": 42}' --json
  scitex-orochi send '#general' 'on it' --reply-to 1234    # a reply in message 1234's thread
  scitex-orochi send '#general' 'hi' --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP
)
@click.argument("channel")
@click.argument("content")
@_name_option
@click.option("--metadata", default=None, help="JSON object stored with the message.")
@click.option(
    "--reply-to",
    "reply_to",
    default=None,
    metavar="MSG",
    help="Reply in the thread of message MSG (its number or id) of the same channel.",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the ack.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would be sent; send nothing.")
@click.pass_obj
@handle_errors
def send(
    g: Globals,
    channel: str,
    content: str,
    name: str | None,
    metadata: str | None,
    reply_to: str | None,
    timeout: float,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Post CONTENT to CHANNEL; returns once the hub has stored it (prints its seq).

    CONTENT `-` reads the message from standard input. With --reply-to the message
    is a reply (metadata.reply_to) in that message's thread.
    """
    channel = normalize_channel(channel)
    if content == "-":
        content = sys.stdin.read()
    meta = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--metadata") from None
        if not isinstance(meta, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--metadata")
    if reply_to is not None:
        meta = reply_metadata(message_arg(reply_to, "--reply-to"), meta)
    if dry_run_:
        dry_run(
            "send a message",
            {
                "url": f"ws://{g.host}:{g.port}/",
                "channel": channel,
                "content": content,
                "metadata": meta or {},
            },
            as_json,
        )
        return

    async def run() -> Any:
        async with _client(
            g, name, [], resume=False, reconnect=True, timeout=timeout, extra_register=ONE_SHOT
        ) as c:
            return await c.send(channel, content, meta)

    sent = asyncio.run(run())
    print_sent(sent, as_json, meta)


def print_sent(sent: Any, as_json: bool, meta: dict[str, Any] | None = None) -> None:
    reply_to = (meta or {}).get("reply_to")
    if as_json:
        out = {"id": sent.id, "channel": sent.channel, "seq": sent.seq, "dup": sent.dup}
        if sent.num is not None:
            out["num"] = sent.num
        if reply_to is not None:
            out["reply_to"] = reply_to
        emit_json(out)
    else:
        tail = f", a reply to {reply_to}" if reply_to is not None else ""
        click.echo(f"sent to {sent.channel} (seq {sent.seq}, id {sent.id}){tail}")


def message_arg(value: str, hint: str = "MSG") -> str | int:
    """A message named on the command line: its number (digits) or its id."""
    from scitex_orochi.client.core import message_ref

    try:
        return message_ref(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


@main.command(
    epilog="""\b
Examples:
  scitex-orochi login --name my-agent --channels '#general,#builds'
  scitex-orochi login --json | jq .content     # one JSON object per message
  scitex-orochi login --count 1                # exit after the first message
"""
    + "\n"
    + EXIT_CODES_HELP
)
@_name_option
@click.option(
    "--channels", default="#general", show_default=True, help="Comma-separated channels to join."
)
@click.option(
    "--count", type=click.IntRange(1), default=None, help="Exit after this many messages."
)
@click.option(
    "--heartbeat",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds between heartbeats with system metrics (0: none).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@handle_errors
def login(
    g: Globals, name: str | None, channels: str, count: int | None, heartbeat: float, as_json: bool
) -> None:
    """Connect as an agent and print messages as they arrive (Ctrl-C to stop).

    Reconnects by itself and prints what was missed while away, once, in order.
    """
    colour = colour_enabled()

    async def run() -> None:
        async with _client(g, name, _channels(channels)) as client:
            if heartbeat > 0:
                client.start_heartbeat(heartbeat)
            # on stderr, also with --json: scripts can wait for it; stdout stays data
            click.echo(
                paint(
                    f"connected to {client.url} as {client.name} on {', '.join(client.channels)}",
                    "green",
                    colour_enabled(sys.stderr),
                ),
                err=True,
            )
            seen = 0
            async for msg in client.listen():
                if as_json:
                    click.echo(json.dumps(msg.to_dict(), ensure_ascii=False))
                else:
                    click.echo(format_message(msg, colour))
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    return

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@main.command(
    epilog="""\b
Examples:
  scitex-orochi join '#alerts' --name my-agent
  scitex-orochi join alerts --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP
)
@click.argument("channel")
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would happen; change nothing.")
@click.pass_obj
@handle_errors
def join(g: Globals, channel: str, name: str | None, as_json: bool, dry_run_: bool) -> None:
    """Subscribe NAME to CHANNEL on the hub. The subscription lasts: the hub gives it back
    each time NAME registers again (docs/conversations.md)."""
    channel = normalize_channel(channel)
    if dry_run_:
        dry_run("join a channel", {"channel": channel, "name": name or "(default)"}, as_json)
        return

    async def run() -> tuple[str, list[str]]:
        async with _client(g, name, [], resume=False, extra_register=ONE_SHOT) as client:
            await client.subscribe(channel)
            return client.name, (await client.who()).get(client.name, [channel])

    agent, member_of = asyncio.run(run())
    if as_json:
        emit_json({"agent": agent, "channel": channel, "channels": member_of})
    else:
        click.echo(f"{agent} joined {channel}")


# ---- REST commands -------------------------------------------------------------------
def agent_rows(data: Any) -> list[dict[str, Any]]:
    """`/api/agents` as a list of records, whichever shape the gateway returns."""
    if isinstance(data, dict) and isinstance(data.get("agents"), list | dict):
        data = data["agents"]
    if isinstance(data, dict):
        return [
            {"name": k, **(v if isinstance(v, dict) else {"channels": v})} for k, v in data.items()
        ]
    return [r for r in data or [] if isinstance(r, dict)]


@main.command(
    "list-agents",
    epilog="""\b
Examples:
  scitex-orochi list-agents
  scitex-orochi list-agents --json | jq '.[].name'
  scitex-orochi list-agents --json | jq '.[] | {name, current_task, subagents}'

SUBAGENTS is the count and the names (dialect-B agents send the list with
subagents_update; A agents a count, orochi_subagent_count). --json carries each
agent's `subagents` list ([] when it sent none) and `subagent_count`.
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_agents(g: Globals, as_json: bool) -> None:
    """Agents connected to the hub, with what they are doing: health, current task and
    subagents."""
    rows = agent_rows(_rest(g).get("/api/agents"))
    for row in rows:
        if not isinstance(row.get("subagents"), list):
            row["subagents"] = []
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no agents online")
        return
    for row in rows:
        row["seen"] = relative_time(row.get("last_seen") or row.get("last_heartbeat"))
        row["task"] = row.get("current_task") or row.get("orochi_current_task")
        row["subs"] = subagent_cell(row)
    click.echo(
        table(
            sorted(rows, key=lambda r: str(r.get("name"))),
            [
                ("name", "name"),
                ("status", "status"),
                ("machine", "machine"),
                ("health", "health"),
                ("role", "role"),
                ("channels", "channels"),
                ("seen", "seen"),
                ("subs", "subagents"),
                ("task", "task"),
            ],
        )
    )


def subagent_cell(row: dict[str, Any]) -> str:
    """`2 (scout,fixer)` from a B agent's list, `3` from an A agent's count, else `-`."""
    names = [str(s.get("name") or "?") for s in row.get("subagents") or [] if isinstance(s, dict)]
    count = row.get("subagent_count")
    if names:
        return f"{len(names)} ({','.join(names)})"
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return str(count)
    return "-"


def _channel_members(g: Globals) -> dict[str, list[str]]:
    data = _rest(g).get("/api/channels")
    if isinstance(data, dict) and isinstance(data.get("channels"), dict):
        data = data["channels"]
    return {k: list(v) for k, v in (data or {}).items()} if isinstance(data, dict) else {}


@main.command(
    "list-channels",
    epilog="""\b
Examples:
  scitex-orochi list-channels
  scitex-orochi list-channels --json
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_channels(g: Globals, as_json: bool) -> None:
    """Channels with their members."""
    channels = _channel_members(g)
    if as_json:
        emit_json(channels)
        return
    if not channels:
        click.echo("no channels")
        return
    click.echo(
        table(
            [{"channel": c, "members": len(m), "names": m} for c, m in sorted(channels.items())],
            [("channel", "channel"), ("members", "members"), ("names", "names")],
        )
    )


def _channel_summary(g: Globals) -> dict[str, list[str]]:
    """Every channel of the workspace (with history, configured, or with members online)
    → members online; a hub without /api/channels/summary: the channels with members."""
    try:
        data = _rest(g).get("/api/channels/summary")
    except NotFound:
        return _channel_members(g)
    rows = data.get("channels") if isinstance(data, dict) else None
    return {
        str(r["name"]): list(r.get("members") or [])
        for r in rows or []
        if isinstance(r, dict) and r.get("name")
    }


@main.command(
    "list-members",
    epilog="""\b
Examples:
  scitex-orochi list-members --channel '#general'
  scitex-orochi list-members --channel general --json
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option("--channel", required=True, help="Channel to list.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_members(g: Globals, channel: str, as_json: bool) -> None:
    """Agents online in a channel (the channel may have history and nobody online)."""
    channel = normalize_channel(channel)
    channels = _channel_summary(g)
    if channel not in channels:
        known = ", ".join(sorted(channels)) or "none"
        raise NotFound("UNKNOWN_CHANNEL", f"no channel {channel} (channels: {known})")
    members = sorted(channels[channel])
    if as_json:
        emit_json({"channel": channel, "members": members})
    else:
        click.echo("\n".join(members) if members else f"{channel}: no members online")


@main.command(
    "show-status",
    epilog="""\b
Examples:
  scitex-orochi show-status
  scitex-orochi show-status --json
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def show_status(g: Globals, as_json: bool) -> None:
    """Hub statistics: agents online, active channels, observers."""
    stats = _rest(g).get("/api/stats")
    if as_json:
        emit_json(stats)
        return
    stats = stats if isinstance(stats, dict) else {}
    rows = [
        {
            "item": "hub",
            "value": f"{http_url(g.host, g.dashboard_port)}  (agents: ws://{g.host}:{g.port}/)",
        }
    ]
    for key in ("agents_online", "channels_active", "observers_connected"):
        if key in stats:
            rows.append({"item": key.replace("_", " "), "value": stats[key]})
    for key in ("agents", "channels"):
        value = stats.get(key)
        if isinstance(value, list | dict) and value:
            names = sorted(value) if isinstance(value, dict) else value
            rows.append({"item": key, "value": ", ".join(str(v) for v in names)})
    click.echo(table(rows, [("item", "item"), ("value", "value")]))


@main.command(
    "show-history",
    epilog="""\b
Examples:
  scitex-orochi show-history '#general' --limit 20
  scitex-orochi show-history general --since 2024-01-15T00:00:00+00:00 --json
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("channel")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--since", default=None, help="Only messages at or after this ISO time.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (oldest first).")
@click.pass_obj
@handle_errors
def show_history(g: Globals, channel: str, limit: int, since: str | None, as_json: bool) -> None:
    """Stored messages of CHANNEL, oldest first."""
    from scitex_orochi.client.core import Message

    channel = normalize_channel(channel)
    data = _rest(g).get(f"/api/history/{channel_path(channel)}", limit=limit, since=since)
    if isinstance(data, dict):
        data = data.get("history") or data.get("messages") or []
    rows = [r for r in data or [] if isinstance(r, dict)]
    rows.sort(key=lambda r: (r.get("seq") or 0, str(r.get("ts"))))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no messages in {channel}")
        return
    colour = colour_enabled()
    for row in rows:
        msg = Message.from_row(row)
        click.echo(f"{format_message(msg, colour)}  {paint(relative_time(msg.ts), 'dim', colour)}")
