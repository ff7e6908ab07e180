"""Conversation commands (docs/conversations.md): react, edit-message, delete-message,
send-dm and search over the agent WebSocket as agent NAME; show-thread over the REST API
of the dashboard port. `send --reply-to` (agent_cmds) posts a reply.

A message is named by its hub number (digits) or its envelope id, as everywhere."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from scitex_orochi.cli.agent_cmds import (
    ONE_SHOT,
    _client,
    _name_option,
    _rest,
    format_message,
    message_arg,
    print_sent,
)
from scitex_orochi.cli.group import Globals, main
from scitex_orochi.cli.output import (
    EXIT_CODES_HELP,
    colour_enabled,
    dry_run,
    emit_json,
    handle_errors,
    normalize_channel,
    paint,
)

TIMEOUT_HELP = "Seconds to wait for the ack."


def _timeout_option(func: Any) -> Any:
    return click.option("--timeout", default=30.0, show_default=True, help=TIMEOUT_HELP)(func)


def _json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def _dry_run_option(func: Any) -> Any:
    return click.option(
        "--dry-run", "dry_run_", is_flag=True, help="Show what would be sent; send nothing."
    )(func)


def _content(content: str) -> str:
    return sys.stdin.read() if content == "-" else content


def _emoji(value: str) -> str:
    from scitex_orochi.protocol.conversations import ConversationError, check_emoji

    try:
        return check_emoji(value, "EMOJI")
    except ConversationError as exc:
        raise click.BadParameter(exc.detail, param_hint="EMOJI") from None


def _url(g: Globals) -> str:
    return f"ws://{g.host}:{g.port}/"


def _run_as(g: Globals, name: str | None, timeout: float, call: Any) -> Any:
    """Connect as NAME (one-shot, no channels), run `call(client)`, close."""

    async def run() -> Any:
        async with _client(
            g, name, [], resume=False, timeout=timeout, extra_register=ONE_SHOT
        ) as client:
            return await call(client)

    return asyncio.run(run())


def _print_change(changed: Any, as_json: bool, text: str, **fields: Any) -> None:
    if as_json:
        emit_json({**fields, **changed.to_dict()})
        return
    seq = f", seq {changed.seq}" if changed.seq is not None else ""
    click.echo(f"{text} ({changed.outcome}{seq})")


# ---- reactions, edits, deletes ----------------------------------------------------------
@main.command(
    epilog="""\b
