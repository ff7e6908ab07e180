"""`scitex-orochi setup-push`: the hub's VAPID public key and how a person subscribes to
web push (docs/operations.md "Web push").

By default the key comes from the running hub (`GET /api/push/vapid-public-key` on the
dashboard port), which answers only while it runs with SCITEX_OROCHI_PUSH_ENABLED=true.
`--data-dir DIR` reads `<DIR>/vapid_private.pem` instead, without a hub, and makes the
key pair there when it is absent (0600; `serve` would make the same file at its next
start, and keeps an existing one), so the key can be known before the first start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scitex_orochi.cli.admin_cmds import admin_token
from scitex_orochi.cli.group import Globals, main
from scitex_orochi.cli.output import EXIT_CODES_HELP, emit_json, handle_errors
from scitex_orochi.client.rest import RestClient, http_url

ENABLE_HINT = "SCITEX_OROCHI_PUSH_ENABLED=true"


def _key_from_dir(data_dir: Path, dry_run: bool) -> tuple[str | None, bool]:
    """(public key or None, whether it was made now)."""
    from scitex_orochi.hub import webpush  # the hub's crypto only for this command

    if not data_dir.is_dir():
        raise click.UsageError(f"--data-dir {data_dir} is not a directory")
    path = webpush.vapid_path(data_dir)
    existed = path.exists()
    if not existed and dry_run:
        return None, False
    return webpush.public_key_b64(webpush.load_or_create(data_dir)), not existed


def _how(base: str, person: str) -> dict[str, Any]:
    return {
        "dashboard": (
            f"open {base}/, set the name you post as, then click 'Enable notifications' in "
            "the header; the browser asks for permission (turn it off there too)"
        ),
        "rest": {
            "method": "POST",
            "url": f"{base}/api/push/subscriptions",
            "token": "the admin token",
            "body": {
                "endpoint": "<PushSubscription.endpoint>",
                "keys": {"p256dh": "<base64url>", "auth": "<base64url>"},
                "person": person,
            },
        },
        "unsubscribe": {
            "method": "DELETE",
            "url": f"{base}/api/push/subscriptions",
            "body": {"endpoint": "<PushSubscription.endpoint>"},
        },
    }


@main.command(
    "setup-push",
    epilog="""\b
Examples:
  scitex-orochi setup-push                       # the running hub's key, how to subscribe
  scitex-orochi setup-push --json                # {public_key, source, subscribe: {...}}
  scitex-orochi setup-push --data-dir ~/.local/share/scitex-orochi   # no hub needed
  scitex-orochi setup-push --data-dir /srv/orochi --dry-run          # make no key
  SCITEX_OROCHI_PUSH_ENABLED=true scitex-orochi serve               # push on

\b
The hub serves the key and takes subscriptions only with SCITEX_OROCHI_PUSH_ENABLED=true
(the push worker then runs under supervisord). A subscription is a person's: the
dashboard sends the name it posts as; over REST the admin token names `person`.
"""
    + "\n"
    + EXIT_CODES_HELP,
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the key from this hub data directory (made there if absent) instead of "
    "asking the running hub.",
)
@click.option("--person", default="<your name>", help="The name shown in the REST example.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option(
    "--dry-run",
    "dry_run_",
    is_flag=True,
    help="With --data-dir: make no key file when there is none.",
)
@click.pass_obj
@handle_errors
def setup_push(
    g: Globals, data_dir: Path | None, person: str, as_json: bool, dry_run_: bool
) -> None:
    """Print the hub's web push (VAPID) public key and how a person subscribes."""
    base = http_url(g.host, g.dashboard_port)
    created = False
    if data_dir is not None:
        key, created = _key_from_dir(data_dir.expanduser(), dry_run_)
        source = str(data_dir)
    else:
        data = RestClient(base, admin_token(g)).get("/api/push/vapid-public-key")
        key, source = str(data["public_key"]), base
    out: dict[str, Any] = {
        "public_key": key,
        "source": source,
        "created": created,
        "subscribe": _how(base, person),
    }
    if as_json:
        emit_json(out)
        return
    if key is None:
        click.echo(f"no key in {data_dir} yet (dry run: none made); serve makes one at start")
    else:
        made = " (made now)" if created else ""
        click.echo(f"VAPID public key (applicationServerKey), from {source}{made}:\n  {key}")
    how = out["subscribe"]
    rest = how["rest"]
    click.echo("\nHow a person subscribes:")
    click.echo(f"  dashboard: {how['dashboard']}")
    click.echo(f"  REST:      {rest['method']} {rest['url']}  (admin token)")
    click.echo(f"             {rest['body']}".replace("'", '"'))
    click.echo(f'  stop:      DELETE {rest["url"]}  {{"endpoint": ...}}')
    if data_dir is not None:
        click.echo(f"\nThe hub serves it with {ENABLE_HINT} (and runs the push worker).")
