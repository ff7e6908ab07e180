"""One configuration object for every process, built from SCITEX_OROCHI_* variables.

Defaults are named constants with their units; `Config.from_env()` validates at
start so a bad value fails loudly before any socket is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from scitex_orochi.hub.errors import ConfigError
from scitex_orochi.protocol.constants import (
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_HOST,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_PORT,
)
from scitex_orochi.protocol.env import (
    ENV_PREFIX,
    LEGACY_ENV,
    deprecation_notice,
    legacy_value,
)

DEFAULT_MEDIA_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_WS_PROCS = 1
PRESENCE_SNAPSHOT_S = 2.0
PRESENCE_EXPIRY_FACTOR = 3.0
REAP_AFTER_S = 300.0
ONLINE_WITHIN_S = 60.0
REPUBLISH_AFTER_S = 1.0
SEND_QUEUE_MAX_FRAMES = 2000
SEND_QUEUE_MAX_BYTES = 4 * 1024 * 1024  # per connection (agents and observers)
MAX_REPLY_BYTES = 1_000_000  # published clients refuse frames over 1 MiB (1009)
DEDUPE_IDS_MAX = 100_000  # message ids the persister remembers (ids, not messages)
MAX_CHANNELS_PER_AGENT = 128
MAX_PRESENCE_RECORD_BYTES = 32 * 1024
MAX_CONNECTIONS = 15_000  # per WebSocket gateway process (supervisord minfds is 16384)
MAX_CONNECTIONS_PER_TOKEN = 10_000
MAX_CONNECTIONS_PER_ADDR = 10_000
REGISTER_TIMEOUT_S = 30.0  # time from connecting to a successful register
MSG_RATE_PER_S = 200.0  # messages per connection, token bucket
MSG_BURST = 1000
WORKSPACE_MSG_RATE_PER_S = 2000.0  # messages per workspace and gateway process
WORKSPACE_MSG_BURST = 10_000
FRAME_RATE_PER_S = 200.0  # other frames per connection (queries, heartbeats, ...)
FRAME_BURST = 1000
REPUBLISH_MAX_S = 30.0  # republish backoff cap (doubling, with jitter)
INGEST_PENDING_MAX_BYTES = 128 * 1024 * 1024  # unacked messages held per process
TOKEN_CACHE_MAX = 10_000
TOKEN_CACHE_S = 2.0
REVOCATION_SWEEP_S = 1.0  # live sessions re-check their token this often
PING_INTERVAL_S = 30.0
PING_TIMEOUT_S = 10.0
PERSIST_BATCH_MAX = 2000
SHUTDOWN_DEADLINE_S = 5.0
HTTP_POST_TIMEOUT_S = 10.0  # REST/observer posts answer 503 if not durable by then
LOG_MAX_BYTES = 10 * 1024 * 1024  # each program's log file rotates at this size
LOG_BACKUPS = 5  # rotated log files kept per program
HTTP_HEADER_TIMEOUT_S = 10.0  # a dashboard-port connection must send its request head by then
HTTP_MAX_CONN_PER_ADDR = 256  # concurrent dashboard-port connections from one client address
HTTP_MAX_CONNECTIONS = 4096  # concurrent dashboard-port connections of one HTTP gateway
# Bus CURVE keys (used whenever a bus endpoint is tcp://); layout in scitex_orochi.hub.bus_keys.
BUS_KEYS_DIR_NAME = "bus-keys"  # under the data dir
BUS_SERVER_KEY_NAME = "server.key"  # the broker's public key: every client needs it
BUS_SERVER_SECRET_NAME = "server.key_secret"  # the broker's keypair: never leaves the hub host
BUS_CLIENT_KEY_NAME = "client.key_secret"  # this host's client keypair
BUS_AUTHORIZED_DIR_NAME = "authorized"  # public keys of the clients the broker admits
BUS_TRANSPORTS = ("ipc://", "tcp://")

def default_data_dir() -> Path:
    base = _SOURCE[-1].get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scitex-orochi"


_SOURCE: list[Mapping[str, str]] = [os.environ]
_LEGACY_USED: list[set[str]] = [set()]  # legacy names read while building one Config
_PENDING_NOTICES: list[str] = []  # deprecation notices not yet logged (see take_notices)
_NOTICED: set[str] = set()  # legacy names already noticed in this process


def take_notices() -> list[str]:
    """Deprecation notices collected by `Config.from_env` since the last call (once per
    name per process); `logs.setup_logging` logs them."""
    out = list(_PENDING_NOTICES)
    _PENDING_NOTICES.clear()
    return out


def _env(name: str, default: str | None = None) -> str | None:
    value = _SOURCE[-1].get(ENV_PREFIX + name)
    if value in (None, ""):
        value, old = legacy_value(_SOURCE[-1], name)
        if old is not None:
            _LEGACY_USED[-1].add(old)
    return default if value in (None, "") else value


def _var(name: str) -> str:
    """The variable a value of `name` was read from, for error messages."""
    return legacy_value(_SOURCE[-1], name)[1] or ENV_PREFIX + name


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{_var(name)}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{_var(name)}={value} must be >= {minimum}")
    return value


def _float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{_var(name)}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{_var(name)}={value} must be >= {minimum}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a boolean (true/false)")


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated setting, trimmed, lower-cased, empty items dropped."""
    return tuple(item.strip().lower() for item in (_env(name) or "").split(",") if item.strip())
