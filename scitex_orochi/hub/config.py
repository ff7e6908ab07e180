"""One configuration object for every process, grouped per process, built from an
explicit environment mapping by the table in `settings.py`.

    cfg = Config.load(environ, {"data_dir": "/srv/orochi", "ws.port": 9600})
    cfg.ws.port, cfg.bus.in_endpoint, cfg.db.url, cfg.legacy_env, cfg.sources["db.url"]

Overrides (the command line's, a test's) are applied before derived defaults are
computed, so a data dir given on the command line moves the run dir, bus sockets,
database, media, logs and keys with it. Building validates: a bad value fails loudly,
naming its variable, before any socket is opened. This module and the agent client's
`client/settings.py` are the only readers of `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scitex_orochi.hub.errors import ConfigError
from scitex_orochi.hub.settings import (
    BUS_AUTHORIZED_DIR_NAME,
    BUS_CLIENT_KEY_NAME,
    BUS_SERVER_KEY_NAME,
    BUS_SERVER_SECRET_NAME,
    BUS_TRANSPORTS,
    HUB,
    ONLINE_WITHIN_S,
    PRESENCE_EXPIRY_FACTOR,
    REAP_AFTER_S,
    SETTINGS,
    SHUTDOWN_DEADLINE_S,
)
from scitex_orochi.hub.settings_load import (
    describe_value,
    flatten,
    relevant_environ,
    render_value,
    resolve,
)
from scitex_orochi.protocol.env import ENV_PREFIX

__all__ = [  # with the constants other modules take from here (defined in settings.py)
    "BUS_AUTHORIZED_DIR_NAME",
    "BUS_CLIENT_KEY_NAME",
    "BUS_SERVER_KEY_NAME",
    "BUS_SERVER_SECRET_NAME",
    "ENV_PREFIX",
    "ONLINE_WITHIN_S",
    "REAP_AFTER_S",
    "SHUTDOWN_DEADLINE_S",
    "AuthConfig",
    "BusConfig",
    "Config",
    "ConfigError",
    "DbConfig",
    "GiteaConfig",
    "HttpConfig",
    "IngestConfig",
    "LogConfig",
    "PresenceConfig",
    "TelegramConfig",
    "WsConfig",
    "is_tcp",
    "process_environ",
]

MAX_IPC_PATH_CHARS = 100  # a unix socket path (sun_path is 108 bytes with its NUL)


def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def process_environ() -> dict[str, str]:
    """This process's environment, to pass through to child processes (supervisord and the
    hub's programs, which read their settings from it): the one read of os.environ that is
    not `Config.from_env`'s."""
    return dict(os.environ)


@dataclass(frozen=True)
class AuthConfig:
    """Tokens, for both gateways."""

    admin_token: str | None = field(repr=False)
    token_cache_max: int
    token_cache_s: float
    revocation_sweep_s: float


@dataclass(frozen=True)
class BusConfig:
    """The broker's endpoints and the CURVE keys of every bus client."""

    in_endpoint: str  # XSUB side: publishers connect here
    out_endpoint: str  # XPUB side: subscribers connect here
    keys_dir: Path  # the hub's CURVE keys (created by `serve`)
    server_key: Path  # the broker's public key, for clients
    client_key: Path  # this host's client keypair

    @property
    def curve(self) -> bool:
        """CURVE is on whenever a bus endpoint is tcp (ipc is guarded by the run dir's modes)."""
        return is_tcp(self.in_endpoint) or is_tcp(self.out_endpoint)

    @property
    def server_secret(self) -> Path:
        return self.keys_dir / BUS_SERVER_SECRET_NAME

    @property
    def authorized_dir(self) -> Path:
        return self.keys_dir / BUS_AUTHORIZED_DIR_NAME


@dataclass(frozen=True)
class WsConfig:
    """The agents' WebSocket gateway; the frame and queue limits hold for the dashboard
    port's sockets too."""

    port: int
    procs: int
    max_frame_bytes: int
    max_reply_bytes: int
    send_queue_max_frames: int
    send_queue_max_bytes: int
    max_connections: int
    max_connections_per_token: int
    max_connections_per_addr: int
    register_timeout_s: float
    ping_interval_s: float
    ping_timeout_s: float
    fleet_ping_interval_s: float
    fleet_echo_interval_s: float
    msg_rate_per_s: float
    msg_burst: int
    workspace_msg_rate_per_s: float
    broadcast_mentions_per_min: float
    workspace_msg_burst: int
    frame_rate_per_s: float
    frame_burst: int


@dataclass(frozen=True)
class HttpConfig:
    """The HTTP gateway: dashboard, REST API, observers, uploads."""

    port: int
    cors_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]  # Host names the dashboard port answers besides IPs
    base_hosts: tuple[str, ...]  # <workspace>.<base host> opens that workspace
    header_timeout_s: float
    max_conn_per_addr: int
    max_connections: int
    post_timeout_s: float
    dashboard_ws_upstream: str
    media_root: Path
    media_max_bytes: int


@dataclass(frozen=True)
class DbConfig:
    """The database, and the persister that writes it."""

    url: str = field(repr=False)  # may hold a password
    sqlite_sync: str
    persist_batch_max: int
    dedupe_ids_max: int


@dataclass(frozen=True)
class PresenceConfig:
    """Who is online: snapshots, replicas, reaping, and what one agent's record may hold."""

    snapshot_s: float
    reap_after_s: float
    online_within_s: float
    ghost_after_s: float
    health_report_ttl_s: float
    max_record_bytes: int
    max_channels_per_agent: int

    @property
    def expiry_s(self) -> float:
        return self.snapshot_s * PRESENCE_EXPIRY_FACTOR


