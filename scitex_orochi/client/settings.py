"""The agent side's settings: where the hub is, the token, who this agent is. Read from
the environment here and nowhere else in the client or the CLI (the hub's own settings
are `scitex_orochi.hub.config`, which the client never imports)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from scitex_orochi.protocol.env import ENV_PREFIX, legacy_value

# Its variables, after ENV_PREFIX (the hub's table knows them, for its typo warning).
CLIENT_ENV = (
    "HOST",
    "PORT",
    "DASHBOARD_PORT",
    "TOKEN",
    "ADMIN_TOKEN",
    "AGENT",
    "CHANNELS",
    "ROLE",
    "MODEL",
    "PROJECT",
)
DEFAULT_CHANNELS = ("#general",)


@dataclass(frozen=True)
class ClientSettings:
    host: str | None = None
    port: int | None = None
    dashboard_port: int | None = None
    token: str | None = None  # SCITEX_OROCHI_TOKEN, else _ADMIN_TOKEN, else OROCHI_TOKEN
    admin_token: str | None = None  # SCITEX_OROCHI_ADMIN_TOKEN only
    agent: str | None = None
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    role: str | None = None
    model: str | None = None
    project: str | None = None
    no_color: bool = False  # NO_COLOR (no-color.org): any value
    # The 0.1.0 variable read for a setting, by its name after ENV_PREFIX ("PORT": "OROCHI_PORT").
    legacy: Mapping[str, str] | None = None

    def legacy_for(self, *names: str) -> list[str]:
        """The 0.1.0 variables read for `names` (to warn about what was actually used)."""
        return [old for name in names if (old := (self.legacy or {}).get(name))]


def _port(environ: Mapping[str, str], name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        variable = legacy_value(environ, name)[1] or ENV_PREFIX + name
        raise ValueError(f"{variable}={raw!r} is not an integer") from None


def client_settings(environ: Mapping[str, str] | None = None) -> ClientSettings:
    """Read from `environ` (default: os.environ); empty counts as unset. A 0.1.0 name
    (OROCHI_HOST, ...) counts while its SCITEX_OROCHI_* name is unset."""
    env = os.environ if environ is None else environ
    legacy: dict[str, str] = {}

    def get(name: str, *, old: bool = False) -> str | None:
        value = env.get(ENV_PREFIX + name)
        if value:
            return value
        if old:
            value, was = legacy_value(env, name)
            if was is not None:
                legacy[name] = was
                return value
        return None

    host = get("HOST", old=True)
    port = _port(env, "PORT", get("PORT", old=True))
    dashboard_port = _port(env, "DASHBOARD_PORT", get("DASHBOARD_PORT", old=True))
    admin_token = get("ADMIN_TOKEN")
    token = get("TOKEN") or admin_token or get("TOKEN", old=True)
    channels = tuple(
        c.strip() for c in (get("CHANNELS") or ",".join(DEFAULT_CHANNELS)).split(",") if c.strip()
    )
    return ClientSettings(
        host=host,
        port=port,
        dashboard_port=dashboard_port,
        token=token,
        admin_token=admin_token,
        agent=get("AGENT"),
        channels=channels,
        role=get("ROLE"),
        model=get("MODEL"),
        project=get("PROJECT"),
        no_color=bool(env.get("NO_COLOR")),
        legacy=legacy,
    )
