"""`scitex-orochi skills list|get NAME|export [DIR]|propose FILE`: the workspace's slash
skills over the REST API of the dashboard port (docs/operations.md "Skills")."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from scitex_orochi.cli.group import CONTEXT, Globals, main
from scitex_orochi.cli.output import EXIT_CODES_HELP, EXIT_USAGE, dry_run, emit_json, handle_errors
from scitex_orochi.client.rest import RestClient, http_url
from scitex_orochi.protocol import skills as sk

DEFAULT_EXPORT_DIR = Path("~/.scitex/orochi/skills")


def _rest(g: Globals) -> RestClient:
    return RestClient(http_url(g.host, g.dashboard_port), g.token)


def _path(name: str, *rest: str) -> str:
    return "/api/skills/" + "/".join(quote(p, safe="") for p in (name, *rest))


def _params(workspace: str | None) -> dict[str, Any]:
    return {"workspace": workspace} if workspace else {}


def _workspace_option(func: Any) -> Any:
    return click.option(
        "--workspace",
        default=None,
        help="With the admin token: the workspace (default: default). A workspace token "
        "always means its own.",
    )(func)


@main.group(
    "skills",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi skills list                    # name, arguments, description
  scitex-orochi skills get deploy              # the skill file, as markdown
  scitex-orochi skills export ./skills         # every skill into ./skills/<name>.md
  scitex-orochi skills propose deploy.md --proposer worker-1
""",
)
def skills() -> None:
    """Slash skills: markdown templates a person uses as `/<skill> @agent args...` in a
    channel; the hub fills them in and posts them to the agents. Admins write them
    (REST); agents propose them for an admin to approve."""


@skills.command(
    "list",
    epilog="""\b
Examples:
  scitex-orochi skills list
  scitex-orochi skills list --json       # {"workspace", "skills": [{name, description, arguments}]}
  scitex-orochi --token "$ADMIN" skills list --workspace ws_1234
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
@handle_errors
def list_skills(g: Globals, workspace: str | None, as_json: bool) -> None:
    """The skills of the workspace: name, usage and description."""
    data = _rest(g).get("/api/skills", **_params(workspace))
    if as_json:
        emit_json(data)
        return
    rows = data.get("skills") or []
    if not rows:
        click.echo(f"no skills in workspace {data.get('workspace')}")
        return
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        args = " ".join(
            a["name"] if a.get("required") else f"[{a['name']}]" for a in row.get("arguments", [])
        )
        click.echo(f"{row['name'].ljust(width)}  {args or '-'}  {row.get('description') or ''}")


@skills.command(
    "get",
    epilog="""\b
Examples:
  scitex-orochi skills get deploy            # the file: front matter and template
  scitex-orochi skills get deploy > deploy.md
  scitex-orochi skills get deploy --json     # {name, description, arguments, body, markdown}
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("name")
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the skill as JSON.")
@click.pass_obj
@handle_errors
def get_skill(g: Globals, name: str, workspace: str | None, as_json: bool) -> None:
    """Print skill NAME as its markdown file."""
    data = _rest(g).get(_path(name), **_params(workspace))
    if as_json:
        emit_json(data)
        return
    click.echo(data["markdown"], nl=False)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@skills.command(
    "export",
    epilog="""\b
Examples:
  scitex-orochi skills export                  # into ~/.scitex/orochi/skills/
  scitex-orochi skills export ./skills --dry-run
  scitex-orochi skills export ./skills --json  # {"dir", "written": [paths]}
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would be written; write none.")
@click.pass_obj
@handle_errors
def export(
    g: Globals, directory: Path | None, workspace: str | None, as_json: bool, dry_run_: bool
) -> None:
    """Write every skill to DIRECTORY/<name>.md (default ~/.scitex/orochi/skills),
    replacing files of the same name."""
    target = (directory or DEFAULT_EXPORT_DIR).expanduser()
    rest = _rest(g)
    names = [s["name"] for s in rest.get("/api/skills", **_params(workspace)).get("skills", [])]
    paths = [str(target / f"{name}.md") for name in names]
    if dry_run_:
        dry_run("write skill files", {"dir": str(target), "files": paths}, as_json)
        return
    target.mkdir(parents=True, exist_ok=True)
    for name, path in zip(names, paths, strict=True):
        skill = rest.get(_path(name), **_params(workspace))
        _write_atomic(Path(path), skill["markdown"])
    if as_json:
        emit_json({"dir": str(target), "written": paths})
        return
    click.echo(f"wrote {len(paths)} skill(s) to {target}")


@skills.command(
    "propose",
    epilog="""\b
Examples:
  scitex-orochi skills propose deploy.md --proposer worker-1   # as a connected agent
  scitex-orochi skills propose deploy.md                       # a token pinned to a name
  scitex-orochi skills propose deploy.md --dry-run --json
\b
An admin approves it: POST /api/skills/pending/<name>/approve.
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--proposer",
    envvar="SCITEX_OROCHI_AGENT",
    default=None,
    help="The agent that proposes (env SCITEX_OROCHI_AGENT): connected in the token's "
    "workspace, or the token's pinned name.",
)
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Check FILE and show the request.")
@click.pass_obj
@handle_errors
def propose(
    g: Globals,
    file: Path,
    proposer: str | None,
    workspace: str | None,
    as_json: bool,
    dry_run_: bool,
) -> None:
    """Propose the skill in FILE (a skill markdown file); it waits for an admin."""
    text = file.read_text(encoding="utf-8")
    try:
        skill = sk.parse_markdown(text)
    except sk.SkillError as exc:
        click.echo(f"error: {file}: {exc.detail}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    body: dict[str, Any] = {"markdown": text}
    if proposer:
        body["proposer"] = proposer
    path = _path(skill.name, "propose")
    if dry_run_:
        details = {"url": http_url(g.host, g.dashboard_port) + path, "name": skill.name}
        dry_run("propose a skill", {**details, "proposer": proposer or "-"}, as_json)
        return
    rest = _rest(g)
    data = rest.request("POST", path, _params(workspace), body)
    if as_json:
        emit_json(data)
        return
    click.echo(f"proposed {skill.name} as {data.get('proposer')}: pending an admin's approval")