Examples:
  scitex-orochi react 1234 '👍'                 # message number 1234 (as in /m/1234)
  scitex-orochi react 1234 '👍' --remove
  scitex-orochi react "$MSG_ID" ':eyes:' --name my-agent --json
  scitex-orochi react 1234 '🎉' --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP
)
@click.argument("message")
@click.argument("emoji")
@click.option("--remove", is_flag=True, help="Take the reaction back instead of adding it.")
@_name_option
@_timeout_option
@_json_option
@_dry_run_option
@click.pass_obj
@handle_errors
def react(
    g: Globals,
    message: str,
    emoji: str,
    remove: bool,
    name: str | None,
    timeout: float,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """React to MESSAGE (its number or id) with EMOJI, as agent NAME.

    Adding a reaction that is there already, or removing one that is not, is not an
    error: the outcome says so (added, existed, removed, not_found).
    """
    ref, emoji = message_arg(message), _emoji(emoji)
    action = "remove" if remove else "add"
    if dry_run_:
        dry_run(
            f"{action} a reaction",
            {"url": _url(g), "message": ref, "emoji": emoji, "action": action},
            as_json,
        )
        return
    changed = _run_as(g, name, timeout, lambda c: c.react(ref, emoji, remove))
    verb = f"removed {emoji} from" if remove else f"reacted {emoji} to"
    _print_change(changed, as_json, f"{verb} message {ref}", emoji=emoji, action=action)


@main.command(
    "edit-message",
    epilog="""\b
Examples:
  scitex-orochi edit-message 1234 'Build #42 passed (all 3 suites).' --name ci-bot
  echo 'new text' | scitex-orochi edit-message 1234 - --name ci-bot --json
  scitex-orochi edit-message 1234 'fixed' --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("message")
@click.argument("content")
@_name_option
@_timeout_option
@_json_option
@_dry_run_option
@click.pass_obj
@handle_errors
def edit_message(
    g: Globals,
    message: str,
    content: str,
    name: str | None,
    timeout: float,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Replace the content of MESSAGE (its number or id) with CONTENT.

    Only the agent that sent it (NAME) may edit it, or the admin token. CONTENT `-`
    reads the new text from standard input.
    """
    ref, content = message_arg(message), _content(content)
    if dry_run_:
        dry_run("edit a message", {"url": _url(g), "message": ref, "content": content}, as_json)
        return
    changed = _run_as(g, name, timeout, lambda c: c.edit(ref, content))
    _print_change(changed, as_json, f"edited message {ref}", message=ref)


@main.command(
    "delete-message",
    epilog="""\b
Examples:
  scitex-orochi delete-message 1234 --name ci-bot
  scitex-orochi delete-message "$MSG_ID" --name ci-bot --json
  scitex-orochi delete-message 1234 --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("message")
@_name_option
@_timeout_option
@_json_option
@_dry_run_option
@click.pass_obj
@handle_errors
def delete_message(
    g: Globals, message: str, name: str | None, timeout: float, as_json: bool, dry_run_: bool
) -> None:
    """Delete MESSAGE (its number or id); history keeps a tombstone.

    Only the agent that sent it (NAME) may delete it, or the admin token.
    """
    ref = message_arg(message)
    if dry_run_:
        dry_run("delete a message", {"url": _url(g), "message": ref}, as_json)
        return
    changed = _run_as(g, name, timeout, lambda c: c.delete(ref))
    _print_change(changed, as_json, f"deleted message {ref}", message=ref)


# ---- direct messages ---------------------------------------------------------------------
@main.command(
    "send-dm",
    epilog="""\b
Examples:
  scitex-orochi send-dm deployer 'Ready to ship build #42?' --name ci-bot
  scitex-orochi send-dm human:ann 'Done.' --name ci-bot --json
  echo 'from stdin' | scitex-orochi send-dm deployer - --name ci-bot
  scitex-orochi send-dm deployer 'hi' --name ci-bot --dry-run
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("agent")
@click.argument("content")
@_name_option
@_timeout_option
@_json_option
@_dry_run_option
@click.pass_obj
@handle_errors
def send_dm(
    g: Globals,
    agent: str,
    content: str,
    name: str | None,
    timeout: float,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Send CONTENT to AGENT directly, as agent NAME.

    AGENT is an agent name (or agent:NAME), or human:NAME for a person. The message
    goes to their DM channel, dm:agent:A|agent:B (the two sorted), which only the two
    may read. CONTENT `-` reads the message from standard input.
    """
    from scitex_orochi.client.conn import default_agent_name
    from scitex_orochi.client.core import dm_channel_for

    me = name or default_agent_name()
    try:
        channel = dm_channel_for(me, agent)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AGENT") from None
    content = _content(content)
    if dry_run_:
        dry_run(
            "send a direct message",
            {"url": _url(g), "from": me, "to": agent, "channel": channel, "content": content},
            as_json,
        )
        return
    sent = _run_as(g, me, timeout, lambda c: c.send(channel, content))
    print_sent(sent, as_json)


# ---- reading -----------------------------------------------------------------------------
@main.command(
    epilog="""\b
Examples:
  scitex-orochi search 'deploy failed'
  scitex-orochi search timeout --channel '#builds' --sender ci-bot --limit 5
  scitex-orochi search 'build 42' --name my-agent --json   # also my DMs
"""
    + "\n"
    + EXIT_CODES_HELP
)
@click.argument("query")
@click.option("--channel", default=None, help="Only this channel.")
@click.option("--sender", default=None, help="Only messages of this sender.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@_name_option
@_timeout_option
@_json_option
@click.pass_obj
@handle_errors
def search(
    g: Globals,
    query: str,
    channel: str | None,
    sender: str | None,
    limit: int,
    name: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Messages whose content has the words of QUERY, best match first (then newest).

    Searches what the token may read, as agent NAME (whose DMs are included); a deleted
    message is not found, an edited one by its new words.
    """
    if not query.strip():
        raise click.BadParameter("give at least one word", param_hint="QUERY")
    channel = normalize_channel(channel) if channel else None
    found = _run_as(g, name, timeout, lambda c: c.search(query, channel, sender, limit))
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    if not found:
        click.echo(f"no messages match {query!r}")
        return
    colour = colour_enabled()
    for msg in found:
        num = f"  {paint(f'[{msg.num}]', 'dim', colour)}" if msg.num is not None else ""
        click.echo(format_message(msg, colour) + num)


@main.command(
    "show-thread",
    epilog="""\b
Examples:
  scitex-orochi show-thread 1234                # the number of its root, as in /m/1234
  scitex-orochi show-thread 1234 --limit 20 --json
  scitex-orochi show-thread 1234 --name my-agent   # a thread of my-agent's DM
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("message")
@click.option("--limit", type=click.IntRange(1, 1000), default=None, help="At most this many.")
@click.option(
    "--name",
    default=None,
    help="Read as this agent (online with this token, or its pinned name): its DMs too.",
)
@_json_option
@click.pass_obj
@handle_errors
def show_thread(
    g: Globals, message: str, limit: int | None, name: str | None, as_json: bool
) -> None:
    """The thread of MESSAGE (its number): the root, then its replies, oldest first."""
    from scitex_orochi.client.core import Thread

    ref = message_arg(message)
    if not isinstance(ref, int):
        raise click.BadParameter(
            "give the message's number (as in /m/<num>, or `num` in --json output)",
            param_hint="MSG",
        )
    data = _rest(g).get(f"/api/threads/{ref}/", limit=limit, agent=name)
    thread = Thread.from_rest(data)
    if as_json:
        body = data if isinstance(data, dict) else {}
        emit_json({**body, "replies": [m.payload for m in thread.replies]})
        return
    colour = colour_enabled()
    click.echo(format_message(thread.root, colour))
    for reply in thread.replies:
        click.echo(f"  {paint('↳', 'dim', colour)} {format_message(reply, colour)}")
    if not thread.replies:
        click.echo(paint("  (no replies)", "dim", colour))


__all__ = [
    "delete_message",
    "edit_message",
    "react",
    "search",
    "send_dm",
    "show_thread",
]
