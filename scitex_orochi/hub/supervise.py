"""Running the whole hub under supervisord: environment, rendered config, start and stop.

`serve` and the test fixtures both go through `prepare()` and `HubSupervisor`,
so what the tests start is what a user starts.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from scitex_orochi.hub.config import Config, process_environ
from scitex_orochi.hub.errors import SuperviseError
from scitex_orochi.hub.files import PRIVATE_UMASK, private_umask, sqlite_files, tighten_hub_files

CONF_NAME = "supervisord.conf"
_ENV_REF = re.compile(r"%\(ENV_([A-Z0-9_]+)\)s")


def template_path() -> Path:
    """The repo's supervisord.conf in a checkout, else the copy packaged in the wheel."""
    checkout = Path(__file__).resolve().parents[2] / CONF_NAME
    if checkout.is_file():
        return checkout
    packaged = resources.files("scitex_orochi") / "_data" / CONF_NAME
    return Path(str(packaged))


def hub_env(cfg: Config, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every supervised process gets: `base` (default: this process's
    environment, passed through) with every setting of `cfg` under its SCITEX_OROCHI_*
    name, so each process's `Config.from_env()` is `cfg`, command-line overrides and all.

    Values read from 0.1.0 names reach the processes under the new names: the
    deprecation is reported once, by `serve`, not again by every process.
    """
    env = process_environ() if base is None else dict(base)
    for name, value in cfg.to_env().items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.update(
        {
            "SCITEX_OROCHI_PYTHON": sys.executable,
            "SCITEX_OROCHI_TELEGRAM_AUTOSTART": "true" if cfg.telegram.enabled else "false",
            "SCITEX_OROCHI_GITEA_AUTOSTART": "true" if cfg.gitea.url else "false",
            "SCITEX_OROCHI_PUSH_AUTOSTART": "true" if cfg.push.enabled else "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def render(template: str, env: dict[str, str], values: dict[str, str | None] | None = None) -> str:
    """Substitute %(ENV_X)s references, so supervisorctl works without the environment.

    `values` (see `conf_values`) are substituted as they are, before `env`; a line whose
    value there is None is left out.
    """
    values = values or {}

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name] or ""
        if name not in env:
            raise SuperviseError(f"{CONF_NAME} needs ${name}, which is not set")
        return env[name].replace("%", "%%")

    dropped = {name for name, value in values.items() if value is None}
    lines = [
        line
        for line in template.splitlines(keepends=True)
        if not any(name in dropped for name in _ENV_REF.findall(line))
    ]
    return _ENV_REF.sub(sub, "".join(lines))


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def supervisor_password(admin_token: str) -> str:
    """The control socket's password: derived from the admin token, so it stays the same
    across restarts (a running hub's supervisorctl keeps working) and no file holds it."""
    return hmac.new(admin_token.encode(), b"orochi supervisord socket", hashlib.sha256).hexdigest()


def conf_values(cfg: Config, admin_token: str) -> dict[str, str | None]:
    """What only the rendered supervisord.conf needs (never the processes' environment):
    the control socket's credentials, `user=root` when root (supervisord warns otherwise),
    and where supervisord and its programs log."""
    if cfg.log.stdout:
        program_log = numbered_log = "/dev/fd/1"
        max_bytes, backups = "0", "0"
    else:  # supervisord expands %(program_name)s and %(process_num)s in these
        program_log = _escape(str(cfg.log.dir)) + "/%(program_name)s.log"
        numbered_log = _escape(str(cfg.log.dir)) + "/%(program_name)s_%(process_num)02d.log"
        max_bytes, backups = str(cfg.log.max_bytes), str(cfg.log.backups)
    return {
        "SCITEX_OROCHI_SUPERVISOR_USERNAME": "orochi",
        "SCITEX_OROCHI_SUPERVISOR_PASSWORD": supervisor_password(admin_token),
        "SCITEX_OROCHI_SUPERVISORD_USER": "root" if os.geteuid() == 0 else None,
        "SCITEX_OROCHI_SUPERVISORD_LOG": _escape(str(cfg.log.dir / "supervisord.log")),
        "SCITEX_OROCHI_LOG_MAX_BYTES": str(cfg.log.max_bytes),
        "SCITEX_OROCHI_LOG_BACKUPS": str(cfg.log.backups),
        "SCITEX_OROCHI_PROGRAM_LOG": program_log,
        "SCITEX_OROCHI_NUMBERED_PROGRAM_LOG": numbered_log,  # programs with numprocs
        "SCITEX_OROCHI_PROGRAM_LOG_MAX_BYTES": max_bytes,
        "SCITEX_OROCHI_PROGRAM_LOG_BACKUPS": backups,
    }


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_in_use(host, port):
            return True
        time.sleep(0.05)
    return False


@dataclass
class Prepared:
    cfg: Config
    env: dict[str, str]
    conf_path: Path
    admin_token: str
    default_token: str
    admin_generated: bool
    default_token_generated: bool


def prepare(cfg: Config, base_env: dict[str, str] | None = None) -> Prepared:
    """Create directories and bus keys, migrate the database, make tokens, render the
    supervisord config.

    Everything is created under the private umask and what already existed is tightened:
    directories 0700, files 0600 (`files.py`).
    """
    from scitex_orochi.hub import webpush
    from scitex_orochi.hub.bus_keys import client_keys, ensure_keys, load_server
    from scitex_orochi.hub.store import (
        Store,  # imported here: the CLI stays fast for other commands
    )

    with private_umask():
        for directory in (cfg.data_dir, cfg.run_dir, cfg.http.media_root, cfg.log.dir):
            directory.mkdir(parents=True, exist_ok=True)
        _tighten(cfg)
        # Always made, so switching an endpoint to tcp (or minting a remote client) needs
        # no extra step; used only while an endpoint is tcp.
        ensure_keys(cfg.bus.keys_dir)
        if cfg.bus.curve:  # fail here, by file name, rather than in a supervised child
            load_server(cfg)
            client_keys(cfg)
        # The VAPID key pair, at every start (push on or off), so the HTTP gateway and the
        # push worker read one key and turning push on later changes no subscription.
        webpush.load_or_create(cfg.data_dir)
        store = Store(cfg.db.url, sqlite_sync=cfg.db.sqlite_sync)
        try:
            store.migrate()
            boot = store.bootstrap(cfg.admin_token_file, cfg.auth.admin_token)
        finally:
            dispose = getattr(store, "close", None) or getattr(store, "dispose", None)
            if dispose is not None:
                dispose()
        env = hub_env(cfg, base_env)
        env["SCITEX_OROCHI_ADMIN_TOKEN"] = boot.admin_token
        conf_path = cfg.run_dir / CONF_NAME
        conf_path.write_text(
            render(template_path().read_text(), env, conf_values(cfg, boot.admin_token))
        )
        _tighten(cfg)
    return Prepared(
        cfg,
        env,
        conf_path,
        boot.admin_token,
        boot.default_token,
        boot.admin_generated,
        boot.default_token_generated,
    )


def _tighten(cfg: Config) -> None:
    """The hub's own directories wholly; in the data dir, which may be shared, only itself
    and the files the hub keeps there."""
    from scitex_orochi.hub.webpush import vapid_path

    tighten_hub_files(
        [cfg.run_dir, cfg.http.media_root, cfg.log.dir],
        [
            cfg.data_dir,
            cfg.admin_token_file,
            vapid_path(cfg.data_dir),
            *sqlite_files(cfg.db.url),
        ],
    )


def _append_mode(stdout: IO | int | None) -> None:
    """Make a regular-file stdout append-only before supervisord inherits it.

    supervisord writes its own lines through the inherited descriptor but reopens
    `/dev/fd/1` (append mode) for each program's output; without O_APPEND on the
    inherited one, its writes land at a stale offset and overwrite program lines
    (seen as log lines missing from `serve > hub.log` and from test logs).
    """
    if stdout is None:
        fd = sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else -1
    else:
        fd = stdout if isinstance(stdout, int) else stdout.fileno()
    try:
        if fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    except (OSError, ValueError):
        pass


class HubSupervisor:
    """supervisord in the foreground as a child process, stopped with SIGTERM."""

    def __init__(self, prepared: Prepared, stdout: IO | int | None = None) -> None:
        self.prepared = prepared
        self.stdout = stdout
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        cfg = self.prepared.cfg
        for port in (cfg.ws.port, cfg.http.port):
            if port_in_use(cfg.host, port):
                raise SuperviseError(
                    f"port {port} on {cfg.host} is already in use: stop what holds it "
                    f"or choose another with SCITEX_OROCHI_PORT / SCITEX_OROCHI_DASHBOARD_PORT"
                )
        _append_mode(self.stdout)
        # supervisord in the foreground keeps the umask it starts with (its `umask=`
        # applies only when it daemonizes): its log, pid and socket files, and every
        # program, start under the private one.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supervisor.supervisord",
                "-n",
                "-c",
                str(self.prepared.conf_path),
            ],
            env=self.prepared.env,
            stdout=self.stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
        return self.proc

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        cfg = self.prepared.cfg
        deadline = time.monotonic() + timeout_s
        for port in (cfg.ws.port, cfg.http.port):
            left = deadline - time.monotonic()
            if not wait_port(cfg.host, port, max(0.1, left)):
                return False
            if self.proc is not None and self.proc.poll() is not None:
                return False
        return True

    def ctl(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "supervisor.supervisorctl",
                "-c",
                str(self.prepared.conf_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=self.prepared.env,
        )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)
