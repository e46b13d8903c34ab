"""Files written by the first store (schema version 1) upgrade in place; every failure is an imbridge error."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from imbridge import Conversation, IMClient
from imbridge.errors import ConfigurationError, ServiceUnavailableError
from imbridge.providers.local.store import Store, conversation_key
from imbridge.storage import SCHEMA_VERSION, Database, parse_store_url
from imbridge.testing.postgres import PostgresServer

# The DDL of schema version 1, verbatim from imbridge/providers/local/store.py before the SQLAlchemy store
# (commit 3fc529b), plus the table the WuKongIM provider created on the fly.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
);
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT,
    introduction TEXT NOT NULL DEFAULT '', notification TEXT NOT NULL DEFAULT '',
    face_url TEXT NOT NULL DEFAULT '', mute_all INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, dismissed_at REAL
);
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL, joined_at REAL NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS mutes (
    group_id TEXT NOT NULL, user_id TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS messages (
    conversation TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL, elements TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
    time REAL NOT NULL, dedupe TEXT, revoked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_dedupe ON messages (conversation, dedupe) WHERE dedupe IS NOT NULL;
CREATE TABLE IF NOT EXISTS revocations (
    scope TEXT NOT NULL, key TEXT NOT NULL, revoked_at REAL NOT NULL, PRIMARY KEY (scope, key)
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS wukong_channel_flags (channel_id TEXT PRIMARY KEY, flags TEXT NOT NULL);
"""


def _v1_file(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(V1_SCHEMA)
        db.execute("INSERT INTO meta VALUES ('token_secret', 'kept')")
        db.executemany("INSERT INTO users VALUES (?, 1.0)", [("alice",), ("bob",)])
        db.execute("INSERT INTO groups (id, name, owner, created_at) VALUES ('g1', 'Team', 'alice', 1.0)")
        db.executemany("INSERT INTO members VALUES ('g1', ?, ?, 1.0)", [("alice", "owner"), ("bob", "member")])
        db.execute("INSERT INTO mutes VALUES ('g1', 'bob', 4e9)")
        group = conversation_key("group", "g1")
        db.executemany(
            "INSERT INTO messages (conversation, seq, key, sender, elements, time, dedupe) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(group, 1, "k1", "alice", '[{"type": "text", "text": "one"}]', 100.0, "alice d1"),
             (group, 2, "k2", "alice", '[{"type": "text", "text": "two"}]', 300.0, None),
             (conversation_key("user", "alice", "bob"), 1, "k3", "bob", "[]", 200.0, None)],
        )  # fmt: skip
        db.execute("INSERT INTO wukong_channel_flags VALUES ('g1', '{\"ban\": 0}')")


def test_a_version_1_file_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _v1_file(path)
    store = Store(str(path))
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION) == "2"
        assert store.meta("token_secret") == "kept" and store.user_ids() == ["alice", "bob"]
        group = store.group("g1")
        assert group is not None and (group.name, group.owner, group.member_count) == ("Team", "alice", 2)
        assert store.mutes("g1", 0.0) == {"bob": 4e9}
        assert store.channel_flags("g1") == '{"ban": 0}'
        conv = conversation_key("group", "g1")
        assert store.conversations() == {conv: 300.0, conversation_key("user", "alice", "bob"): 200.0}
        # The counter row made from the old messages: the next seq follows, the time does not go back,
        # and a dedupe key stored by the old code still holds.
        row, new = store.append_message(conv, key="k4", sender="alice", elements=[], metadata={}, time=150.0,
                                        dedupe=None)  # fmt: skip
        assert (row.seq, row.time, new) == (3, 300.0, True)
        again, new = store.append_message(conv, key="k5", sender="alice", elements=[], metadata={}, time=400.0,
                                          dedupe="alice d1")  # fmt: skip
        assert (again.key, new) == ("k1", False)
    finally:
        store.close()
    with sqlite3.connect(path) as db:  # a second open is a no-op
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)


