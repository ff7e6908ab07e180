"""The table of the hub's settings: one row per setting, read by `config.Config.load`.

Each row names its group (the attribute of `Config` it lives under; "hub" is the top
level), its attribute, its SCITEX_OROCHI_* variable, how its text is parsed, its default
(a named constant with its unit) or how the default derives from settings before it,
its minimum, whether it is a secret, and a line of help. `docs/configuration.md` is
generated from it (`python -m scitex_orochi.hub.settings_load`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scitex_orochi.hub.upstream import check_upstream
from scitex_orochi.protocol.constants import (
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_HOST,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_PORT,
)

DEFAULT_MEDIA_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_WS_PROCS = 1
PRESENCE_SNAPSHOT_S = 2.0
PRESENCE_EXPIRY_FACTOR = 3.0
REAP_AFTER_S = 300.0
ONLINE_WITHIN_S = 60.0
GHOST_AFTER_S = 45.0  # a liveness probe (protocol ping, B's echo) unanswered this long
HEALTH_REPORT_TTL_S = 1800.0  # a reported health class (a healer's) lasts at most this
REPUBLISH_AFTER_S = 1.0
SEND_QUEUE_MAX_FRAMES = 2000
SEND_QUEUE_MAX_BYTES = 4 * 1024 * 1024  # per connection (agents and observers)
MAX_REPLY_BYTES = 1_000_000  # published clients refuse frames over 1 MiB (1009)
DEDUPE_IDS_MAX = 100_000  # message ids the persister remembers (ids, not messages)
MAX_CHANNELS_PER_AGENT = 128
BROADCAST_MENTIONS_PER_MIN = 3.0  # @all / @<channel> per sender (as upstream)
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
PING_TIMEOUT_S = 120.0  # then the socket is closed (1011); a ghost from GHOST_AFTER_S on
FLEET_PING_INTERVAL_S = 25.0  # dialect B's `ping {ts}` frames (FLEET.md §3), as upstream
FLEET_ECHO_INTERVAL_S = 30.0  # dialect B's `echo {nonce}` frames (upstream: 5..60 s)
PERSIST_BATCH_MAX = 2000
SHUTDOWN_DEADLINE_S = 5.0
HTTP_POST_TIMEOUT_S = 10.0  # REST/observer posts answer 503 if not durable by then
LOG_MAX_BYTES = 10 * 1024 * 1024  # each program's log file rotates at this size
LOG_BACKUPS = 5  # rotated log files kept per program
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HTTP_HEADER_TIMEOUT_S = 10.0  # a dashboard-port connection must send its request head by then
HTTP_MAX_CONN_PER_ADDR = 256  # concurrent dashboard-port connections from one client address
HTTP_MAX_CONNECTIONS = 4096  # concurrent dashboard-port connections of one HTTP gateway
SQLITE_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_SQLITE_SYNC = "FULL"  # an ack means the message is on disk
TELEGRAM_POLL_TIMEOUT_S = 30  # long-poll of getUpdates (whole seconds: the Bot API's unit)
TELEGRAM_API_BASE = "https://api.telegram.org"
GITEA_TIMEOUT_S = 20.0
PUSH_SUBJECT = "mailto:orochi@localhost"  # the VAPID `sub` claim: how a push service reaches you
# Bus CURVE keys (used whenever a bus endpoint is tcp://); layout in scitex_orochi.hub.bus_keys.
BUS_KEYS_DIR_NAME = "bus-keys"  # under the data dir
BUS_SERVER_KEY_NAME = "server.key"  # the broker's public key: every client needs it
BUS_SERVER_SECRET_NAME = "server.key_secret"  # the broker's keypair: never leaves the hub host
BUS_CLIENT_KEY_NAME = "client.key_secret"  # this host's client keypair
BUS_AUTHORIZED_DIR_NAME = "authorized"  # public keys of the clients the broker admits
BUS_TRANSPORTS = ("ipc://", "tcp://")

HUB = "hub"  # the group of the top-level settings (`cfg.data_dir`, not `cfg.hub.data_dir`)
# SCITEX_OROCHI_* names that are not settings: what `supervise.hub_env` sets for
# supervisord.conf (the interpreter, which optional programs start).
PROCESS_ENV = ("PYTHON", "TELEGRAM_AUTOSTART", "GITEA_AUTOSTART", "PUSH_AUTOSTART")


# ---- kinds: how a variable's text becomes a value, and back -----------------------------
@dataclass(frozen=True)
class Kind:
    """`parse` raises ValueError with the reason ("is not an integer"); `render` gives the
    text that parses back to the same value (the child processes' environment)."""

    name: str
    parse: Callable[[str], Any]
    render: Callable[[Any], str] = str


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not an integer") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a number") from None


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not a boolean (true/false)")