@dataclass(frozen=True)
class IngestConfig:
    """Messages a gateway or bridge holds until the persister acks them."""

    republish_after_s: float
    republish_max_s: float
    pending_max_bytes: int


@dataclass(frozen=True)
class LogConfig:
    level: str
    dir: Path  # supervised programs' rotated log files
    stdout: bool  # programs log to supervisord's stdout instead (containers)
    max_bytes: int
    backups: int


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool
    bot_token: str | None = field(repr=False)
    chat_id: str | None
    channel: str
    api_base: str
    workspace: str
    webhook_secret: str | None = field(repr=False)
    webhook_url: str | None
    poll_timeout_s: int


@dataclass(frozen=True)
class GiteaConfig:
    url: str | None
    token: str | None = field(repr=False)
    timeout_s: float


@dataclass(frozen=True)
class PushConfig:
    enabled: bool
    subject: str


GROUP_TYPES: dict[str, type] = {
    "auth": AuthConfig,
    "bus": BusConfig,
    "ws": WsConfig,
    "http": HttpConfig,
    "db": DbConfig,
    "presence": PresenceConfig,
    "ingest": IngestConfig,
    "log": LogConfig,
    "telegram": TelegramConfig,
    "gitea": GiteaConfig,
    "push": PushConfig,
}


@dataclass(frozen=True)
class Config:
    host: str
    data_dir: Path
    run_dir: Path
    auth: AuthConfig
    bus: BusConfig
    ws: WsConfig
    http: HttpConfig
    db: DbConfig
    presence: PresenceConfig
    ingest: IngestConfig
    log: LogConfig
    telegram: TelegramConfig
    gitea: GiteaConfig
    push: PushConfig
    legacy_env: tuple[str, ...] = ()  # 0.1.0 variables this config was read from
    # Where each value came from (key: "ws.port"): "default", "derived", "override" or the
    # variable read. What it was built from, so `with_` can build it again.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    environ: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    overrides: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ---- building ----------------------------------------------------------------------
    @classmethod
    def load(cls, environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Config:
        """Build from `environ` with `overrides` (keys "data_dir", "ws.port", or a group's
        mapping: {"ws": {"port": 0}}) applied before derived defaults, and validate."""
        flat = flatten(overrides or {})
        values, sources, legacy = resolve(environ, flat)
        groups = {
            name: kind(**{s.name: values[s.key] for s in SETTINGS if s.group == name})
            for name, kind in GROUP_TYPES.items()
        }
        top = {s.name: values[s.key] for s in SETTINGS if s.group == HUB}
        cfg = cls(
            **top,
            **groups,
            legacy_env=legacy,
            sources=MappingProxyType(sources),
            environ=MappingProxyType(relevant_environ(environ)),
            overrides=MappingProxyType(flat),
        )
        cfg.validate()
        return cfg

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Config:
        """`load` from `environ`, by default this process's environment."""
        return cls.load(os.environ if environ is None else environ, overrides)

    def with_(self, overrides: Mapping[str, Any] | None = None, /, **more: Any) -> Config:
        """The same environment with more overrides, derived values computed again:
        `cfg.with_(data_dir=path)`, `cfg.with_(ws={"port": 0})`, `cfg.with_({"ws.port": 0})`."""
        return Config.load(
            self.environ, {**self.overrides, **flatten(overrides or {}), **flatten(more)}
        )

    def validate(self) -> None:
        """What no single setting shows: endpoints usable as bus sockets, the Telegram
        bridge's required settings."""
        for key, endpoint in (
            ("bus.in_endpoint", self.bus.in_endpoint),
            ("bus.out_endpoint", self.bus.out_endpoint),
        ):
            where = self.source_name(key)
            if not endpoint.startswith(BUS_TRANSPORTS):
                # Another transport would bypass both guards: CURVE (tcp) and file modes (ipc).
                raise ConfigError(f"bus endpoint {endpoint!r} ({where}) must be ipc:// or tcp://")
            if endpoint.startswith("ipc://") and len(endpoint) - 6 > MAX_IPC_PATH_CHARS:
                raise ConfigError(
                    f"bus endpoint {endpoint!r} ({where}) is too long for a unix socket; "
                    f"set {ENV_PREFIX}RUN_DIR to a shorter directory"
                )
        if self.telegram.enabled and not (self.telegram.bot_token and self.telegram.chat_id):
            raise ConfigError(
                "the Telegram bridge is enabled but SCITEX_OROCHI_TELEGRAM_BOT_TOKEN "
                "or SCITEX_OROCHI_TELEGRAM_CHAT_ID is missing"
            )
        if not self.push.subject.startswith(("mailto:", "https://")):
            raise ConfigError(
                f"SCITEX_OROCHI_PUSH_SUBJECT {self.push.subject!r} must be a mailto: or "
                "https:// URL (push services refuse other VAPID subjects)"
            )

    # ---- reading -----------------------------------------------------------------------
    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin_token"

    def value(self, key: str) -> Any:
        """The value of "data_dir" or "ws.port"."""
        group, _, name = key.rpartition(".")
        return getattr(getattr(self, group) if group else self, name)

    def source_name(self, key: str) -> str:
        """The variable a value came from, or how it was set ("derived", ...)."""
        return self.sources.get(key, "default")

    def describe(self) -> dict[str, str]:
        """Printable view, key -> value, secrets masked."""
        return {s.key: describe_value(s, self.value(s.key)) for s in SETTINGS}

    def to_env(self) -> dict[str, str | None]:
        """Every setting as the variable that gives it its value (None: unset), so a child
        process's `Config.from_env()` is this config, overrides and all."""
        return {ENV_PREFIX + s.env: render_value(s, self.value(s.key)) for s in SETTINGS}
