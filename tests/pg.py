"""A throwaway PostgreSQL server for the tests: initdb in a temporary folder, started on a free
port on 127.0.0.1 (its unix socket in that folder), stopped and deleted at the end.

The server checks a password (scram-sha-256 over TCP), so the tests can check that ablate never
prints it. initdb refuses to run as root: as root, the server runs as `postgres` (Debian's
package creates that user) or else `nobody`. Absent PostgreSQL or psycopg2 the tests that need
the server are skipped with the reason, unless ABLATE_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

USER = "ablate"
PASSWORD = "s3cret-pg-pw-7f2a"      # distinctive, so a test can look for it in any output


def pg_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian puts them under /usr/lib/postgresql/N/bin
    (not on PATH); elsewhere they are usually on PATH. The newest version wins."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def why_unavailable() -> str | None:
    """None when a server can be started here, else why not."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install 'ablate[postgres]')"
    bindir = pg_bin_dir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        return "PostgreSQL is not installed (initdb and pg_ctl not found; apt-get install postgresql)"
    return None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server: `url(db)` is a SQLAlchemy URL, `create_database` / `drop_database` manage
    one database per test."""

    def __init__(self) -> None:
        self.bindir = pg_bin_dir()
        self.user = _server_user()
        # not pytest's tmp_path (private to root): as root, right under /tmp, which the server's
        # user can enter whatever TMPDIR says
        self.root = Path(tempfile.mkdtemp(prefix="ablate-pg-", dir="/tmp" if self.user is not None else None))
        self.data = self.root / "data"
        self.port = _free_port()
        self.count = 0

    def _run(self, *args: str) -> None:
        kwargs = {}
        if self.user is not None:
            kwargs = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        proc = subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.root, timeout=120, **kwargs)
        if proc.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                               + (log.read_text() if log.exists() else ""))

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                  "--auth-local=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        # durability off: a test server, never a real one
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "start", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "server.log"),
                  "-o", options)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, *, password: bool = True) -> str:
        auth = f"{USER}:{PASSWORD}" if password else USER
        return f"postgresql+psycopg2://{auth}@127.0.0.1:{self.port}/{database}"

    def _admin(self):
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres")
        con.autocommit = True
        return con

    def create_database(self) -> str:
        self.count += 1
        name = f"ablate_test_{self.count}"
        con = self._admin()
        try:
            con.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            con.close()
        return name

    def drop_database(self, name: str) -> None:
        con = self._admin()
        try:
            con.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            con.close()


def start_server_or_skip():
    """A started server, or pytest.skip with the reason (pytest.fail under ABLATE_REQUIRE_POSTGRES=1)."""
    reason = why_unavailable()
    if reason is not None:
        if os.environ.get("ABLATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ABLATE_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    server = PostgresServer()
    started = time.monotonic()
    try:
        server.start()
    except BaseException:
        shutil.rmtree(server.root, ignore_errors=True)
        raise
    server.start_s = time.monotonic() - started
    return server
