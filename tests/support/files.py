"""File modes under a directory, for the tests that the hub's files are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def modes(root: Path) -> dict[str, tuple[str, int]]:
    """Kind and permission bits of `root` and everything under it."""
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [Path(dirpath) / name for name in (*dirnames, *filenames)]
    out = {}
    for path in paths:
        st = os.lstat(path)
        kind = (
            "dir" if stat.S_ISDIR(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "file"
        )
        out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode))
    return out


def wrong_modes(root: Path) -> dict[str, tuple[str, str]]:
    bad = {}
    for path, (kind, mode) in modes(root).items():
        ok = (
            mode == 0o700
            if kind == "dir"
            else not mode & 0o077
            if kind == "socket"
            else mode == 0o600
        )
        if not ok:
            bad[path] = (kind, oct(mode))
    return bad
