"""Workspace tokens and policies over the REST API, with the admin token:
create-token (optionally pinned to one agent name), set-workspace-policy
(require pinned tokens), grant-gitea (which owners and repos the workspace's
agents may use on Gitea)."""

from __future__ import annotations

from typing import Any

import click

from scitex_orochi.cli.admin_cmds import _epilog, _path, _rest
from scitex_orochi.cli.group import Globals, main
from scitex_orochi.cli.output import dry_run, emit_json, handle_errors


def _names(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


@main.command(
    "create-token",
    epilog=_epilog("""\b
Examples:
  scitex-orochi create-token default --label laptop
  scitex-orochi create-token ws_0123456789abcdef --agent-name lead --json
  scitex-orochi create-token default --agent-name healer --dry-run
A token pinned with --agent-name registers only that name, and no other token of
the workspace may take the name.
"""),
)
@click.argument("workspace_id")
@click.option("--label", default="", help="What the token is for.")
@click.option("--agent-name", default=None, help="Pin the token to this agent name.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def create_token(
    g: Globals, workspace_id: str, label: str, agent_name: str | None, as_json: bool, dry_run_: bool
) -> None:
    """Create a workspace token (give it to one agent or one machine)."""
    body: dict[str, Any] = {"label": label}
    if agent_name:
        body["agent_name"] = agent_name
    if dry_run_:
        dry_run(
            "create a token", {"request": f"POST {_path(workspace_id, 'tokens')}", **body}, as_json
        )
        return
    row = _rest(g).post(_path(workspace_id, "tokens"), body)
    if as_json:
        emit_json(row)
        return
    row = row if isinstance(row, dict) else {}
    pinned = f" (pinned to {row['agent_name']})" if row.get("agent_name") else ""
    click.echo(f"token for {workspace_id}{pinned}: {row.get('token')}")


@main.command(
    "set-workspace-policy",
    epilog=_epilog("""\b
Examples:
  scitex-orochi set-workspace-policy ws_0123456789abcdef --require-pinned
  scitex-orochi set-workspace-policy default --no-require-pinned --json
  scitex-orochi set-workspace-policy default --require-pinned --dry-run
"""),
)
@click.argument("workspace_id")
@click.option(
    "--require-pinned/--no-require-pinned",
    required=True,
    help="Only tokens pinned to an agent name may register.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def set_workspace_policy(
    g: Globals, workspace_id: str, require_pinned: bool, as_json: bool, dry_run_: bool
) -> None:
    """Change a workspace's policies."""
    body = {"require_pinned": require_pinned}
    if dry_run_:
        dry_run(
            "change a workspace's policy",
            {"request": f"PATCH {_path(workspace_id)}", **body},
            as_json,
        )
        return
    workspace = _rest(g).request("PATCH", _path(workspace_id), body=body)
    if as_json:
        emit_json(workspace)
        return
    state = "requires" if require_pinned else "does not require"
    click.echo(f"workspace {workspace_id} now {state} pinned tokens")


@main.command(
    "grant-gitea",
    epilog=_epilog("""\b
Examples:
  scitex-orochi grant-gitea ws_0123456789abcdef --owners lab
  scitex-orochi grant-gitea default --repos lab/orochi,tools/ci --json
  scitex-orochi grant-gitea default --revoke
  scitex-orochi grant-gitea default --owners lab --dry-run
Gitea actions run with the hub's own Gitea token: a workspace's agents may use
only what it was granted (the admin token may use everything).
"""),
)
@click.argument("workspace_id")
@click.option("--owners", default=None, help="Comma-separated Gitea owners/organisations.")
@click.option("--repos", default=None, help="Comma-separated owner/repo names.")
@click.option("--revoke", is_flag=True, help="Withdraw the workspace's Gitea access.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show the request; change nothing.")
@click.pass_obj
@handle_errors
def grant_gitea(
    g: Globals,
    workspace_id: str,
    owners: str | None,
    repos: str | None,
    revoke: bool,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Grant (or revoke) a workspace's Gitea access."""
    path = _path(workspace_id, "gitea")
    body = {"owners": _names(owners), "repos": _names(repos)}
    if not revoke and not (body["owners"] or body["repos"]):
        raise click.UsageError("give --owners and/or --repos, or --revoke")
    request = f"DELETE {path}" if revoke else f"PUT {path}"
    if dry_run_:
        dry_run("change Gitea access", {"request": request, **({} if revoke else body)}, as_json)
        return
    rest = _rest(g)
    workspace = rest.delete(path) if revoke else rest.request("PUT", path, body=body)
    if as_json:
        emit_json(workspace)
        return
    grant = workspace.get("gitea_access") if isinstance(workspace, dict) else None
    click.echo(
        f"workspace {workspace_id}: Gitea access "
        + (
            "revoked"
            if not grant
            else f"owners {', '.join(grant['owners']) or '-'}; "
            f"repos {', '.join(grant['repos']) or '-'}"
        )
    )