def test_the_local_provider_reads_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _v1_file(path)
    with IMClient("local", database=f"sqlite:///{path}") as im:
        page = im.messages.history(Conversation.group("g1"), viewer="alice")
        assert [(m.seq, m.sender) for m in page.items] == [(2, "alice"), (1, "alice")]
        sent = im.messages.send("alice", Conversation.group("g1"), "three")
        assert sent.seq == 3 and sent.time.timestamp() >= 300.0


@pytest.mark.parametrize(
    ("url", "backend", "path"),
    [(":memory:", "sqlite", ":memory:"), ("sqlite://", "sqlite", ":memory:"),
     ("sqlite:///:memory:", "sqlite", ":memory:"), ("sqlite:///rel/x.db", "sqlite", "rel/x.db"),
     ("sqlite:////abs/x.db", "sqlite", "/abs/x.db"), ("plain.db", "sqlite", "plain.db"),
     ("postgresql://u:p@h/db", "postgresql", None), ("postgresql+psycopg://u@h:5/db", "postgresql", None),
     ("postgres://u:p@h/db", "postgresql", None)],
)  # fmt: skip
def test_urls(url: str, backend: str, path: str | None) -> None:
    parsed = parse_store_url(url)
    assert (parsed.backend, parsed.path) == (backend, path)
    assert "p@" not in parsed.shown


@pytest.mark.parametrize("url", ["", "mysql://u:secretpw@h/db", "postgresql+psycopg2://u:secretpw@h/db",
                                 "postgresql://u:secretpw@h/"])  # fmt: skip
def test_bad_urls_are_configuration_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Store(url)
    assert "secretpw" not in str(caught.value)


def test_a_path_that_cannot_be_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError):
        Store(str(tmp_path / "file" / "store.db"))
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigurationError):
        Store(str(tmp_path / "garbage.db"))


def test_postgres_down_is_service_unavailable_and_a_wrong_password_a_configuration_error(
    imbridge_postgres: PostgresServer,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(ServiceUnavailableError) as down:
        Store(f"postgresql://postgres:secretpw@127.0.0.1:{closed}/x")
    assert "secretpw" not in str(down.value) and "***" in str(down.value)
    url = imbridge_postgres.fresh_database()
    wrong = url.replace(url.split("://")[1].split("@")[0], "postgres:secretpw")
    with pytest.raises(ConfigurationError) as refused:
        Store(wrong)
    assert "secretpw" not in str(refused.value) and "password authentication failed" in str(refused.value)


def test_a_lost_postgres_connection_is_service_unavailable_then_recovers(imbridge_postgres: PostgresServer) -> None:
    import psycopg

    url = imbridge_postgres.fresh_database()
    store = Store(url)
    try:
        store.add_users(["a"], 1.0)
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(imbridge_postgres.admin_url.replace("postgresql+psycopg", "postgresql"),
                             autocommit=True) as admin:  # fmt: skip
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        # The pool's pre-ping nearly always replaces the killed connection unseen. When the kill lands during the
        # ping itself (seen once on a loaded machine: psycopg "can't change 'autocommit' now"), that one read is
        # ServiceUnavailableError, retryable; the next one gets a new connection.
        try:
            found = store.existing_users(["a"])
        except ServiceUnavailableError:
            found = store.existing_users(["a"])
        assert found == {"a"}
    finally:
        store.close()


def test_sqlite_busy_beyond_the_timeout_is_service_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imbridge.storage import database

    path = tmp_path / "busy.db"
    Store(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the writer lock
    try:
        monkeypatch.setattr(database, "SQLITE_BUSY_SECONDS", 0.2)
        store = Store(str(path))
        try:
            with pytest.raises(ServiceUnavailableError, match="locked"):
                store.add_users(["a"], 1.0)
        finally:
            store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_database_sqlite_write_is_sqlite_only(imbridge_postgres: PostgresServer) -> None:
    db = Database(imbridge_postgres.fresh_database())
    try:
        with pytest.raises(ConfigurationError, match="SQLite"), db.sqlite_write():
            pass
    finally:
        db.close()
