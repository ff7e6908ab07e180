"""Where skills live: markdown files under `<data dir>/skills/<workspace>/`.

`<name>.md` is an approved skill; `.pending/<name>.md` is a proposal waiting for an
admin, with `proposer` and `proposed_at` in its front matter. Files rather than
database rows keep the persister the only writer of the database (the HTTP gateway
already writes files in the data dir: media), and an operator can read, back up or
edit them by hand. Writes are atomic (a temp file in the same directory, then
rename), files 0600 and directories 0700; one lock serialises this process's writes
(only the HTTP gateway writes them). Each workspace holds at most `max_skills`
skills and `max_pending` proposals; a new proposal of a name already pending
replaces it. Every method blocks (file I/O): routes call them in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from scitex_orochi.protocol import skills as sk

log = logging.getLogger("orochi.gateway_http")

MAX_SKILLS = 500
MAX_PENDING = 100
PENDING_DIR = ".pending"
PENDING_KEYS = ("proposer", "proposed_at")
WORKSPACE_DIR_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


class SkillLimit(Exception):
    """A workspace already holds as many skills (or proposals) as it may."""


class SkillExists(Exception):
    """Created with POST, but a skill of that name is there."""


class SkillStore:
    def __init__(
        self, root: Path, max_skills: int = MAX_SKILLS, max_pending: int = MAX_PENDING
    ) -> None:
        self.root = root
        self.max_skills = max_skills
        self.max_pending = max_pending
        self._lock = threading.Lock()

    # ---- paths --------------------------------------------------------------------
    def _dir(self, workspace: str, pending: bool = False) -> Path:
        if not WORKSPACE_DIR_RE.fullmatch(workspace):
            raise ValueError(f"not a workspace id: {workspace!r}")
        base = self.root / workspace
        return base / PENDING_DIR if pending else base

    def _path(self, workspace: str, name: str, pending: bool = False) -> Path:
        return self._dir(workspace, pending) / f"{sk.check_name(name)}.md"

    def _names(self, directory: Path) -> list[str]:
        try:
            entries = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(e[:-3] for e in entries if e.endswith(".md") and sk.NAME_RE.fullmatch(e[:-3]))

    def _read(self, path: Path, pending: bool) -> sk.Skill | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            skill = sk.parse_markdown(text, PENDING_KEYS if pending else ())
        except (sk.SkillError, UnicodeDecodeError) as exc:
            log.warning("skipping the unreadable skill file %s: %s", path, exc)
            return None
        if skill.name != path.name[:-3]:
            log.warning("skipping %s: its front matter names %r", path, skill.name)
            return None
        return skill

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # ---- approved skills ----------------------------------------------------------
    def skills(self, workspace: str) -> list[sk.Skill]:
        directory = self._dir(workspace)
        found = (self._read(directory / f"{n}.md", False) for n in self._names(directory))
        return [s for s in found if s is not None]

    def get(self, workspace: str, name: str) -> sk.Skill | None:
        return self._read(self._path(workspace, name), False)

    def put(self, workspace: str, skill: sk.Skill, create_only: bool = False) -> bool:
        """Store `skill` (True: it is new). SkillExists with `create_only` when it is
        there; SkillLimit when a new one would pass the limit."""
        path = self._path(workspace, skill.name)
        with self._lock:
            exists = path.exists()
            if exists and create_only:
                raise SkillExists(skill.name)
            if not exists and len(self._names(path.parent)) >= self.max_skills:
                raise SkillLimit(f"workspace {workspace!r} holds {self.max_skills} skills")
            plain = sk.Skill(skill.name, skill.description, skill.arguments, skill.body)
            self._write(path, plain.markdown())
        return not exists

    def delete(self, workspace: str, name: str) -> bool:
        return self._unlink(self._path(workspace, name))

    def _unlink(self, path: Path) -> bool:
        with self._lock:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
        return True

    # ---- proposals ----------------------------------------------------------------
    def pending(self, workspace: str) -> list[sk.Skill]:
        directory = self._dir(workspace, True)
        found = (self._read(directory / f"{n}.md", True) for n in self._names(directory))
        return [s for s in found if s is not None]

    def get_pending(self, workspace: str, name: str) -> sk.Skill | None:
        return self._read(self._path(workspace, name, True), True)

    def propose(self, workspace: str, skill: sk.Skill, proposer: str) -> sk.Skill:
        path = self._path(workspace, skill.name, True)
        when = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
        proposal = sk.Skill(
            skill.name,
            skill.description,
            skill.arguments,
            skill.body,
            {"proposer": proposer, "proposed_at": when},
        )
        with self._lock:
            if not path.exists() and len(self._names(path.parent)) >= self.max_pending:
                raise SkillLimit(f"workspace {workspace!r} holds {self.max_pending} proposals")
            self._write(path, proposal.markdown())
        return proposal

    def approve(self, workspace: str, name: str) -> sk.Skill | None:
        """The proposal becomes the skill (replacing one of that name); None if there is
        no such proposal. SkillLimit when a new skill would pass the limit."""
        pending = self._path(workspace, name, True)
        proposal = self.get_pending(workspace, name)
        if proposal is None:
            return None
        self.put(workspace, proposal)
        self._unlink(pending)
        return proposal

    def reject(self, workspace: str, name: str) -> bool:
        return self._unlink(self._path(workspace, name, True))


_STORES: dict[Path, SkillStore] = {}
_STORES_LOCK = threading.Lock()


def skills_root(data_dir: Path) -> Path:
    return data_dir / "skills"


def store_for(data_dir: Path) -> SkillStore:
    """The one SkillStore of a data dir in this process (routes and the observer socket
    share its write lock)."""
    root = skills_root(data_dir)
    with _STORES_LOCK:
        store = _STORES.get(root)
        if store is None:
            store = _STORES[root] = SkillStore(root)
        return store
