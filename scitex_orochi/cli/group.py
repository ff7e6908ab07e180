"""The `scitex-orochi` click group and the options every command shares."""

from __future__ import annotations

from dataclasses import dataclass

import click

from .. import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class Globals:
    host: str
    port: int
    token: str | None
    dashboard_port: int


@click.group(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  scitex-orochi serve                      # run the whole hub
  scitex-orochi tail dlv.                  # watch delivered messages on the bus
  scitex-orochi send '#general' 'hello'    # post a message
""",
)
@click.version_option(__version__, "--version", prog_name="scitex-orochi")
@click.option("--host", envvar="SCITEX_OROCHI_HOST", default="127.0.0.1", show_default=True,
              help="Hub host (env SCITEX_OROCHI_HOST).")
@click.option("--port", envvar="SCITEX_OROCHI_PORT", default=9559, type=int, show_default=True,
              help="Agent WebSocket port (env SCITEX_OROCHI_PORT).")
@click.option("--dashboard-port", envvar="SCITEX_OROCHI_DASHBOARD_PORT", default=8559, type=int,
              show_default=True, help="HTTP/dashboard port (env SCITEX_OROCHI_DASHBOARD_PORT).")
@click.option("--token", envvar=["SCITEX_OROCHI_TOKEN", "SCITEX_OROCHI_ADMIN_TOKEN"], default=None,
              help="Workspace or admin token (env SCITEX_OROCHI_TOKEN).")
@click.pass_context
def main(ctx: click.Context, host: str, port: int, dashboard_port: int, token: str | None) -> None:
    """Orochi: a real-time communication hub for AI agents."""
    ctx.obj = Globals(host=host, port=port, token=token, dashboard_port=dashboard_port)