def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def db_url_from(value: str | None, data_dir: Path) -> str:
    """SCITEX_OROCHI_DB may be a plain SQLite path or any SQLAlchemy URL."""
    if not value:
        return f"sqlite:///{data_dir / 'orochi.db'}"
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


@dataclass(frozen=True)
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str = ""
    run_dir: Path = Path()
    bus_in: str = ""  # XSUB side: publishers connect here
    bus_out: str = ""  # XPUB side: subscribers connect here
    bus_keys_dir: Path = Path()  # the hub's CURVE keys (created by `serve`)
    bus_server_key: Path = Path()  # the broker's public key, for clients
    bus_client_key: Path = Path()  # this host's client keypair
    admin_token: str | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ws_procs: int = DEFAULT_WS_PROCS
    presence_snapshot_s: float = PRESENCE_SNAPSHOT_S
    reap_after_s: float = REAP_AFTER_S
    online_within_s: float = ONLINE_WITHIN_S
    republish_after_s: float = REPUBLISH_AFTER_S
    send_queue_max: int = SEND_QUEUE_MAX_FRAMES
    send_queue_max_bytes: int = SEND_QUEUE_MAX_BYTES
    max_reply_bytes: int = MAX_REPLY_BYTES
    dedupe_ids_max: int = DEDUPE_IDS_MAX
    max_channels_per_agent: int = MAX_CHANNELS_PER_AGENT
    max_presence_record_bytes: int = MAX_PRESENCE_RECORD_BYTES
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_token: int = MAX_CONNECTIONS_PER_TOKEN
    max_connections_per_addr: int = MAX_CONNECTIONS_PER_ADDR
    register_timeout_s: float = REGISTER_TIMEOUT_S
    msg_rate_per_s: float = MSG_RATE_PER_S
    msg_burst: int = MSG_BURST
    workspace_msg_rate_per_s: float = WORKSPACE_MSG_RATE_PER_S
    workspace_msg_burst: int = WORKSPACE_MSG_BURST
    frame_rate_per_s: float = FRAME_RATE_PER_S
    frame_burst: int = FRAME_BURST
    republish_max_s: float = REPUBLISH_MAX_S
    ingest_pending_max_bytes: int = INGEST_PENDING_MAX_BYTES
    token_cache_max: int = TOKEN_CACHE_MAX
    token_cache_s: float = TOKEN_CACHE_S
    revocation_sweep_s: float = REVOCATION_SWEEP_S
    ping_interval_s: float = PING_INTERVAL_S
    ping_timeout_s: float = PING_TIMEOUT_S
    persist_batch_max: int = PERSIST_BATCH_MAX
    media_root: Path = Path()
    media_max_size: int = DEFAULT_MEDIA_MAX_BYTES
    cors_origins: tuple[str, ...] = ()
    dashboard_ws_upstream: str = ""
    http_post_timeout_s: float = HTTP_POST_TIMEOUT_S
    telegram_enabled: bool = False
    telegram_bot_token: str | None = None
    telegram_chat_id: str | None = None
    telegram_channel: str = "#telegram"
    telegram_api_base: str = "https://api.telegram.org"
    telegram_workspace: str = "default"
    telegram_webhook_secret: str | None = None
    telegram_webhook_url: str | None = None
    telegram_poll_timeout_s: int = 30
    gitea_url: str | None = None
    gitea_token: str | None = None
    gitea_timeout_s: float = 20.0
    log_level: str = "INFO"
    legacy_env: tuple[str, ...] = ()  # 0.1.0 variables this config was read from
    log_dir: Path = Path()  # supervised programs' rotated log files
    log_stdout: bool = False  # programs log to supervisord's stdout instead (containers)
    log_max_bytes: int = LOG_MAX_BYTES
    log_backups: int = LOG_BACKUPS
    http_header_timeout_s: float = HTTP_HEADER_TIMEOUT_S
    http_max_conn_per_addr: int = HTTP_MAX_CONN_PER_ADDR
    http_max_connections: int = HTTP_MAX_CONNECTIONS
    allowed_hosts: tuple[str, ...] = ()  # Host names the dashboard port answers besides IPs

    @property
    def presence_expiry_s(self) -> float:
        return self.presence_snapshot_s * PRESENCE_EXPIRY_FACTOR

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin_token"

    @property
    def bus_curve(self) -> bool:
        """CURVE is on whenever a bus endpoint is tcp (ipc is guarded by the run dir's modes)."""
        return is_tcp(self.bus_in) or is_tcp(self.bus_out)

    @property
    def bus_server_secret(self) -> Path:
        return self.bus_keys_dir / BUS_SERVER_SECRET_NAME

    @property
    def bus_authorized_dir(self) -> Path:
        return self.bus_keys_dir / BUS_AUTHORIZED_DIR_NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build from `environ` (default: os.environ) and validate."""
        _SOURCE.append(os.environ if environ is None else environ)
        _LEGACY_USED.append(set())
        try:
            cfg = cls._from_source()
            used = _LEGACY_USED[-1]
        finally:
            _SOURCE.pop()
            _LEGACY_USED.pop()
        legacy = tuple(old for old in LEGACY_ENV.values() if old in used)
        for old in legacy:
            if old not in _NOTICED:
                _NOTICED.add(old)
                _PENDING_NOTICES.append(deprecation_notice(old))
        return replace(cfg, legacy_env=legacy) if legacy else cfg

    @classmethod
    def _from_source(cls) -> Config:
        data_dir = Path(_env("DATA_DIR") or default_data_dir()).expanduser()
        run_dir = Path(_env("RUN_DIR") or data_dir / "run").expanduser()
        admin = _env("ADMIN_TOKEN") or _env("TOKEN")
        keys_dir = Path(_env("BUS_KEYS_DIR") or data_dir / BUS_KEYS_DIR_NAME).expanduser()
        cors = tuple(o.strip() for o in (_env("CORS_ORIGINS") or "").split(",") if o.strip())
        cfg = cls(
            host=_env("HOST", DEFAULT_HOST) or DEFAULT_HOST,
            port=_int("PORT", DEFAULT_PORT, 0),
            dashboard_port=_int("DASHBOARD_PORT", DEFAULT_DASHBOARD_PORT, 0),
            data_dir=data_dir,
            db_url=db_url_from(_env("DB"), data_dir),
            run_dir=run_dir,
            bus_in=_env("BUS_IN") or f"ipc://{run_dir / 'bus-in.sock'}",
            bus_out=_env("BUS_OUT") or f"ipc://{run_dir / 'bus-out.sock'}",
            bus_keys_dir=keys_dir,
            bus_server_key=Path(_env("BUS_SERVER_KEY") or keys_dir / BUS_SERVER_KEY_NAME)
            .expanduser(),
            bus_client_key=Path(_env("BUS_CLIENT_KEY") or keys_dir / BUS_CLIENT_KEY_NAME)
            .expanduser(),
            admin_token=admin,
            max_frame_bytes=_int("MAX_FRAME_BYTES", DEFAULT_MAX_FRAME_BYTES, 1024),
            ws_procs=_int("WS_PROCS", DEFAULT_WS_PROCS, 1),
            presence_snapshot_s=_float("PRESENCE_SNAPSHOT_S", PRESENCE_SNAPSHOT_S, 0.05),
            reap_after_s=_float("REAP_AFTER_S", REAP_AFTER_S, 0.1),
            online_within_s=_float("ONLINE_WITHIN_S", ONLINE_WITHIN_S, 0.1),
            republish_after_s=_float("REPUBLISH_AFTER_S", REPUBLISH_AFTER_S, 0.01),
            send_queue_max=_int("SEND_QUEUE_MAX", SEND_QUEUE_MAX_FRAMES, 1),
            send_queue_max_bytes=_int("SEND_QUEUE_MAX_BYTES", SEND_QUEUE_MAX_BYTES, 64 * 1024),
            max_reply_bytes=_int("MAX_REPLY_BYTES", MAX_REPLY_BYTES, 16 * 1024),
            dedupe_ids_max=_int("DEDUPE_IDS_MAX", DEDUPE_IDS_MAX, 100),
            max_channels_per_agent=_int("MAX_CHANNELS_PER_AGENT", MAX_CHANNELS_PER_AGENT, 1),
            max_presence_record_bytes=_int("MAX_PRESENCE_RECORD_BYTES",
                                           MAX_PRESENCE_RECORD_BYTES, 1024),
            max_connections=_int("MAX_CONNECTIONS", MAX_CONNECTIONS, 1),
            max_connections_per_token=_int("MAX_CONNECTIONS_PER_TOKEN",
                                           MAX_CONNECTIONS_PER_TOKEN, 1),
            max_connections_per_addr=_int("MAX_CONNECTIONS_PER_ADDR",
                                          MAX_CONNECTIONS_PER_ADDR, 1),
            register_timeout_s=_float("REGISTER_TIMEOUT_S", REGISTER_TIMEOUT_S, 0.1),
            msg_rate_per_s=_float("MSG_RATE_PER_S", MSG_RATE_PER_S, 0.01),
            msg_burst=_int("MSG_BURST", MSG_BURST, 1),
            workspace_msg_rate_per_s=_float("WORKSPACE_MSG_RATE_PER_S",
                                            WORKSPACE_MSG_RATE_PER_S, 0.01),
            workspace_msg_burst=_int("WORKSPACE_MSG_BURST", WORKSPACE_MSG_BURST, 1),
            frame_rate_per_s=_float("FRAME_RATE_PER_S", FRAME_RATE_PER_S, 0.01),
            frame_burst=_int("FRAME_BURST", FRAME_BURST, 1),
            republish_max_s=_float("REPUBLISH_MAX_S", REPUBLISH_MAX_S, 0.01),
            ingest_pending_max_bytes=_int("INGEST_PENDING_MAX_BYTES",
                                          INGEST_PENDING_MAX_BYTES, 1024 * 1024),
            token_cache_max=_int("TOKEN_CACHE_MAX", TOKEN_CACHE_MAX, 1),
            token_cache_s=_float("TOKEN_CACHE_S", TOKEN_CACHE_S, 0.0),
            revocation_sweep_s=_float("REVOCATION_SWEEP_S", REVOCATION_SWEEP_S, 0.05),
            ping_interval_s=_float("PING_INTERVAL_S", PING_INTERVAL_S, 0.1),
            ping_timeout_s=_float("PING_TIMEOUT_S", PING_TIMEOUT_S, 0.1),
            persist_batch_max=_int("PERSIST_BATCH_MAX", PERSIST_BATCH_MAX, 1),
            media_root=Path(_env("MEDIA_ROOT") or data_dir / "media").expanduser(),
            media_max_size=_int("MEDIA_MAX_SIZE", DEFAULT_MEDIA_MAX_BYTES, 1),
            cors_origins=cors,
            dashboard_ws_upstream=_env("DASHBOARD_WS_UPSTREAM", "") or "",
            http_post_timeout_s=_float("HTTP_POST_TIMEOUT_S", HTTP_POST_TIMEOUT_S, 0.1),
            telegram_enabled=_bool("TELEGRAM_BRIDGE_ENABLED", False),
            telegram_bot_token=_env("TELEGRAM_BOT_TOKEN"),
            telegram_chat_id=_env("TELEGRAM_CHAT_ID"),
            telegram_channel=_env("TELEGRAM_CHANNEL", "#telegram") or "#telegram",
            telegram_api_base=(_env("TELEGRAM_API_BASE") or "https://api.telegram.org").rstrip("/"),
            telegram_workspace=_env("TELEGRAM_WORKSPACE", "default") or "default",
            telegram_webhook_secret=_env("TELEGRAM_WEBHOOK_SECRET"),
            telegram_webhook_url=_env("TELEGRAM_WEBHOOK_URL"),
            telegram_poll_timeout_s=_int("TELEGRAM_POLL_TIMEOUT_S", 30, 0),
            gitea_url=_env("GITEA_URL"),
            gitea_token=_env("GITEA_TOKEN"),
            gitea_timeout_s=_float("GITEA_TIMEOUT_S", 20.0, 0.1),
            log_level=(_env("LOG_LEVEL", "INFO") or "INFO").upper(),
            log_dir=Path(_env("LOG_DIR") or data_dir / "logs").expanduser(),
            log_stdout=_bool("LOG_STDOUT", False),
            log_max_bytes=_int("LOG_MAX_BYTES", LOG_MAX_BYTES, 1024),
            log_backups=_int("LOG_BACKUPS", LOG_BACKUPS, 0),
            http_header_timeout_s=_float("HTTP_HEADER_TIMEOUT_S", HTTP_HEADER_TIMEOUT_S, 0.1),
            http_max_conn_per_addr=_int("HTTP_MAX_CONN_PER_ADDR", HTTP_MAX_CONN_PER_ADDR, 1),
            http_max_connections=_int("HTTP_MAX_CONNECTIONS", HTTP_MAX_CONNECTIONS, 1),
            allowed_hosts=_list("ALLOWED_HOSTS"),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for endpoint in (self.bus_in, self.bus_out):
            if not endpoint.startswith(BUS_TRANSPORTS):
                # Another transport would bypass both guards: CURVE (tcp) and file modes (ipc).
                raise ConfigError(f"bus endpoint {endpoint!r} must be ipc:// or tcp://")
            if endpoint.startswith("ipc://") and len(endpoint) - 6 > 100:
                raise ConfigError(
                    f"bus endpoint {endpoint!r} is too long for a unix socket; "
                    f"set {ENV_PREFIX}RUN_DIR to a shorter directory"
                )
        if self.telegram_enabled and not (self.telegram_bot_token and self.telegram_chat_id):
            raise ConfigError(
                "the Telegram bridge is enabled but SCITEX_OROCHI_TELEGRAM_BOT_TOKEN "
                "or SCITEX_OROCHI_TELEGRAM_CHAT_ID is missing"
            )
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"SCITEX_OROCHI_LOG_LEVEL={self.log_level!r} is not a log level")

    def describe(self) -> dict[str, str]:
        """Printable view, secrets masked."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if ("token" in f.name or "secret" in f.name) and value:
                value = str(value)[:6] + "…"
            out[f.name] = str(value)
        return out
