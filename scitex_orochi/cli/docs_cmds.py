"""`scitex-orochi docs list|get PAGE`: the project's own documentation, shipped in the
package (scitex_orochi/docpages.py finds it)."""

from __future__ import annotations

import sys

import click

from scitex_orochi import docpages
from scitex_orochi.cli.group import CONTEXT, main
from scitex_orochi.cli.output import EXIT_USAGE, emit_json, table


def _unknown(exc: docpages.UnknownPage) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_USAGE)


@main.group(
    "docs",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi docs list                  # every page: name, title, size
  scitex-orochi docs get protocol          # the wire protocol, as markdown
  scitex-orochi docs get operations | less
""",
)
def docs() -> None:
    """The project's documentation pages (README, protocol, fleet dialect, operations,
    security, ...), as shipped with this version."""


@docs.command(
    "list",
    epilog="""\b
Examples:
  scitex-orochi docs list
  scitex-orochi docs list --json     # [{"name", "title", "file", "size"}, ...]
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print the pages as a JSON list.")
def list_pages(as_json: bool) -> None:
    """One line per page: its name (for `docs get`), title and size in bytes."""
    rows = [
        {"name": p.name, "title": p.title, "file": p.file, "size": p.size} for p in docpages.pages()
    ]
    if as_json:
        emit_json(rows)
        return
    click.echo(table(rows, [("name", "page"), ("title", "title"), ("size", "bytes")]))


@docs.command(
    "get",
    epilog="""\b
Examples:
  scitex-orochi docs get readme
  scitex-orochi docs get protocol > protocol.md
  scitex-orochi docs get security --section Identity
  scitex-orochi docs get fleet --json      # {"name", "title", "file", "size", "text"}

\b
Exit codes:
  0  printed
  2  no such page, or no such section (the error lists what there is)
""",
)
@click.argument("page")
@click.option("--section", default=None, help="Only the part under this heading.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as a JSON object.")
def get_page(page: str, section: str | None, as_json: bool) -> None:
    """Print PAGE's markdown to stdout, as written (`docs list` names the pages)."""
    try:
        info = docpages.page(page)
    except docpages.UnknownPage as exc:
        _unknown(exc)
        return
    text = info.text
    if section is not None:
        part = docpages.section(text, section)
        if part is None:
            headings = ", ".join(docpages.headings(text)) or "none"
            click.echo(f"error: no section '{section}' in {page}; headings: {headings}", err=True)
            sys.exit(EXIT_USAGE)
        text = part
    if as_json:
        emit_json(
            {
                "name": info.name,
                "title": info.title,
                "file": info.file,
                "size": info.size,
                "text": text,
            }
        )
        return
    click.echo(text, nl=False)
