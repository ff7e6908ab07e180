"""Workspace administration over the REST API of the dashboard port, with the admin token:
create-workspace, list-workspaces, delete-workspace, list-tokens, create-invite,
list-invites."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from click.core import ParameterSource

from scitex_orochi.cli.group import Globals, main
from scitex_orochi.cli.output import (
    EXIT_CODES_HELP,
    dry_run,
    emit_json,
    handle_errors,
    normalize_channel,
    relative_time,
    table,
)
from scitex_orochi.client.rest import RestClient, http_url
from scitex_orochi.client.settings import client_settings

ADMIN_NOTE = (
    "\b\nThese commands need the admin token: --token, or SCITEX_OROCHI_ADMIN_TOKEN "
    "(preferred over SCITEX_OROCHI_TOKEN here); for a hub on this machine,\n"
    "without either, the admin token file in its data directory.\n"
)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


def admin_token(g: Globals) -> str | None:
    """--token when given on the command line, else the admin token from the environment,
    else (a hub on this machine) the one `serve` keeps in the data directory."""
    ctx = click.get_current_context().find_root()
    if ctx.get_parameter_source("token") == ParameterSource.COMMANDLINE:
        return g.token
    token = client_settings().admin_token or g.token
    if token or g.host not in LOCAL_HOSTS:
        return token
    return local_admin_token()


def local_admin_token() -> str | None:
    from scitex_orochi.hub.config import Config, ConfigError

    try:
        path = Config.from_env().admin_token_file
        return path.read_text().strip() or None
    except (ConfigError, OSError):
        return None


def _rest(g: Globals) -> RestClient:
    return RestClient(http_url(g.host, g.dashboard_port), admin_token(g))


def _path(workspace_id: str, *rest: str) -> str:
    return "/".join(["/api/workspaces", quote(workspace_id, safe=""), *rest])


def _items(data: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get(key), list):
        data = data[key]
    return [r for r in data or [] if isinstance(r, dict)] if isinstance(data, list) else []


def _epilog(examples: str) -> str:
    return examples + "\n" + ADMIN_NOTE + "\n" + EXIT_CODES_HELP


@main.command(
    "create-workspace",
    epilog=_epilog("""\b
Examples:
  scitex-orochi create-workspace my-lab --channels '#general,#research'
  scitex-orochi create-workspace my-lab --json       # includes the workspace token
  scitex-orochi create-workspace my-lab --dry-run
