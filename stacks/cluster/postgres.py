"""A private, throw-away PostgreSQL for the cluster: ``initdb`` + ``pg_ctl`` under a directory.

Debian's binaries (``apt-get install postgresql``); no system service is used or
needed. The server listens on 127.0.0.1 at its own port and keeps its socket in its
own directory, so it never meets a system PostgreSQL. Root may not run PostgreSQL:
as root, every PostgreSQL program runs as the ``postgres`` system user the Debian
package creates (``CLUSTER_POSTGRES_OS_USER`` names another), and the directory it
owns is handed to that user.

Access: the superuser ``postgres`` only through the private socket (trust, the
directory is 0700), everyone else over TCP with a password (SCRAM). Temporal gets a
role of its own (:meth:`Postgres.ensure_role`), never the superuser.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"
OS_USER_ENV = "CLUSTER_POSTGRES_OS_USER"
BINDIR_ENV = "POSTGRES_BINDIR"
#: Four Temporal services, each with a pool of 20 (store) + 10 (visibility), and the tools.
MAX_CONNECTIONS = 300
READY_SECONDS = 60.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or unusable ones)."""


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path

    def __getitem__(self, program: str) -> str:
        return str(self.bindir / program)

    @property
    def version(self) -> str:
        out = subprocess.run(
            [self["postgres"], "--version"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip()


def find_postgres() -> PostgresBinaries | None:
    """``$POSTGRES_BINDIR``, ``pg_config --bindir``, Debian's newest
    ``/usr/lib/postgresql/N/bin``, or the directory of an ``initdb`` on PATH."""
    candidates: list[Path] = []
    explicit = os.environ.get(BINDIR_ENV)
    if explicit:
        candidates.append(Path(explicit))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(path) for path in debian]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all((bindir / p).is_file() for p in ("initdb", "pg_ctl", "postgres", "psql")):
            return PostgresBinaries(bindir)
    if explicit:
        raise PostgresUnavailable(f"{BINDIR_ENV}={explicit} has no initdb, pg_ctl, postgres, psql")
    return None


def require_postgres() -> PostgresBinaries:
    found = find_postgres()
    if found is None:
        raise PostgresUnavailable(
            "PostgreSQL is not installed: `apt-get install postgresql` (Debian's packages; "
            f"no service is started), or set {BINDIR_ENV} to a directory holding initdb, "
            "pg_ctl, postgres and psql"
        )
    return found


@dataclass(frozen=True)
class OsUser:
    """Whom PostgreSQL's programs run as: ``None`` fields: the current user."""

    name: str | None = None
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_postgres(cls) -> OsUser:
        if os.geteuid() != 0:
            return cls()
        name = os.environ.get(OS_USER_ENV, "postgres")
        try:
            entry = pwd.getpwnam(name)
        except KeyError as error:
            raise PostgresUnavailable(
                f"running as root, and PostgreSQL refuses root: no system user {name!r} to run "
                f"it as (Debian's postgresql package creates 'postgres'; or set {OS_USER_ENV})"
            ) from error
        return cls(name, entry.pw_uid, entry.pw_gid)

    def popen_args(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def check_reachable(self, path: Path) -> None:
        """Every directory above ``path`` must let this user through (search permission),
        or PostgreSQL's programs fail with a bare "Permission denied"."""
        if self.uid is None:
            return
        for parent in path.resolve().parents:
            mode = parent.stat()
            through = (
                mode.st_mode & stat.S_IXOTH
                or (mode.st_uid == self.uid and mode.st_mode & stat.S_IXUSR)
                or (mode.st_gid == self.gid and mode.st_mode & stat.S_IXGRP)
            )
            if not through:
                raise PostgresUnavailable(
                    f"PostgreSQL runs as the system user {self.name!r}, which cannot enter "
                    f"{parent}: choose a directory it can reach, or `chmod o+x {parent}`"
                )


class Postgres:
    """One private PostgreSQL under ``directory`` (data, log and socket), on ``port``."""

    def __init__(self, binaries: PostgresBinaries, directory: Path, port: int) -> None:
        self.binaries = binaries
        self.directory = directory
        self.port = port
        self.os_user = OsUser.for_postgres()

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def _run(
        self, argv: list[str], *, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            cwd=self.directory,
            timeout=timeout,
            check=False,
            start_new_session=True,
            **self.os_user.popen_args(),
        )
        if result.returncode != 0:
            command = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
            raise RuntimeError(
                f"`{command}` failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def init(self) -> bool:
        """``initdb`` once; ``False`` when the directory already holds a database."""
        self.os_user.check_reachable(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.os_user.own(self.directory)
        if self.initialized:
            return False
        self._run(
            [
                self.binaries["initdb"],
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
            ]
        )
        socket_dir = str(self.directory).replace("'", "''")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# cancellation-orchestrator's private cluster (stacks/cluster/postgres.py)\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                f"max_connections = {MAX_CONNECTIONS}\n"
            )
        return True

    def start(self) -> None:
        """``pg_ctl start`` and wait until it accepts connections (crash recovery included)."""
        self._run(
            [
                self.binaries["pg_ctl"],
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.log),
                "--wait",
                "--timeout",
                str(int(READY_SECONDS)),
                "--options",
                f"-p {self.port} -k {shlex.quote(str(self.directory))}",
                "start",
            ],
            timeout=READY_SECONDS + 10,
        )
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                self.psql("SELECT 1")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clients cut off, a clean checkpoint); ``immediate``:
        every process quits at once, as in a crash, and the next start recovers from WAL."""
        if not self.alive:
            return
        self._run(
            [self.binaries["pg_ctl"], "--pgdata", str(self.data_dir), "--mode", mode, "stop"],
            timeout=READY_SECONDS + 10,
        )

    @property
    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    @property
    def alive(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` (from stdin: nothing in argv) as the superuser over the socket."""
        result = self._run(
            [
                self.binaries["psql"],
                "--host",
                str(self.directory),
                "--port",
                str(self.port),
                "--username",
                SUPERUSER,
                "--dbname",
                database,
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--set",
                "ON_ERROR_STOP=1",
            ],
            input=sql,
            timeout=30.0,
        )
        return result.stdout.strip()

    def ensure_role(self, name: str, password: str) -> None:
        """A login role that may create databases (Temporal's schema tool does), with
        ``password`` (set again each time: the password file is the truth)."""
        literal = "'" + password.replace("'", "''") + "'"
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {_literal(name)}")
        verb = "ALTER" if exists == "1" else "CREATE"
        self.psql(f"{verb} ROLE {_identifier(name)} LOGIN CREATEDB PASSWORD {literal}")

    def has_database(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = {_literal(name)}") == "1"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'
