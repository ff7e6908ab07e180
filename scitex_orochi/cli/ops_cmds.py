"""Fleet operations over the REST API of the dashboard port: `health` (any token) and the
operator actions `kick NAME`, `forget NAME`, `purge-stale` (the admin token; a workspace
token is refused with 403), docs/operations.md "Operator actions"."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from scitex_orochi.cli.admin_cmds import ADMIN_NOTE, admin_token
from scitex_orochi.cli.agent_cmds import agent_rows
from scitex_orochi.cli.group import CONTEXT, Globals, main
from scitex_orochi.cli.output import (
    EXIT_CODES_HELP,
    dry_run,
    emit_json,
    handle_errors,
    relative_time,
    table,
)
from scitex_orochi.client.errors import AuthError
from scitex_orochi.client.rest import RestClient, http_url

# The classes of GET /api/agents/health in order, for a hub that does not list them.
CLASSES = ("healthy", "idle", "stale", "stuck_prompt", "remediating", "ghost", "dead")
DEFAULT_REAP_S = 300.0  # a hub whose /api/config does not say its reap time
KICK_CODE = 4005


def _admin_rest(g: Globals) -> RestClient:
    return RestClient(http_url(g.host, g.dashboard_port), admin_token(g))


def _params(workspace: str | None, **more: Any) -> dict[str, Any]:
    return {"workspace": workspace, **more} if workspace else dict(more)


def _workspace_option(func: Any) -> Any:
    return click.option(
        "--workspace",
        default=None,
        help="The workspace (default: default); the admin token acts on one workspace at a time.",
    )(func)


def _as_admin(action: str, call: Any) -> Any:
    """`call()`, a 403 turned into what it means: this token is not the admin token."""
    try:
        return call()
    except AuthError as exc:
        if "HTTP 403" in str(exc):
            raise AuthError(
                f"{action} needs the admin token and the hub refused this one (HTTP 403: a "
                "workspace token may not); pass --token or set SCITEX_OROCHI_ADMIN_TOKEN"
            ) from None
        raise


def _token_check(rest: RestClient) -> dict[str, Any]:
    """For a dry run: whether the hub takes this token as the admin token (/api/whoami)."""
    who = rest.get("/api/whoami")
    admin = bool(isinstance(who, dict) and who.get("admin"))
    return {"admin_token": admin} if admin else {"admin_token": False, "note": REFUSED}


REFUSED = "the hub would refuse it (403): this is not the admin token"


def _agent_path(name: str, *rest: str) -> str:
    return "/api/agents/" + "/".join(quote(p, safe="") for p in (name, *rest))


def _named(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("name") == name), None)


# ---- health ------------------------------------------------------------------------------
@main.command(
    "health",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi health                     # class, reason and source per agent, and counts
  scitex-orochi health --json              # {"agents": [...], "counts", "classes", "ts"}
  scitex-orochi health --json | jq '.agents[] | select(.health != "healthy") | .name'
\b
Classes, in order: healthy, idle, stale, stuck_prompt, remediating, ghost, dead. The
source is "hub" for the hub's own classification, else the reporter's (e.g. "healer",
POST /api/agents/health/).
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
@click.pass_obj
@handle_errors
def health(g: Globals, as_json: bool) -> None:
    """Each agent's health class, why, and who says so; then the count per class."""
    data = RestClient(http_url(g.host, g.dashboard_port), g.token).get("/api/agents/health")
    if as_json:
        emit_json(data)
        return
    data = data if isinstance(data, dict) else {}
    rows = [r for r in data.get("agents") or [] if isinstance(r, dict)]
    classes = [c for c in data.get("classes") or CLASSES if isinstance(c, str)]
    order = {c: i for i, c in enumerate(classes)}
    for row in rows:
        row.setdefault("source", "hub")
        reported = row.get("reported")
        if isinstance(reported, dict) and reported.get("status") != row.get("health"):
            by = reported.get("source") or reported.get("reported_by") or "?"
            row["reported_as"] = f"{reported.get('status')} ({by})"
        row["seen"] = relative_time(row.get("last_seen"))
    if rows:
        rows.sort(key=lambda r: (order.get(str(r.get("health")), len(order)), str(r.get("name"))))
        columns = [
            ("name", "name"),
            ("health", "health"),
            ("reason", "reason"),
            ("source", "source"),
            ("status", "status"),
            ("seen", "seen"),
        ]
        if any("reported_as" in r for r in rows):
            columns.append(("reported_as", "reported"))
        click.echo(table(rows, columns))
    else:
        click.echo("no agents")
    found = data.get("counts")
    counts: dict[str, Any] = found if isinstance(found, dict) else {}
    names = classes + [c for c in counts if c not in order]
    click.echo("  ".join(f"{c} {counts.get(c, 0)}" for c in names))