"""),
)
@click.argument("name")
@click.option("--channels", default=None, help="Comma-separated channels (default: the hub's).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def create_workspace(
    g: Globals, name: str, channels: str | None, as_json: bool, dry_run_: bool
) -> None:
    """Create a workspace and print its first token (give it to the workspace's agents)."""
    body: dict[str, Any] = {"name": name}
    if channels:
        body["channels"] = [normalize_channel(c) for c in channels.split(",") if c.strip()]
    if dry_run_:
        dry_run("create a workspace", {"request": "POST /api/workspaces", **body}, as_json)
        return
    created = _rest(g).post("/api/workspaces", body)
    if as_json:
        emit_json(created)
        return
    created = created if isinstance(created, dict) else {}
    workspace = created.get("workspace")
    if not isinstance(workspace, dict):
        workspace = created
    click.echo(f"created workspace {workspace.get('name', name)} (id {workspace.get('id')})")
    if created.get("token"):
        click.echo(f"token: {created['token']}")


@main.command(
    "list-workspaces",
    epilog=_epilog("""\b
Examples:
  scitex-orochi list-workspaces
  scitex-orochi list-workspaces --json
"""),
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_workspaces(g: Globals, as_json: bool) -> None:
    """Workspaces on the hub."""
    rows = _items(_rest(g).get("/api/workspaces"), "workspaces")
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no workspaces")
        return
    for row in rows:
        row["created"] = relative_time(row.get("created_at"))
    click.echo(
        table(
            rows, [("id", "id"), ("name", "name"), ("channels", "channels"), ("created", "created")]
        )
    )


@main.command(
    "delete-workspace",
    epilog=_epilog("""\b
Examples:
  scitex-orochi delete-workspace ws_0123456789abcdef --yes
  scitex-orochi delete-workspace ws_0123456789abcdef --dry-run
"""),
)
@click.argument("workspace_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def delete_workspace(
    g: Globals, workspace_id: str, yes: bool, as_json: bool, dry_run_: bool
) -> None:
    """Delete a workspace with its tokens and invites (its messages stay stored)."""
    if dry_run_:
        dry_run("delete a workspace", {"request": f"DELETE {_path(workspace_id)}"}, as_json)
        return
    if not yes:
        click.confirm(
            f"Delete workspace {workspace_id} and all its tokens and invites?", abort=True
        )
    _rest(g).delete(_path(workspace_id))
    if as_json:
        emit_json({"deleted": workspace_id})
    else:
        click.echo(f"deleted workspace {workspace_id}")


@main.command(
    "list-tokens",
    epilog=_epilog("""\b
Examples:
  scitex-orochi list-tokens default                  # the default workspace's agent tokens
  scitex-orochi list-tokens ws_0123456789abcdef --json
"""),
)
@click.argument("workspace_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_tokens(g: Globals, workspace_id: str, as_json: bool) -> None:
    """Tokens of a workspace (give one to each of the workspace's agents)."""
    rows = _items(_rest(g).get(_path(workspace_id, "tokens")), "tokens")
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no tokens for {workspace_id}")
        return
    for row in rows:
        row["created"] = relative_time(row.get("created_at"))
    click.echo(table(rows, [("token", "token"), ("label", "label"), ("created", "created")]))


@main.command(
    "create-invite",
    epilog=_epilog("""\b
Examples:
  scitex-orochi create-invite ws_0123456789abcdef --max-uses 5
  scitex-orochi create-invite ws_0123456789abcdef --expires-in 3600 --json
  scitex-orochi create-invite ws_0123456789abcdef --dry-run
"""),
)
@click.argument("workspace_id")
@click.option("--max-uses", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--expires-in",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds until the invite expires (default: never).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def create_invite(
    g: Globals,
    workspace_id: str,
    max_uses: int,
    expires_in: float | None,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Create an invite: a token that can be redeemed for a workspace token."""
    body: dict[str, Any] = {"max_uses": max_uses}
    if expires_in is not None:
        body["expires_in_s"] = expires_in
    if dry_run_:
        dry_run(
            "create an invite",
            {"request": f"POST {_path(workspace_id, 'invites')}", **body},
            as_json,
        )
        return
    invite = _rest(g).post(_path(workspace_id, "invites"), body)
    if as_json:
        emit_json(invite)
        return
    invite = invite if isinstance(invite, dict) else {}
    if isinstance(invite.get("invite"), dict):
        invite = invite["invite"]
    click.echo(
        f"invite for {workspace_id}: {invite.get('token')} "
        f"(max uses {invite.get('max_uses', max_uses)})"
    )


@main.command(
    "list-invites",
    epilog=_epilog("""\b
Examples:
  scitex-orochi list-invites ws_0123456789abcdef
  scitex-orochi list-invites ws_0123456789abcdef --json
"""),
)
@click.argument("workspace_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
@handle_errors
def list_invites(g: Globals, workspace_id: str, as_json: bool) -> None:
    """Invites of a workspace with their uses and expiry."""
    rows = _items(_rest(g).get(_path(workspace_id, "invites")), "invites")
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no invites for {workspace_id}")
        return
    for row in rows:
        row["used"] = f"{row.get('uses', 0)}/{row.get('max_uses', '?')}"
        expires = row.get("expires_at")
        row["expires"] = "never" if expires is None else relative_time(expires)
        row["created"] = relative_time(row.get("created_at"))
    click.echo(
        table(
            rows,
            [("token", "token"), ("used", "used"), ("expires", "expires"), ("created", "created")],
        )
    )
