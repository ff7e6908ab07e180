"""A throwaway PostgreSQL cluster for tests, from Debian's binaries.

initdb refuses to run as root, so when we are root every server command runs
as the `postgres` user (`runuser -u postgres --`) in a temporary directory
owned by it. The server listens only on 127.0.0.1 on a free port, with
trust authentication and fsync off.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from scitex_orochi.hub.testing import harness_setting

PG_VERSION_PREFERRED = "15"
START_TIMEOUT_S = 30


def find_bindir() -> Path | None:
    env = harness_setting("OROCHI_TEST_PG_BINDIR", "")
    candidates = [env] if env else []
    candidates.append(f"/usr/lib/postgresql/{PG_VERSION_PREFERRED}/bin")
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgUnavailable(RuntimeError):
    """No PostgreSQL binaries, or the cluster could not start."""


class PgCluster:
    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PgUnavailable(
                "PostgreSQL server binaries not found "
                "(apt-get install postgresql-15, or set OROCHI_TEST_PG_BINDIR)"
            )
        self.bindir = found
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="oropg"))
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root but there is no postgres user") from None
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.running = False

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S + 10, cwd=self.base
        )
        if check and proc.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise PgUnavailable(
                f"{' '.join(args[:2])} failed ({proc.returncode}): "
                f"{proc.stdout}{proc.stderr}{log[-2000:]}"
            )
        return proc

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            opts,
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)
            self.running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (dropping every connection) and start it again on the same port."""
        self.stop(mode)
        self.start()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def _admin_sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        self._admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()
