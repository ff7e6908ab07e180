"""The bus's CURVE keys: created once per hub, loaded by the broker and every bus client.

Used whenever a bus endpoint is tcp (ipc is guarded by the run dir's file modes).
Layout of the keys dir (`SCITEX_OROCHI_BUS_KEYS_DIR`, default `<data dir>/bus-keys`):

    server.key            the broker's public key; every client needs a copy
    server.key_secret     the broker's keypair (0600); never leaves the hub host
    client.key_secret     the hub host's own client keypair (0600), used by its processes
    authorized/           one `<name>.key` (public key) per client the broker admits
    clients/              keypairs minted by `bus-keys add-client`, to hand to remote hosts

Files use ZeroMQ's certificate format (`zmq.auth.load_certificate` reads them). They
are written with explicit modes, whatever the umask, and replaced atomically.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.auth import load_certificate

from scitex_orochi.hub.config import (
    BUS_AUTHORIZED_DIR_NAME,
    BUS_CLIENT_KEY_NAME,
    BUS_SERVER_KEY_NAME,
    BUS_SERVER_SECRET_NAME,
    Config,
    ConfigError,
)

log = logging.getLogger("orochi.bus_keys")

DIR_MODE = 0o700
SECRET_MODE = 0o600
PUBLIC_MODE = 0o600  # public, but like every file of the data dir, the hub's user only
CLIENTS_DIR_NAME = "clients"
LOCAL_CLIENT_NAME = "client"  # authorized/client.key: the hub host's own processes
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HOWTO = "docs/bus-curve.md"


@dataclass(frozen=True)
class CurveClient:
    """What a bus client needs: its keypair and the broker's public key (z85)."""

    public: bytes
    secret: bytes
    server_public: bytes
    server_key_file: Path
    client_key_file: Path

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        """Make `sock` a CURVE client; call before connect."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = self.server_public


@dataclass(frozen=True)
class CurveServer:
    """What the broker needs: its keypair and the directory of admitted client keys."""

    public: bytes
    secret: bytes
    authorized_dir: Path

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        """Make `sock` a CURVE server; call before bind."""
        sock.curve_server = True
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public


# ---- writing ---------------------------------------------------------------------


def _key_text(name: str, public: bytes, secret: bytes | None) -> str:
    kind = "Secret" if secret else "Public"
    lines = [f"#   ZeroMQ CURVE {kind} Certificate: scitex-orochi bus, {name}"]
    if secret:
        lines.append("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.")
    lines += [
        "",
        "metadata",
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return "\n".join(lines) + "\n"


def write_key(path: Path, name: str, public: bytes, secret: bytes | None = None) -> None:
    """Write one key file with its mode set explicitly, then rename it into place.

    The rename also changes the directory's mtime, which is how the broker's
    authenticator notices a new authorized key.
    """
    mode = SECRET_MODE if secret else PUBLIC_MODE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask only narrows os.open's mode; be exact
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(_key_text(name, public, secret))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def _mkdir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    os.chmod(path, DIR_MODE)


def ensure_keys(keys_dir: Path) -> bool:
    """Create the hub's keys on first start; keep them afterwards. True if created now.

    The whole directory is built under a temporary name and renamed into place, so
    two hubs starting at once, or a crash half way, never leave mismatched halves.
    """
    if keys_dir.exists():
        _check_layout(keys_dir)
        return False
    keys_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{keys_dir.name}-", dir=keys_dir.parent))
    try:
        os.chmod(tmp, DIR_MODE)
        server_public, server_secret = zmq.curve_keypair()
        write_key(tmp / BUS_SERVER_KEY_NAME, "server", server_public)
        write_key(tmp / BUS_SERVER_SECRET_NAME, "server", server_public, server_secret)
        client_public, client_secret = zmq.curve_keypair()
        write_key(tmp / BUS_CLIENT_KEY_NAME, LOCAL_CLIENT_NAME, client_public, client_secret)
        for sub in (BUS_AUTHORIZED_DIR_NAME, CLIENTS_DIR_NAME):
            _mkdir(tmp / sub)
        write_key(
            tmp / BUS_AUTHORIZED_DIR_NAME / (LOCAL_CLIENT_NAME + PUBLIC_SUFFIX),
            LOCAL_CLIENT_NAME,
            client_public,
        )
        try:
            os.rename(tmp, keys_dir)
        except OSError:
            if not keys_dir.is_dir():
                raise
            _check_layout(keys_dir)  # another prepare() made them first: use those
            return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _check_layout(keys_dir: Path) -> None:
    """An existing keys dir must be complete; its modes are tightened, never widened."""
    needed = [
        keys_dir / BUS_SERVER_KEY_NAME,
        keys_dir / BUS_SERVER_SECRET_NAME,
        keys_dir / BUS_AUTHORIZED_DIR_NAME,
    ]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise ConfigError(
            f"the bus keys dir {keys_dir} is incomplete (missing {', '.join(missing)}); "
            f"restore it from a backup, or move it away to make new keys (every remote "
            f"gateway then needs the new server.key and a new client key, see {HOWTO})"
        )
    for path in (keys_dir, keys_dir / BUS_AUTHORIZED_DIR_NAME, keys_dir / CLIENTS_DIR_NAME):
        if path.is_dir() and stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
            os.chmod(path, DIR_MODE)
    for path in [
        *keys_dir.glob("*" + SECRET_SUFFIX),
        *(keys_dir / CLIENTS_DIR_NAME).glob("*" + SECRET_SUFFIX),
    ]:
        if stat.S_IMODE(path.stat().st_mode) != SECRET_MODE:
            os.chmod(path, SECRET_MODE)


def check_client_name(name: str) -> str:
    if not _CLIENT_NAME.match(name):
        raise ConfigError(
            f"client name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def add_client(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """Mint a keypair for a remote host and authorize its public key.

    Returns (secret file to hand over, authorized public key). An existing name is
    refused: replacing a key would lock out the host that holds the old one.
    """
    check_client_name(name)
    _check_layout(keys_dir)
    public_file = keys_dir / BUS_AUTHORIZED_DIR_NAME / (name + PUBLIC_SUFFIX)
    secret_file = keys_dir / CLIENTS_DIR_NAME / (name + SECRET_SUFFIX)
    if public_file.exists():
        raise ConfigError(
            f"client {name!r} is already authorized ({public_file}); "
            "remove it first or choose another name"
        )
    _mkdir(keys_dir / CLIENTS_DIR_NAME)
    public, secret = zmq.curve_keypair()
    write_key(secret_file, name, public, secret)
    write_key(public_file, name, public)
    return secret_file, public_file


def remove_client(keys_dir: Path, name: str) -> list[Path]:
    """Withdraw a client's authorization; returns the files removed."""
    check_client_name(name)
    removed = []
    for path in (
        keys_dir / BUS_AUTHORIZED_DIR_NAME / (name + PUBLIC_SUFFIX),
        keys_dir / CLIENTS_DIR_NAME / (name + SECRET_SUFFIX),
    ):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