# ---- kick -------------------------------------------------------------------------------
@main.command(
    "kick",
    context_settings=CONTEXT,
    epilog=f"""\b
Examples:
  scitex-orochi kick worker-3                  # close worker-3's sockets (code {KICK_CODE})
  scitex-orochi kick worker-3 --dry-run        # is it online? what would happen
  scitex-orochi kick worker-3 --workspace lab --json
\b
A client that reconnects by itself comes back: kick, then revoke its token to keep it
out.
"""
    + ADMIN_NOTE
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("name")
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would happen; kick none.")
@click.pass_obj
@handle_errors
def kick(g: Globals, name: str, workspace: str | None, as_json: bool, dry_run_: bool) -> None:
    """Close every socket of agent NAME; it leaves presence as any closed agent does."""
    rest = _admin_rest(g)
    path = _agent_path(name, "kick")
    if dry_run_:
        rows = agent_rows(_as_admin("kick", lambda: rest.get("/api/agents", **_params(workspace))))
        online = _named(rows, name) is not None
        effect = (
            f"its sockets closed with code {KICK_CODE}" if online else "nothing: it is not online"
        )
        dry_run(
            f"kick {name}",
            {"request": f"POST {path}", "online": online, "effect": effect, **_token_check(rest)},
            as_json,
        )
        return
    data = _as_admin("kick", lambda: rest.request("POST", path, _params(workspace)))
    if as_json:
        emit_json(data)
        return
    if data.get("was_online") is False:
        click.echo(f"{name} was not online: no socket to close")
    else:
        click.echo(f"kicked {name} (its sockets closed with code {KICK_CODE})")


# ---- forget -----------------------------------------------------------------------------
@main.command(
    "forget",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi forget old-worker              # remove its registry entry
  scitex-orochi forget old-worker --dry-run    # is it listed? online?
  scitex-orochi forget old-worker --json       # {"status", "forgotten", "count"}
\b
An online agent is listed again by its next heartbeat: kick it first.
"""
    + ADMIN_NOTE
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("name")
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would happen; forget none.")
@click.pass_obj
@handle_errors
def forget(g: Globals, name: str, workspace: str | None, as_json: bool, dry_run_: bool) -> None:
    """Remove agent NAME from the registry (and the recently disconnected list)."""
    rest = _admin_rest(g)
    path = _agent_path(name)
    if dry_run_:
        rows = _as_admin("forget", lambda: rest.get("/api/agents/registry", **_params(workspace)))
        entry = _named(agent_rows(rows), name)
        dry_run(
            f"forget {name}",
            {
                "request": f"DELETE {path}",
                "listed": entry is not None,
                "online": bool(entry and entry.get("online")),
                **_token_check(rest),
            },
            as_json,
        )
        return
    data = _as_admin("forget", lambda: rest.request("DELETE", path, _params(workspace)))
    if as_json:
        emit_json(data)
        return
    count = int(data.get("count") or 0)
    click.echo(f"forgot {name} ({count} registry entr{'y' if count == 1 else 'ies'})")


# ---- purge-stale ------------------------------------------------------------------------
def _reap_after(rest: RestClient) -> float:
    """The hub's reap time from /api/config (a hub that does not say: the default)."""
    data = rest.get("/api/config")
    value = data.get("reap_after_s") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else DEFAULT_REAP_S


def would_purge(rows: list[dict[str, Any]], older_than_s: float) -> list[str]:
    """The agents purge-stale forgets: not online, last seen longer ago than the age."""
    out = []
    for row in rows:
        if row.get("online"):
            continue
        ago = row.get("last_seen_s_ago")
        if not isinstance(ago, int | float) or ago > older_than_s:
            out.append(str(row.get("name")))
    return sorted(out)


@main.command(
    "purge-stale",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi purge-stale --dry-run          # list the agents it would forget
  scitex-orochi purge-stale                    # offline longer than the hub's reap time
  scitex-orochi purge-stale --older-than 3600 --json   # {"status", "purged": [...], "count"}
"""
    + ADMIN_NOTE
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(0),
    default=None,
    metavar="SECONDS",
    help="Forget agents offline longer than this (default: the hub's "
    "SCITEX_OROCHI_REAP_AFTER_S, 300 s).",
)
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="List what would go; forget none.")
@click.pass_obj
@handle_errors
def purge_stale(
    g: Globals, older_than: float | None, workspace: str | None, as_json: bool, dry_run_: bool
) -> None:
    """Forget every agent that is not online and was last seen long ago (POST
    /api/agents/purge-stale)."""
    rest = _admin_rest(g)
    params = _params(workspace)
    if older_than is not None:
        params["older_than_s"] = f"{older_than:g}"
    if dry_run_:
        age = older_than if older_than is not None else _reap_after(rest)
        rows = _as_admin(
            "purge-stale", lambda: rest.get("/api/agents/registry", **_params(workspace))
        )
        names = would_purge(agent_rows(rows), age)
        dry_run(
            "forget the stale agents",
            {
                "request": "POST /api/agents/purge-stale",
                "older_than_s": age,
                "agents": names,
                **_token_check(rest),
            },
            as_json,
        )
        return
    data = _as_admin("purge-stale", lambda: rest.request("POST", "/api/agents/purge-stale", params))
    if as_json:
        emit_json(data)
        return
    names = list(data.get("purged") or [])
    click.echo(f"purged {len(names)}" + (f": {', '.join(names)}" if names else ": none stale"))
