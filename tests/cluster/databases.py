"""Private database servers for Buildbot masters: SQLite, PostgreSQL and MariaDB.

Each server is started for the test run (or a test class) in a temporary
directory, listens on loopback only, on a free port, and is stopped at the
end; each test takes a database of its own from it with
:meth:`DatabaseServer.create`, whose answer is the ``db_url`` a master's
``c['db']`` names. The binaries are Debian's (``postgresql``,
``mariadb-server``); where one is missing the tests that need it are skipped
with a reason that says how to get it (``.ci/run`` installs both).

Tests run as root in CI: PostgreSQL's ``initdb`` refuses root, so the
cluster is then owned and run by the ``postgres`` system user that Debian's
package creates; MariaDB runs as root when told ``--user=root``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import attrs

from tests.cluster.processes import ChildProcess, free_port, run, wait_for_server

DatabaseKind = Literal["sqlite", "postgresql", "mariadb"]

#: Every kind of database the adoption and storage tests run on.
DATABASE_KINDS: tuple[DatabaseKind, ...] = ("sqlite", "postgresql", "mariadb")

#: Seconds a server may take to accept connections.
START_TIMEOUT = 60.0

#: initdb's options after the data directory and role: UTF-8 and no locale, and
#: no sync to disk (a test cluster need not survive a power cut).
INITDB_OPTIONS = ("-E", "UTF8", "--no-locale", "--no-sync")

#: mariadb-install-db's: no test database, and root without a password.
INSTALL_DB_OPTIONS = ("--skip-test-db", "--auth-root-authentication-method=normal")

_DATABASE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _checked_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
    return name


class DatabaseServer(Protocol):
    """Where the masters' databases live."""

    @property
    def kind(self) -> DatabaseKind:
        """Which database this is."""

    def create(self, name: str) -> str:
        """Create the empty database ``name``; its SQLAlchemy URL, as Buildbot's ``db_url``."""

    def stop(self) -> None:
        """Stop the server (if there is one) and remove its files."""