# ---- reading ---------------------------------------------------------------------


def authorized_keys(directory: Path) -> dict[bytes, str]:
    """Public key (z85) -> client name, for every readable `*.key` in `directory`."""
    out: dict[bytes, str] = {}
    for path in sorted(directory.glob("*" + PUBLIC_SUFFIX)):
        try:
            public, _secret = load_certificate(path)
        except (OSError, ValueError) as exc:
            log.warning("skipped unreadable key %s: %s", path, exc)
            continue
        out[public] = path.name[: -len(PUBLIC_SUFFIX)]
    return out


def _load(path: Path, what: str, how: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise ConfigError(
            f"CURVE is on (a bus endpoint is tcp) but {what} {path} is missing: {how}"
        )
    try:
        public, secret = load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} {path} is not a ZeroMQ key file: {exc}") from None
    if len(public) != 40 or (need_secret and (secret is None or len(secret) != 40)):
        raise ConfigError(
            f"{what} {path} does not hold a CURVE "
            f"{'keypair' if need_secret else 'public key'}: {how}"
        )
    if need_secret and secret is not None:
        if zmq.curve_public(secret) != public:
            raise ConfigError(f"{what} {path}: its public and secret keys do not match")
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("secret key %s is readable by others; chmod 600 it", path)
    return public, secret


def load_client(cfg: Config) -> CurveClient:
    """This host's client keys; a clear ConfigError names a missing file and how to get it."""
    server_public, _ = _load(
        cfg.bus.server_key,
        "the broker's public key",
        need_secret=False,
        how=(
            f"copy {BUS_SERVER_KEY_NAME} from the hub host's bus keys dir (`scitex-orochi "
            "bus-keys` there shows it), or point SCITEX_OROCHI_BUS_SERVER_KEY at your copy; "
            f"see {HOWTO}"
        ),
    )
    public, secret = _load(
        cfg.bus.client_key,
        "the client keypair",
        need_secret=True,
        how=(
            "on the hub host run `scitex-orochi bus-keys add-client NAME` and copy the "
            "NAME.key_secret it writes here, or point SCITEX_OROCHI_BUS_CLIENT_KEY at it; "
            f"see {HOWTO}"
        ),
    )
    assert secret is not None
    return CurveClient(public, secret, server_public, cfg.bus.server_key, cfg.bus.client_key)


def client_keys(cfg: Config) -> CurveClient | None:
    """The keys a bus client must use, or None when no bus endpoint is tcp."""
    return load_client(cfg) if cfg.bus.curve else None


def load_server(cfg: Config) -> CurveServer:
    """The broker's keypair and authorized dir (made by `scitex-orochi serve`)."""
    how = "start the hub with `scitex-orochi serve`, which creates the bus keys"
    public, secret = _load(cfg.bus.server_secret, "the broker's keypair", how, need_secret=True)
    if not cfg.bus.authorized_dir.is_dir():
        raise ConfigError(
            f"CURVE is on but the authorized keys dir {cfg.bus.authorized_dir} is missing: {how}"
        )
    assert secret is not None
    return CurveServer(public, secret, cfg.bus.authorized_dir)
