"""A throwaway PostgreSQL cluster for tests: ``initdb`` in a temporary directory, listening on 127.0.0.1 only
(on a free port; its unix socket in the same directory), a password of its own, stopped and deleted at
the end. Nothing is mocked: the store tests and the contract suite's ``local@postgres`` run use it.

The pytest fixture ``imbridge_postgres`` (in :mod:`imbridge.testing.plugin`) gives a test session one
cluster; ``fresh_database()`` makes a database per test. Which server:

* ``IMBRIDGE_TEST_POSTGRES_URL=postgresql://user:password@host:port/db``: a server of your own (the user
  needs CREATEDB; databases named ``imbridge_test_*`` are created and dropped there);
* otherwise the binaries of a local PostgreSQL (``IMBRIDGE_POSTGRES_BIN``, else ``pg_config --bindir``,
  else the newest ``/usr/lib/postgresql/*/bin``, else ``initdb`` on ``PATH``). As root, the cluster runs as
  ``nobody``, since ``initdb`` refuses root;
* ``IMBRIDGE_TEST_POSTGRES=0`` skips the PostgreSQL tests, saying so. Without any of these they fail with
  the line that installs PostgreSQL: they are never skipped silently.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

__all__ = ["OPT_OUT", "PostgresCluster", "PostgresUnavailable", "find_bindir", "postgres_server"]

#: The variable (set to 0) that lets a developer without PostgreSQL skip its tests on purpose.
OPT_OUT = "IMBRIDGE_TEST_POSTGRES"
INSTALL_HINT = (
    "PostgreSQL is needed for the store tests on PostgreSQL: install it (Debian: apt-get install postgresql-15), "
    f"point IMBRIDGE_POSTGRES_BIN at its bin directory, set IMBRIDGE_TEST_POSTGRES_URL to a server of yours, "
    f"or opt out with {OPT_OUT}=0"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL to test against; the message says how to get one."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    if configured := os.environ.get("IMBRIDGE_POSTGRES_BIN"):  # named explicitly: no looking elsewhere
        named = Path(configured)
        return named if (named / "initdb").is_file() and (named / "pg_ctl").is_file() else None
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        candidates.append(Path(found))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).resolve().parent)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A cluster of our own; ``start()`` it, ``url(database)`` to reach a database, ``stop()`` deletes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_hex(12)
        self.port = 0
        self.directory = Path(tempfile.mkdtemp(prefix="imbridge-pg-"))
        self._run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as an unprivileged user
            shutil.chown(self.directory, user="nobody")
            self._run_as = ["runuser", "-u", "nobody", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._run_as, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(command[:1])} failed ({result.returncode}): {result.stderr}{tail}")

    def start(self) -> None:
        secret = self.directory / "password"
        secret.write_text(self.password + "\n")
        if self._run_as:
            shutil.chown(secret, user="nobody")
        data = self.directory / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                  f"--pwfile={secret}", "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        secret.unlink()
        for attempt in range(3):  # the free port may be taken between finding it and binding it
            self.port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.directory / "server.log"),
                          "-w", "-t", "60", "-o", options, "start")  # fmt: skip
                return
            except PostgresUnavailable:
                if attempt == 2:
                    raise

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{quote(self.password)}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if self.port:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer:
    """Where test databases are made: a throwaway cluster, or a server named by IMBRIDGE_TEST_POSTGRES_URL."""

    def __init__(self, admin_url: str, cluster: PostgresCluster | None = None) -> None:
        self.admin_url = admin_url
        self.cluster = cluster
        self._made: list[str] = []

    def fresh_database(self) -> str:
        """A new, empty database; its URL (with the password)."""
        import psycopg
        from psycopg import sql

        name = f"imbridge_test_{secrets.token_hex(5)}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._made.append(name)
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as connection:
            for name in self._made:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _libpq(url: str) -> str:
    """libpq takes postgresql:// but not SQLAlchemy's postgresql+psycopg://."""
    return "postgresql://" + url.split("://", 1)[1]


def postgres_server() -> PostgresServer:
    """The server the tests use (see the module docstring); raises PostgresUnavailable with the remedy."""
    if url := os.environ.get("IMBRIDGE_TEST_POSTGRES_URL"):
        return PostgresServer(url)
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"no PostgreSQL binaries found. {INSTALL_HINT}")
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return PostgresServer(cluster.url(), cluster)
