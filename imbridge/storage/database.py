"""One database on SQLite or PostgreSQL (SQLAlchemy Core 2), with write transactions that are race-free
across threads, processes and hosts, and every driver error turned into an imbridge error.

How writers are kept apart, and why:

* **SQLite** (one process or one host): every write transaction starts with ``BEGIN IMMEDIATE``, which
  takes the database's single writer lock up front, so a read-then-write inside it (the next seq, a dedupe
  lookup) cannot interleave with another writer; waiting writers queue on a 30 s busy timeout rather than
  fail. The file runs in WAL mode so readers never wait for the writer. Switching a fresh file to WAL can
  answer "database is locked" without consulting the busy timeout while another process is doing the
  same; that switch is retried (with jitter, up to the same 30 s) instead of failing the open. In a
  process, one connection serves every thread under a lock (``:memory:`` has to be one connection anyway).
* **PostgreSQL** (several instances on several hosts): ordinary ``READ COMMITTED`` transactions from a
  connection pool; each operation that reads before it writes locks what it depends on first, with an
  ``INSERT … ON CONFLICT … DO UPDATE … RETURNING`` on a row that also exists to be locked (the
  per-conversation counter that allocates seqs), ``ON CONFLICT DO NOTHING`` for first-writer-wins inserts
  (users, members, a group id, a revocation), or a single conditional ``UPDATE``/``DELETE`` whose row
  count is the answer. Row locks, not advisory locks or ``SERIALIZABLE``: they wait instead of failing,
  so no operation needs a retry loop, and they lock only the conversation or group concerned. Rows
  several of them lock are locked in one order (sorted ids), so two transactions cannot deadlock.
  Schema creation and upgrades take a transaction-scoped advisory lock, since there is no row to lock yet.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, func, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.schema import Table

from imbridge.errors import ConfigurationError, IMBridgeError, ServiceUnavailableError
from imbridge.storage._url import MEMORY, StoreURL, parse_store_url
from imbridge.storage.schema import META, Schema, meta_table

__all__ = ["Database", "Prepared", "SQLiteWriter"]

#: Seconds a SQLite writer waits for the lock (and an open retries the switch to WAL) before giving up.
SQLITE_BUSY_SECONDS = 30.0
#: The advisory lock key PostgreSQL schema changes are serialized on (any constant; "imbridge" in ASCII).
_SCHEMA_LOCK_KEY = 0x696D627269646765
#: SQLSTATE classes that mean the settings are wrong, not that the server is down: 28 invalid
#: authorization, 3D no such database, 42501 insufficient privilege.
_CONFIGURATION_STATES = ("28", "3D", "42501")
#: The same when the server refuses a connection (FATAL, and libpq reports no SQLSTATE then).
_CONFIGURATION_MESSAGES = ("authentication failed", "no pg_hba.conf entry", "does not exist")
#: An INSERT's row count says whether ON CONFLICT DO NOTHING inserted (SQLAlchemy keeps it only when asked).
_OPTIONS = {"preserve_rowcount": True}


class Database:
    """An open database. ``write()`` and ``read()`` lend a connection; use them for one short operation."""

    def __init__(self, url: str) -> None:
        self.location: StoreURL = parse_store_url(url)
        self.backend = self.location.backend
        self._lock = threading.RLock()
        self._held: Connection | None = None
        try:
            self.engine: Engine = self._create_engine()
            if self.backend == "sqlite":
                self._held = self.engine.connect()
        except IMBridgeError:
            raise
        except (SQLAlchemyError, sqlite3.Error, OSError) as error:
            raise ConfigurationError(f"cannot open store {self.shown!r}: {_reason(error)}") from None

    @property
    def shown(self) -> str:
        """The URL with any password masked."""
        return self.location.shown

    def _create_engine(self) -> Engine:
        if self.backend == "sqlite":
            path = self.location.path or MEMORY
            return create_engine(
                "sqlite://", creator=lambda: _connect_sqlite(path), poolclass=StaticPool, isolation_level="AUTOCOMMIT",
                execution_options=_OPTIONS,
            )  # fmt: skip
        try:
            import psycopg  # noqa: F401  (only to say which package is missing)
        except ImportError:
            raise ConfigurationError(
                f"store {self.shown!r} is PostgreSQL, which needs the psycopg driver: "
                "pip install 'imbridge-client[postgres]'"
            ) from None
        # pre_ping: a pooled connection that a server restart or a failover broke is replaced, not used.
        return create_engine(
            self.location.url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 10},
            execution_options=_OPTIONS,
        )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            if self._held is not None:
                self._held.close()
                self._held = None
            self.engine.dispose()

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed at the end of the block, rolled back if it raises."""
        try:
            if self._held is None:
                with self.engine.begin() as connection:
                    yield connection
                return
            with self._lock:
                connection = self._held
                # On the driver's connection: SQLAlchemy does not track these (the engine is in autocommit
                # mode), and going round it saves two statements' worth of its overhead per write.
                driver = connection.connection.driver_connection
                assert isinstance(driver, sqlite3.Connection)
                driver.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    if driver.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
                        driver.execute("ROLLBACK")
                    raise
                driver.execute("COMMIT")
        except (SQLAlchemyError, sqlite3.Error) as error:
            raise self._error(error) from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (each statement sees what was committed when it started)."""
        try:
            if self._held is None:
                with self.engine.connect() as connection:
                    yield connection
                return
            with self._lock:
                yield self._held
        except (SQLAlchemyError, sqlite3.Error) as error:
            raise self._error(error) from None

    @contextmanager
    def sqlite_write(self) -> Iterator[SQLiteWriter]:
        """SQLite only: a write transaction on the driver's connection, for code written in SQLite's own SQL
        (the emulators' tables). Rows read as :class:`sqlite3.Row`."""
        if self.backend != "sqlite":
            raise ConfigurationError(f"this needs a SQLite store, not {self.shown!r}")
        with self.write() as connection:
            driver = connection.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            try:
                yield SQLiteWriter(driver)
            except sqlite3.Error as error:
                raise self._error(error) from None

    def prepare(self, statement: Executable) -> Prepared:
        """``statement`` (built once, with bind parameters) ready to run many times; see :class:`Prepared`."""
        return Prepared(statement, self.engine.dialect if self.backend == "sqlite" else None)

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_nothing``/``on_conflict_do_update``) into ``table``."""
        return (pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert)(table)

    def _error(self, error: BaseException) -> IMBridgeError:
        reason = _reason(error)
        state = getattr(getattr(error, "orig", error), "sqlstate", None) or ""
        refused = "FATAL" in reason and any(text in reason for text in _CONFIGURATION_MESSAGES)
        if state.startswith(_CONFIGURATION_STATES) or refused:
            return ConfigurationError(f"store {self.shown!r} refused imbridge's settings: {reason}")
        return ServiceUnavailableError(f"store {self.shown!r} failed: {reason}", native_code=state or None)

    # -- schemas --------------------------------------------------------------------------------

    def ensure(self, schema: Schema) -> int:
        """Create ``schema`` in an empty database or upgrade an older one in place; return the version
        found before (0 when it was created). A newer version than this code knows is refused."""
        if self._version(schema) == schema.version:
            return schema.version
        with self.write() as connection:
            if self.backend == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            META.create_all(connection)
            found = _read_version(connection, schema)
            if found is None:
                schema.metadata.create_all(connection)
            elif found > schema.version:
                raise ConfigurationError(
                    f"store {self.shown!r} has {schema.name} schema version {found}, newer than this imbridge "
                    f"knows ({schema.version}): upgrade imbridge"
                )
            else:
                for version in range(found, schema.version):
                    step = schema.upgrades.get(version)
                    if step is None:
                        raise ConfigurationError(
                            f"store {self.shown!r}: no upgrade of the {schema.name} schema from version {version}"
                        )
                    step(connection)
            connection.execute(
                self.insert(meta_table)
                .values(key=schema.version_key, value=str(schema.version))
                .on_conflict_do_update(index_elements=["key"], set_={"value": str(schema.version)})
            )
        return found or 0

    def _version(self, schema: Schema) -> int | None:
        """The schema's version without taking the writer lock; None if it is not there (yet)."""
        try:
            with self.read() as connection:
                return _read_version(connection, schema)
        except ServiceUnavailableError:
            return None  # no meta table yet: the locked path creates it