def start_database_server(kind: DatabaseKind) -> DatabaseServer:
    """Start a server of ``kind`` in a temporary directory of its own, removed by ``stop()``.

    Raises ``unittest.SkipTest`` with how to get the server when it is not installed.
    """
    # Not under a test's own temporary directory: a server that runs as
    # another user must be able to reach its files.
    directory = Path(tempfile.mkdtemp(prefix=f"buildbot-jira-{kind}-"))
    starts: dict[DatabaseKind, Callable[[Path], DatabaseServer]] = {
        "sqlite": SqliteFiles.start,
        "postgresql": PostgresServer.start,
        "mariadb": MariaDBServer.start,
    }
    try:
        return starts[kind](directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


@attrs.define
class SqliteFiles:
    """SQLite databases: files in one directory (one master each; SQLite is not shared)."""

    kind: ClassVar[DatabaseKind] = "sqlite"
    directory: Path

    @classmethod
    def start(cls, directory: Path) -> SqliteFiles:
        """Databases as files in ``directory``."""
        return cls(directory)

    def create(self, name: str) -> str:
        """The URL of a new database file ``name.sqlite``."""
        return f"sqlite:///{self.directory / _checked_name(name)}.sqlite"

    def stop(self) -> None:
        """Remove the files."""
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_bindir() -> Path | None:
    """The bin directory of the newest PostgreSQL that Debian installed (or on PATH)."""

    def version(bindir: Path) -> tuple[int, ...]:
        digits = re.findall(r"\d+", bindir.parent.name)
        return tuple(int(d) for d in digits)

    debian = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=version
    )
    if debian:
        return debian[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _postgres_user() -> str | None:
    """Whom to run PostgreSQL as: the current user, or ``postgres`` instead of root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise unittest.SkipTest(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
            "apt-get install postgresql creates it"
        ) from None
    return "postgres"


@attrs.define
class PostgresServer:
    """A private PostgreSQL cluster: trusts every local connection, on loopback and a socket."""

    kind: ClassVar[DatabaseKind] = "postgresql"
    #: The database role every master connects as.
    role: ClassVar[str] = "buildbot"

    directory: Path
    bindir: Path
    port: int
    process: ChildProcess
    user: str | None

    @classmethod
    def start(cls, directory: Path) -> PostgresServer:
        """initdb and start a cluster in ``directory``."""
        bindir = postgres_bindir()
        if bindir is None:
            raise unittest.SkipTest("PostgreSQL is not installed: apt-get install postgresql")
        user = _postgres_user()
        if user is not None:
            shutil.chown(directory, user=user)
        data = directory / "data"
        run(
            [bindir / "initdb", "-D", data, "-U", cls.role, "-A", "trust", *INITDB_OPTIONS],
            what="initdb",
            user=user,
            cwd=directory,
        )
        port = free_port()
        # Durability is of no use to a test database and costs every commit a sync.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv: list[str | os.PathLike[str]] = [bindir / "postgres", "-D", data]
        for setting, value in settings.items():
            argv += ["-c", f"{setting}={value}"]
        output = directory / "postgres.log"
        process = ChildProcess.start("postgres", argv, output_path=output, cwd=directory, user=user)
        server = cls(directory=directory, bindir=bindir, port=port, process=process, user=user)
        wait_for_server(
            process,
            lambda: "ready to accept connections" in process.output(),
            timeout=START_TIMEOUT,
            what="PostgreSQL",
        )
        return server

    def create(self, name: str) -> str:
        """Create the database ``name``; its URL (psycopg2, as Buildbot's docs name it)."""
        run(
            [self.bindir / "createdb", *self._where(), _checked_name(name)],
            what=f"createdb {name}",
        )
        return f"postgresql+psycopg2://{self.role}@127.0.0.1:{self.port}/{name}"

    def _where(self) -> list[str]:
        """The client options that reach the server as the masters' role."""
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.role]

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect everyone), then remove the files."""
        self.process.stop(sig=signal.SIGINT)
        shutil.rmtree(self.directory, ignore_errors=True)


def _first_program(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    return None


@attrs.define
class MariaDBServer:
    """A private MariaDB server: root without a password, on loopback and a socket."""

    kind: ClassVar[DatabaseKind] = "mariadb"

    directory: Path
    client: str
    port: int
    process: ChildProcess

    @classmethod
    def start(cls, directory: Path) -> MariaDBServer:
        """mariadb-install-db and start a server in ``directory``."""
        server = _first_program("mariadbd", "mysqld")
        install = _first_program("mariadb-install-db", "mysql_install_db")
        client = _first_program("mariadb", "mysql")
        if server is None or install is None or client is None:
            raise unittest.SkipTest("MariaDB is not installed: apt-get install mariadb-server")
        data = directory / "data"
        # As root the server must be told to stay root; as anyone else it runs as them.
        as_user = ["--user=root"] if os.geteuid() == 0 else []
        run(
            [install, "--no-defaults", f"--datadir={data}", *INSTALL_DB_OPTIONS, *as_user],
            what="mariadb-install-db",
        )
        port = free_port()
        argv = [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={directory / 'mariadb.sock'}",
            f"--pid-file={directory / 'mariadb.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--skip-log-bin",
            # Buildbot's documentation asks for utf8mb4 and InnoDB.
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--default-storage-engine=InnoDB",
            # Durability is of no use to a test database and costs every commit a sync.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=128M",
            *as_user,
        ]
        output = directory / "mariadb.log"
        process = ChildProcess.start("mariadbd", argv, output_path=output)
        wait_for_server(
            process,
            lambda: "ready for connections" in process.output(),
            timeout=START_TIMEOUT,
            what="MariaDB",
        )
        return cls(directory=directory, client=client, port=port, process=process)

    def _where(self) -> list[str]:
        """The client options that reach the server as root, over TCP."""
        return ["--protocol=TCP", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root"]

    def execute(self, sql: str) -> str:
        """Run ``sql`` as root with the command-line client; what it printed."""
        return run(
            [self.client, "--no-defaults", *self._where(), "--batch", "-e", sql],
            what="mariadb",
        )

    def create(self, name: str) -> str:
        """Create the database ``name`` (utf8mb4); its URL (PyMySQL, InnoDB tables)."""
        self.execute(
            f"CREATE DATABASE `{_checked_name(name)}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        # Buildbot makes MyISAM tables unless told otherwise, and recycles a
        # connection after max_idle seconds, before the server drops it.
        return (
            f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}?max_idle=300&storage_engine=InnoDB"
        )

    def stop(self) -> None:
        """Shut down, then remove the files."""
        self.process.stop(timeout=30.0)
        shutil.rmtree(self.directory, ignore_errors=True)
