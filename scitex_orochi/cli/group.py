"""The `scitex-orochi` click group and the options every command shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import click
from click.core import ParameterSource

from scitex_orochi import __version__
from scitex_orochi.client.settings import client_settings
from scitex_orochi.protocol.env import deprecation_notice

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The options every command reads from the environment, by their SCITEX_OROCHI_* suffix:
# their 0.1.0 names (OROCHI_HOST, ...) count while the new ones are unset.
CONNECTION_NAMES = {
    "host": "HOST",
    "port": "PORT",
    "dashboard_port": "DASHBOARD_PORT",
    "token": "TOKEN",
}


@dataclass
class Globals:
    host: str
    port: int
    token: str | None
    dashboard_port: int


_WARNED: set[str] = set()


def warn_legacy(names: Iterable[str]) -> None:
    """Print each 0.1.0 variable's deprecation notice to stderr, once per process."""
    for old in names:
        if old not in _WARNED:
            _WARNED.add(old)
            click.echo(f"warning: {deprecation_notice(old)}", err=True)


def _warn_legacy_options(ctx: click.Context) -> None:
    from_env = [
        name
        for param, name in CONNECTION_NAMES.items()
        if ctx.get_parameter_source(param) == ParameterSource.ENVIRONMENT
    ]
    # --token reads SCITEX_OROCHI_ADMIN_TOKEN before OROCHI_TOKEN, as the settings do.
    warn_legacy(client_settings().legacy_for(*from_env))


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
@click.option(
    "--host",
    envvar=["SCITEX_OROCHI_HOST", "OROCHI_HOST"],
    default="127.0.0.1",
    show_default=True,
    help="Hub host (env SCITEX_OROCHI_HOST).",
)
@click.option(
    "--port",
    envvar=["SCITEX_OROCHI_PORT", "OROCHI_PORT"],
    default=9559,
    type=int,
    show_default=True,
    help="Agent WebSocket port (env SCITEX_OROCHI_PORT).",
)
@click.option(
    "--dashboard-port",
    envvar=["SCITEX_OROCHI_DASHBOARD_PORT", "OROCHI_DASHBOARD_PORT"],
    default=8559,
    type=int,
    show_default=True,
    help="HTTP/dashboard port (env SCITEX_OROCHI_DASHBOARD_PORT).",
)
@click.option(
    "--token",
    envvar=["SCITEX_OROCHI_TOKEN", "SCITEX_OROCHI_ADMIN_TOKEN", "OROCHI_TOKEN"],
    default=None,
    help="Workspace or admin token (env SCITEX_OROCHI_TOKEN).",
)
@click.pass_context
def main(ctx: click.Context, host: str, port: int, dashboard_port: int, token: str | None) -> None:
    """Orochi: a real-time communication hub for AI agents.

    The 0.1.0 variable names (OROCHI_HOST, OROCHI_PORT, OROCHI_DASHBOARD_PORT,
    OROCHI_TOKEN, OROCHI_DB, GITEA_URL, GITEA_TOKEN) still work while the
    SCITEX_OROCHI_* name is unset, with a warning.
    """
    _warn_legacy_options(ctx)
    ctx.obj = Globals(host=host, port=port, token=token, dashboard_port=dashboard_port)