def _items(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _choice(choices: tuple[str, ...], what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper()
        if value not in choices:
            raise ValueError(f"is not {what} ({', '.join(choices)})")
        return value

    return parse


def db_url_from(value: str | None, data_dir: Path) -> str:
    """SCITEX_OROCHI_DB may be a plain SQLite path or any SQLAlchemy URL."""
    if not value:
        return f"sqlite:///{data_dir / 'orochi.db'}"
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


TEXT = Kind("text", str)
INT = Kind("integer", _int)
FLOAT = Kind("number", _float, repr)
BOOL = Kind("boolean", _bool, lambda v: "true" if v else "false")
PATH = Kind("path", lambda raw: Path(raw).expanduser())
LIST = Kind("comma-separated list", _items, ",".join)
NAMES = Kind("comma-separated names", lambda raw: tuple(i.lower() for i in _items(raw)), ",".join)
URL = Kind("URL", lambda raw: raw.rstrip("/"))
HUB_URL = Kind("hub base URL", check_upstream)
DB_URL = Kind("SQLAlchemy URL or SQLite path", lambda raw: db_url_from(raw, Path()))
LOG_LEVEL = Kind("log level", _choice(LOG_LEVELS, "a log level"))
SQLITE_SYNC = Kind("SQLite synchronous mode", _choice(SQLITE_SYNC_MODES, "one of"))

Derive = Callable[[Mapping[str, Any], Mapping[str, str]], Any]  # (values so far, environ)


@dataclass(frozen=True)
class Setting:
    group: str
    name: str
    env: str  # the variable, after ENV_PREFIX
    kind: Kind
    help: str
    default: Any = None
    minimum: float | None = None
    secret: bool = False
    derive: Derive | None = None  # the default, from the values resolved before this one
    derived_from: str = ""  # how it derives, for people
    fallback: tuple[str, ...] = ()  # further variables read, in order, while `env` is unset

    @property
    def key(self) -> str:
        """The path of its value on a Config: `data_dir`, `ws.port`."""
        return self.name if self.group == HUB else f"{self.group}.{self.name}"

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.env, *self.fallback)


def default_data_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scitex-orochi"


def _under(key: str, *parts: str) -> Derive:
    return lambda values, _env: values[key].joinpath(*parts)


def _socket(name: str) -> Derive:
    return lambda values, _env: f"ipc://{values['run_dir'] / name}"


def _s(
    group: str,
    name: str,
    env: str,
    kind: Kind,
    default: Any,
    help: str,
    minimum: float | None = None,
    **more: Any,
) -> Setting:
    return Setting(group, name, env, kind, help, default, minimum, **more)


def _derived(
    group: str,
    name: str,
    env: str,
    kind: Kind,
    derive: Derive,
    derived_from: str,
    help: str,
    **more: Any,
) -> Setting:
    return Setting(group, name, env, kind, help, derive=derive, derived_from=derived_from, **more)


KIB, MIB = 1024, 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    # ---- the hub as a whole --------------------------------------------------------------
    _s(
        HUB,
        "host",
        "HOST",
        TEXT,
        DEFAULT_HOST,
        "address both ports bind to (agent WebSocket and dashboard)",
    ),
    _derived(
        HUB,
        "data_dir",
        "DATA_DIR",
        PATH,
        lambda _v, env: default_data_dir(env),
        "$XDG_DATA_HOME/scitex-orochi (~/.local/share/scitex-orochi)",
        "database, admin token, bus keys, media and logs",
    ),
    _derived(
        HUB,
        "run_dir",
        "RUN_DIR",
        PATH,
        _under("data_dir", "run"),
        "<data_dir>/run",
        "bus sockets and the rendered supervisord.conf (keep it short: unix socket paths)",
    ),
    # ---- auth: tokens, for both gateways -------------------------------------------------
    _s(
        "auth",
        "admin_token",
        "ADMIN_TOKEN",
        TEXT,
        None,
        "the admin token (unset: generated once, kept in `<data_dir>/admin_token`)",
        secret=True,
        fallback=("TOKEN",),
    ),
    _s(
        "auth",
        "token_cache_max",
        "TOKEN_CACHE_MAX",
        INT,
        TOKEN_CACHE_MAX,
        "token look-ups cached per gateway process",
        1,
    ),
    _s(
        "auth",
        "token_cache_s",
        "TOKEN_CACHE_S",
        FLOAT,
        TOKEN_CACHE_S,
        "seconds a token look-up is cached",
        0.0,
    ),
    _s(
        "auth",
        "revocation_sweep_s",
        "REVOCATION_SWEEP_S",
        FLOAT,
        REVOCATION_SWEEP_S,
        "live sessions re-check their token this often (seconds)",
        0.05,
    ),
    # ---- bus: the broker and every process's bus client -----------------------------------
    _derived(
        "bus",
        "in_endpoint",
        "BUS_IN",
        TEXT,
        _socket("bus-in.sock"),
        "ipc://<run_dir>/bus-in.sock",
        "XSUB side: publishers connect here (ipc:// or tcp://)",
    ),
    _derived(
        "bus",
        "out_endpoint",
        "BUS_OUT",
        TEXT,
        _socket("bus-out.sock"),
        "ipc://<run_dir>/bus-out.sock",
        "XPUB side: subscribers connect here (ipc:// or tcp://)",
    ),
    _derived(
        "bus",
        "keys_dir",
        "BUS_KEYS_DIR",
        PATH,
        _under("data_dir", BUS_KEYS_DIR_NAME),
        f"<data_dir>/{BUS_KEYS_DIR_NAME}",
        "the hub's CURVE keys (created by `serve`)",
    ),
    _derived(
        "bus",
        "server_key",
        "BUS_SERVER_KEY",
        PATH,
        _under("bus.keys_dir", BUS_SERVER_KEY_NAME),
        f"<keys_dir>/{BUS_SERVER_KEY_NAME}",
        "the broker's public key, for clients",
    ),
    _derived(
        "bus",
        "client_key",
        "BUS_CLIENT_KEY",
        PATH,
        _under("bus.keys_dir", BUS_CLIENT_KEY_NAME),
        f"<keys_dir>/{BUS_CLIENT_KEY_NAME}",
        "this host's client keypair",
    ),
    # ---- ws: the agents' WebSocket (the dashboard's sockets share the frame settings) ------
    _s("ws", "port", "PORT", INT, DEFAULT_PORT, "agent WebSocket port", 0),
    _s(
        "ws",
        "procs",
        "WS_PROCS",
        INT,
        DEFAULT_WS_PROCS,
        "WebSocket gateway processes sharing the port",
        1,
    ),
    _s(
        "ws",
        "max_frame_bytes",
        "MAX_FRAME_BYTES",
        INT,
        DEFAULT_MAX_FRAME_BYTES,
        "largest frame or request body accepted",
        KIB,
    ),
    _s(
        "ws",
        "max_reply_bytes",
        "MAX_REPLY_BYTES",
        INT,
        MAX_REPLY_BYTES,
        "largest reply (history pages are cut to fit)",
        16 * KIB,
    ),
    _s(
        "ws",
        "send_queue_max_frames",
        "SEND_QUEUE_MAX",
        INT,
        SEND_QUEUE_MAX_FRAMES,
        "frames queued per connection before it is closed as a slow consumer",
        1,
    ),
    _s(
        "ws",
        "send_queue_max_bytes",
        "SEND_QUEUE_MAX_BYTES",
        INT,
        SEND_QUEUE_MAX_BYTES,
        "bytes queued per connection before it is closed as a slow consumer",
        64 * KIB,
    ),
    _s(
        "ws",
        "max_connections",
        "MAX_CONNECTIONS",
        INT,
        MAX_CONNECTIONS,
        "connections per gateway process",
        1,
    ),
    _s(
        "ws",
        "max_connections_per_token",
        "MAX_CONNECTIONS_PER_TOKEN",
        INT,
        MAX_CONNECTIONS_PER_TOKEN,
        "connections per token and gateway process",
        1,
    ),
    _s(
        "ws",
        "max_connections_per_addr",
        "MAX_CONNECTIONS_PER_ADDR",
        INT,
        MAX_CONNECTIONS_PER_ADDR,
        "connections per client address and gateway process",
        1,
    ),
    _s(
        "ws",
        "register_timeout_s",
        "REGISTER_TIMEOUT_S",
        FLOAT,
        REGISTER_TIMEOUT_S,
        "seconds from connecting to a successful register",
        0.1,
    ),
    _s(
        "ws",
        "ping_interval_s",
        "PING_INTERVAL_S",
        FLOAT,
        PING_INTERVAL_S,
        "seconds between the protocol pings (WebSocket ping frames) the hub sends every "
        "agent socket: dialect A's liveness probe",
        0.1,
    ),
    _s(
        "ws",
        "ping_timeout_s",
        "PING_TIMEOUT_S",
        FLOAT,
        PING_TIMEOUT_S,
        "seconds a protocol ping may wait for its pong before the hub closes the socket "
        "(1011); from GHOST_AFTER_S on, its agent counts as a ghost",
        0.1,
    ),
    _s(
        "ws",
        "fleet_ping_interval_s",
        "FLEET_PING_INTERVAL_S",
        FLOAT,
        FLEET_PING_INTERVAL_S,
        "seconds between the `ping {ts}` frames a dialect-B (fleet) connection gets; "
        "its `pong` gives the round trip shown as `rtt_ms`",
        0.05,
    ),
    _s(
        "ws",
        "fleet_echo_interval_s",
        "FLEET_ECHO_INTERVAL_S",
        FLOAT,
        FLEET_ECHO_INTERVAL_S,
        "seconds between the `echo {nonce}` frames a dialect-B (fleet) connection gets; "
        "its `echo_pong` gives the round trip shown as `echo_rtt_ms`",
        0.05,
    ),
    _s(
        "ws",
        "msg_rate_per_s",
        "MSG_RATE_PER_S",
        FLOAT,
        MSG_RATE_PER_S,
        "messages per second per connection (token bucket)",
        0.01,
    ),
    _s("ws", "msg_burst", "MSG_BURST", INT, MSG_BURST, "message burst per connection", 1),
    _s(
        "ws",
        "broadcast_mentions_per_min",
        "BROADCAST_MENTIONS_PER_MIN",
        FLOAT,
        BROADCAST_MENTIONS_PER_MIN,
        "@all and @<channel> mentions per sender and minute that wake mention-only members "
        "(beyond it the message is still delivered, as a plain one)",
        0.01,
    ),
    _s(
        "ws",
        "workspace_msg_rate_per_s",
        "WORKSPACE_MSG_RATE_PER_S",
        FLOAT,
        WORKSPACE_MSG_RATE_PER_S,
        "messages per second per workspace and gateway process",
        0.01,
    ),
    _s(
        "ws",
        "workspace_msg_burst",
        "WORKSPACE_MSG_BURST",
        INT,
        WORKSPACE_MSG_BURST,
        "message burst per workspace and gateway process",
        1,
    ),
    _s(
        "ws",
        "frame_rate_per_s",
        "FRAME_RATE_PER_S",
        FLOAT,
        FRAME_RATE_PER_S,
        "other frames per second per connection (queries, heartbeats)",
        0.01,
    ),
    _s("ws", "frame_burst", "FRAME_BURST", INT, FRAME_BURST, "other-frame burst per connection", 1),
    # ---- http: the dashboard port ----------------------------------------------------------
    _s(
        "http",
        "port",
        "DASHBOARD_PORT",
        INT,
        DEFAULT_DASHBOARD_PORT,
        "dashboard, REST API and observer WebSocket port",
        0,
    ),
    _s("http", "cors_origins", "CORS_ORIGINS", LIST, (), "origins allowed by CORS"),
    _s(
        "http",
        "allowed_hosts",
        "ALLOWED_HOSTS",
        NAMES,
        (),
        "Host names answered besides IPs and the host (.domain: and subdomains; *: any)",
    ),
    _s(
        "http",
        "base_hosts",
        "BASE_HOST",
        NAMES,
        (),
        "base host names of workspace subdomains: <workspace>.<base> opens that workspace",
    ),
    _s(
        "http",
        "header_timeout_s",
        "HTTP_HEADER_TIMEOUT_S",
        FLOAT,
        HTTP_HEADER_TIMEOUT_S,
        "seconds a connection has to send its request head",
        0.1,
    ),
    _s(
        "http",
        "max_conn_per_addr",
        "HTTP_MAX_CONN_PER_ADDR",
        INT,
        HTTP_MAX_CONN_PER_ADDR,
        "concurrent connections from one client address",
        1,
    ),
    _s(
        "http",
        "max_connections",
        "HTTP_MAX_CONNECTIONS",
        INT,
        HTTP_MAX_CONNECTIONS,
        "concurrent connections of the HTTP gateway",
        1,
    ),
    _s(
        "http",
        "post_timeout_s",
        "HTTP_POST_TIMEOUT_S",
        FLOAT,
        HTTP_POST_TIMEOUT_S,
        "seconds a posted message may wait to be durable (then 503)",
        0.1,
    ),
    _s(
        "http",
        "dashboard_ws_upstream",
        "DASHBOARD_WS_UPSTREAM",
        HUB_URL,
        "",
        "the hub whose live traffic the dashboard shows (http(s):// or ws(s)://host[:port]; "
        "default: its own); that hub lists this one's origin in CORS_ORIGINS",
    ),
    _derived(
        "http",
        "media_root",
        "MEDIA_ROOT",
        PATH,
        _under("data_dir", "media"),
        "<data_dir>/media",
        "uploaded files",
    ),
    _s(
        "http",
        "media_max_bytes",
        "MEDIA_MAX_SIZE",
        INT,
        DEFAULT_MEDIA_MAX_BYTES,
        "largest upload (bytes)",
        1,
    ),
    # ---- db: the database and the persister ------------------------------------------------
    _derived(
        "db",
        "url",
        "DB",
        DB_URL,
        lambda values, _env: db_url_from(None, values["data_dir"]),
        "sqlite:///<data_dir>/orochi.db",
        "SQLite path or SQLAlchemy URL",
    ),
    _s(
        "db",
        "sqlite_sync",
        "SQLITE_SYNC",
        SQLITE_SYNC,
        DEFAULT_SQLITE_SYNC,
        "SQLite's synchronous pragma (FULL: an ack means on disk)",
    ),
    _s(
        "db",
        "persist_batch_max",
        "PERSIST_BATCH_MAX",
        INT,
        PERSIST_BATCH_MAX,
        "messages the persister commits per batch",
        1,
    ),
    _s(
        "db",
        "dedupe_ids_max",
        "DEDUPE_IDS_MAX",
        INT,
        DEDUPE_IDS_MAX,
        "message ids the persister remembers to drop duplicates",
        100,
    ),
    # ---- presence: who is online -----------------------------------------------------------
    _s(
        "presence",
        "snapshot_s",
        "PRESENCE_SNAPSHOT_S",
        FLOAT,
        PRESENCE_SNAPSHOT_S,
        f"presence snapshot interval (a replica expires after {PRESENCE_EXPIRY_FACTOR:g}×)",
        0.05,
    ),
    _s(
        "presence",
        "reap_after_s",
        "REAP_AFTER_S",
        FLOAT,
        REAP_AFTER_S,
        "seconds of silence before an agent is disconnected",
        0.1,
    ),
    _s(
        "presence",
        "online_within_s",
        "ONLINE_WITHIN_S",
        FLOAT,
        ONLINE_WITHIN_S,
        "seconds since an agent's last sign of life for it to count as online",
        0.1,
    ),
    _s(
        "presence",
        "ghost_after_s",
        "GHOST_AFTER_S",
        FLOAT,
        GHOST_AFTER_S,
        "seconds an open socket may leave the hub's liveness probe (a protocol ping; "
        "dialect B's `echo`) unanswered before its agent counts as a ghost (keep it below "
        "PING_TIMEOUT_S, when such a socket is closed)",
        0.05,
    ),
    _s(
        "presence",
        "health_report_ttl_s",
        "HEALTH_REPORT_TTL_S",
        FLOAT,
        HEALTH_REPORT_TTL_S,
        "seconds a reported health class (`POST /api/agents/health/`, e.g. a healer's "
        "stuck_prompt or remediating) holds unless the agent is healthy again first",
        1,
    ),
    _s(
        "presence",
        "max_record_bytes",
        "MAX_PRESENCE_RECORD_BYTES",
        INT,
        MAX_PRESENCE_RECORD_BYTES,
        "largest presence record of one agent (packed)",
        KIB,
    ),
    _s(
        "presence",
        "max_channels_per_agent",
        "MAX_CHANNELS_PER_AGENT",
        INT,
        MAX_CHANNELS_PER_AGENT,
        "channels one agent may be in",
        1,
    ),
    # ---- ingest: gateways' and bridges' unacked messages ----------------------------------
    _s(
        "ingest",
        "republish_after_s",
        "REPUBLISH_AFTER_S",
        FLOAT,
        REPUBLISH_AFTER_S,
        "seconds before an unacked message is published again",
        0.01,
    ),
    _s(
        "ingest",
        "republish_max_s",
        "REPUBLISH_MAX_S",
        FLOAT,
        REPUBLISH_MAX_S,
        "cap of the republish backoff (seconds)",
        0.01,
    ),
    _s(
        "ingest",
        "pending_max_bytes",
        "INGEST_PENDING_MAX_BYTES",
        INT,
        INGEST_PENDING_MAX_BYTES,
        "unacked message bytes held per process before posts are refused",
        MIB,
    ),
    # ---- log -------------------------------------------------------------------------------
    _s("log", "level", "LOG_LEVEL", LOG_LEVEL, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    _derived(
        "log",
        "dir",
        "LOG_DIR",
        PATH,
        _under("data_dir", "logs"),
        "<data_dir>/logs",
        "supervised programs' rotated log files",
    ),
    _s(
        "log",
        "stdout",
        "LOG_STDOUT",
        BOOL,
        False,
        "programs log to supervisord's stdout instead (containers)",
    ),
    _s(
        "log",
        "max_bytes",
        "LOG_MAX_BYTES",
        INT,
        LOG_MAX_BYTES,
        "each program's log file rotates at this size",
        KIB,
    ),
    _s("log", "backups", "LOG_BACKUPS", INT, LOG_BACKUPS, "rotated log files kept per program", 0),
    # ---- telegram: the bridge --------------------------------------------------------------
    _s(
        "telegram",
        "enabled",
        "TELEGRAM_BRIDGE_ENABLED",
        BOOL,
        False,
        "run the Telegram bridge (needs the bot token and chat id)",
    ),
    _s("telegram", "bot_token", "TELEGRAM_BOT_TOKEN", TEXT, None, "the bot's token", secret=True),
    _s("telegram", "chat_id", "TELEGRAM_CHAT_ID", TEXT, None, "the chat bridged"),
    _s("telegram", "channel", "TELEGRAM_CHANNEL", TEXT, "#telegram", "the channel bridged"),
    _s("telegram", "api_base", "TELEGRAM_API_BASE", URL, TELEGRAM_API_BASE, "Bot API base URL"),
    _s(
        "telegram",
        "workspace",
        "TELEGRAM_WORKSPACE",
        TEXT,
        "default",
        "the workspace of the bridged channel",
    ),
    _s(
        "telegram",
        "webhook_secret",
        "TELEGRAM_WEBHOOK_SECRET",
        TEXT,
        None,
        "webhook mode: the secret Telegram sends (unset: long polling)",
        secret=True,
    ),
    _s(
        "telegram",
        "webhook_url",
        "TELEGRAM_WEBHOOK_URL",
        TEXT,
        None,
        "webhook mode: the public URL of the dashboard port's webhook route",
    ),
    _s(
        "telegram",
        "poll_timeout_s",
        "TELEGRAM_POLL_TIMEOUT_S",
        INT,
        TELEGRAM_POLL_TIMEOUT_S,
        "long-poll timeout (whole seconds)",
        0,
    ),
    # ---- gitea: the worker -----------------------------------------------------------------
    _s("gitea", "url", "GITEA_URL", TEXT, None, "the Gitea server (unset: no worker)"),
    _s("gitea", "token", "GITEA_TOKEN", TEXT, None, "the worker's Gitea token", secret=True),
    _s(
        "gitea",
        "timeout_s",
        "GITEA_TIMEOUT_S",
        FLOAT,
        GITEA_TIMEOUT_S,
        "seconds a Gitea API call may take",
        0.1,
    ),
    # ---- push: web push to people's browsers ------------------------------------------------
    _s(
        "push",
        "enabled",
        "PUSH_ENABLED",
        BOOL,
        False,
        "web push: run the push worker and offer push in the dashboard and the /api/push routes",
    ),
    _s(
        "push",
        "subject",
        "PUSH_SUBJECT",
        TEXT,
        PUSH_SUBJECT,
        "the VAPID contact (mailto: or https:) push services see with every push",
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(s.group for s in SETTINGS))
