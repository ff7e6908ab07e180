"""How commands print: aligned tables, relative times, colour only on a TTY, JSON on
request, and one mapping from client errors to messages and exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from scitex_orochi.client.core import parse_ts
from scitex_orochi.client.errors import (
    AuthError,
    ConnectionFailed,
    NotFound,
    OrochiError,
    Replaced,
    RequestTimeout,
    ServerError,
)
from scitex_orochi.client.settings import client_settings

EXIT_OK = 0
EXIT_SERVER = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_AUTH = 4
EXIT_NOT_FOUND = 5
EXIT_TIMEOUT = 6

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok                  3  cannot connect to the hub
  1  server error        4  token refused
  2  usage error         5  not found (channel, message, workspace, invite)
                         6  no reply in time
"""

_COLOURS = {
    "red": 31,
    "green": 32,
    "yellow": 33,
    "blue": 34,
    "magenta": 35,
    "cyan": 36,
    "dim": 2,
    "bold": 1,
}

F = TypeVar("F", bound=Callable[..., Any])


def colour_enabled(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    if client_settings().no_color:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str, enabled: bool | None = None) -> str:
    if enabled is None:
        enabled = colour_enabled()
    if not enabled or colour not in _COLOURS:
        return text
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


def relative_time(value: Any, now: datetime | None = None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`, else the date; accepts ISO text or epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        when: datetime | None = datetime.fromtimestamp(value, UTC)
    else:
        when = parse_ts(value)
    if when is None:
        return str(value or "-")
    now = now or datetime.now(UTC)
    delta = (now - when).total_seconds()
    seconds = abs(delta)
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count = int(seconds // size)
            if unit == "d" and count > 30:
                return when.strftime("%Y-%m-%d")
            return f"{count}{unit} ago" if delta > 0 else f"in {count}{unit}"
    return "just now"


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value).replace("\n", " ")


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], colour: bool | None = None
) -> str:
    """Rows as aligned columns under a header; `columns` is [(key, header), ...]."""
    texts = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    widths = [max([len(h)] + [len(t[i]) for t in texts]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines[0] = paint(lines[0], "bold", colour)
    for values in texts:
        lines.append("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())
    return "\n".join(lines)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, ConnectionFailed | Replaced):
        return EXIT_CONNECT
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, RequestTimeout):
        return EXIT_TIMEOUT
    return EXIT_SERVER


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ServerError) and not isinstance(exc, NotFound):
        return f"the hub answered with an error: {exc}"
    return str(exc)


def fail(exc: OrochiError) -> None:
    """Print a person-readable error to stderr and exit with the documented code."""
    prefix = paint("error:", "red", colour_enabled(sys.stderr))
    click.echo(f"{prefix} {describe_error(exc)}", err=True)
    sys.exit(exit_code_for(exc))


def handle_errors(func: F) -> F:
    """Turn client errors into a message and an exit code; Ctrl-C exits quietly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OrochiError as exc:
            fail(exc)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def dry_run(action: str, details: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"dry_run": True, "action": action, **details})
        return
    click.echo(f"[dry-run] would {action}")
    for key, value in details.items():
        click.echo(f"  {key}: {cell(value)}")


def normalize_channel(channel: str) -> str:
    """`general` → `#general`; `#x` and DM channels (`dm:agent:a|agent:b`) stay as given."""
    channel = channel.strip()
    return channel if channel.startswith(("#", "dm:")) else f"#{channel}"
