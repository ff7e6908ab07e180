"""Private files: the hub's directories are 0700 and its files 0600, whatever the umask.

The database, its WAL and SHM, tokens, media, logs and run files hold messages and
secrets. Every process sets `PRIVATE_UMASK` in its entry point before it creates a
file (`restrict_umask`), and `serve` tightens what an older version or another umask
left behind (`tighten_tree`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

PRIVATE_UMASK = 0o077
OTHERS_BITS = 0o077  # group and other permission bits


def restrict_umask() -> int:
    """Set the private umask for this process (and its children); returns the old one."""
    return os.umask(PRIVATE_UMASK)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """The private umask for the duration of a block, then the caller's again."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def tighten(path: Path) -> bool:
    """Drop group and other bits from one file, directory or socket (symlinks are left
    alone); True if its mode changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & OTHERS_BITS:
        return False
    mode = stat.S_IMODE(st.st_mode)
    want = 0o700 if stat.S_ISDIR(st.st_mode) else (mode & ~OTHERS_BITS) | 0o600
    try:
        os.chmod(path, want & ~OTHERS_BITS)
    except PermissionError:  # not ours (a shared /data owned by another user): leave it
        return False
    return True


def tighten_tree(root: Path) -> int:
    """`tighten` a directory and everything under it; returns how many entries changed."""
    if not root.exists():
        return 0
    changed = int(tighten(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            changed += tighten(Path(dirpath) / name)
    return changed


def sqlite_files(db_url: str) -> list[Path]:
    """An SQLite database file with its WAL, SHM and journal (none for other databases)."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url == prefix or ":memory:" in db_url:
        return []
    db = Path(db_url[len(prefix) :].split("?", 1)[0])
    return [db] + [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def tighten_hub_files(dirs: Iterable[Path], files: Iterable[Path]) -> int:
    """Our directories wholly, and single files that may live elsewhere (a database
    outside the data dir); never a directory we did not make (a database in /srv
    leaves /srv alone)."""
    return sum(tighten_tree(d) for d in dirs) + sum(tighten(f) for f in files)