class Prepared:
    """A statement compiled once. On SQLite it then runs on the driver's cursor with the compiled SQL and
    parameter order: SQLAlchemy's per-execution work (cache key, execution context, result wrapper) cost
    several times SQLite's own time for the store's small statements (measured: an append 3x, a member
    lookup 5x), and the store's column types need no conversion on SQLite. On PostgreSQL it runs through
    SQLAlchemy as usual (the network round trip dominates there). Rows are named tuples either way."""

    def __init__(self, statement: Executable, sqlite: Dialect | None) -> None:
        self.statement = statement
        self._sql: str | None = None
        self._make_row: Callable[[Iterable[Any]], Any] | None = None
        if sqlite is not None:
            compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=sqlite))
            if compiled.positiontup is not None and not compiled.literal_execute_params:
                self._sql = compiled.string
                self._names = list(compiled.positiontup)
                self._defaults = {name: bind.effective_value for name, bind in compiled.binds.items()}

    def rows(self, connection: Connection, parameters: Mapping[str, Any]) -> list[Any]:
        if self._sql is None:
            return list(connection.execute(self.statement, dict(parameters)).all())
        cursor = self._cursor(connection, parameters)
        if cursor.description is None:
            return []
        if self._make_row is None:
            self._make_row = namedtuple("Row", [column[0] for column in cursor.description])._make  # type: ignore[attr-defined]
        make = self._make_row
        return [make(row) for row in cursor.fetchall()]

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        rows = self.rows(connection, parameters)
        return rows[0] if rows else None

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> int:
        """Execute a statement that returns no rows; its row count."""
        if self._sql is None:
            return int(connection.execute(self.statement, dict(parameters)).rowcount)
        return int(self._cursor(connection, parameters).rowcount)

    def _cursor(self, connection: Connection, parameters: Mapping[str, Any]) -> sqlite3.Cursor:
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection) and self._sql is not None
        defaults = self._defaults
        return driver.execute(
            self._sql, [parameters[name] if name in parameters else defaults[name] for name in self._names]
        )


class SQLiteWriter:
    """A SQLite connection whose ``execute`` returns cursors of :class:`sqlite3.Row`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        cursor = self._connection.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> sqlite3.Cursor:
        cursor = self._connection.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.executemany(sql, parameters)


def _read_version(connection: Connection, schema: Schema) -> int | None:
    value = connection.execute(
        select(meta_table.c.value).where(meta_table.c.key == schema.version_key)
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def _connect_sqlite(path: str) -> sqlite3.Connection:
    if path != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; Database.write() issues BEGIN IMMEDIATE itself.
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")
    if path != MEMORY:
        _switch_to_wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the lock it needs: SQLite answers
    SQLITE_BUSY at once there instead of waiting (issue 13: 2 of 160 simultaneous opens failed)."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    pause = 0.002
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                raise
        time.sleep(pause * random.uniform(0.5, 1.5))  # jitter: the processes that collided do not collide again
        pause = min(pause * 2, 0.1)


def _reason(error: BaseException) -> str:
    """The driver's own message: never SQLAlchemy's, which quotes the statement and its parameters (user data)."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
