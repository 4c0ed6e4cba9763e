"""A private, throw-away PostgreSQL server in a temp folder: for tests and the store benchmark.

Runs Debian's PostgreSQL binaries (package ``postgresql``) as the ``postgres`` user when we are
root (initdb refuses root), listens on 127.0.0.1 only, and requires a password (SCRAM).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

USER = "consolidator"
DATABASE = "consolidator"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed here (install Debian's ``postgresql``)."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/N/bin`` with initdb and pg_ctl."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    for d in reversed(dirs):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    raise PostgresUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """One private PostgreSQL cluster: ``start()`` returns its URL, ``stop()`` removes everything."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="consolidator-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.password = secrets.token_hex(12)
        self._as_postgres = os.geteuid() == 0
        self.url = f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, argv: list[str]) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[-1] if argv else ''}: {' '.join(argv)} failed: {done.stderr.strip()}")

    def start(self) -> str:
        """initdb, start on 127.0.0.1:port with SCRAM auth, create the database; returns the URL."""
        os.chmod(self.root, 0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                   "--auth-host=scram-sha-256",
                   # the socket sits in our private 0700 folder; TCP (the endpoint) needs the password
                   "--auth-local=trust", "-E", "UTF8", "--no-sync"])
        pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                   "-l", str(self.root / "log"), "-w", "-t", "60", "start"])
        self._run([str(self.bindir / "createdb"), "-h", str(self.root), "-p", str(self.port),
                   "-U", USER, DATABASE])
        return self.url

    def stop(self) -> None:
        """Stop the server (fast) and delete its folder."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def temp_postgres() -> Iterator[TempPostgres]:
    """A running private PostgreSQL for the ``with`` block."""
    pg = TempPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
