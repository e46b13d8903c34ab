"""SQLite storage for everything imbridge keeps itself.

The ``local`` provider keeps all its data here; the WuKongIM provider keeps here what WuKongIM does
not (profiles, group names, owners and roles, timed mutes, revocations); the emulators keep their
state here. One file may be shared by several processes: WAL journal, a busy timeout, and
``BEGIN IMMEDIATE`` around every write so sequence numbers are allocated without races.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imbridge.errors import ConfigurationError, ServiceUnavailableError
from imbridge.models import Gender, Profile
from imbridge.providers.base import ProfileUpdate

SCHEMA_VERSION = 1

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS read_positions (
    user_id TEXT NOT NULL, conversation TEXT NOT NULL, read_seq INTEGER NOT NULL DEFAULT 0,
    hidden_seq INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user_id, conversation)
);
"""


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: str
    name: str
    owner: str | None
    introduction: str
    notification: str
    face_url: str
    mute_all: bool
    created_at: float
    member_count: int


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: str
    role: str
    joined_at: float
    muted_until: float | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    conversation: str
    seq: int
    key: str
    sender: str
    elements: list[dict[str, Any]]
    metadata: dict[str, Any]
    time: float
    dedupe: str | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store with :meth:`Store.append_messages` (its seq is assigned on insert)."""

    conversation: str
    key: str
    sender: str
    elements: list[dict[str, Any]]
    time: float
    metadata: dict[str, Any] = field(default_factory=dict)
    dedupe: str | None = None
    revoked: bool = False


#: Profile fields are stored one row per field; app-defined keys under this prefix.
CUSTOM_PREFIX = "custom:"
_STANDARD_PROFILE_FIELDS = ("nickname", "avatar_url", "gender", "signature")


def profile_fields(update: ProfileUpdate) -> dict[str, str]:
    """The store's rows for a profile update (fields left None are not written)."""
    fields = {
        name: value.value if isinstance(value, Gender) else value
        for name in _STANDARD_PROFILE_FIELDS
        if (value := getattr(update, name)) is not None
    }
    fields.update({CUSTOM_PREFIX + key: value for key, value in update.custom.items()})
    return fields


def profile_from_fields(user_id: str, fields: dict[str, str], *, provider: str, raw: dict[str, Any]) -> Profile:
    """The normalized profile of a user from the store's rows."""
    gender = fields.get("gender")
    return Profile(
        user_id=user_id,
        nickname=fields.get("nickname"),
        avatar_url=fields.get("avatar_url"),
        gender=Gender(gender) if gender else None,
        signature=fields.get("signature"),
        custom={k[len(CUSTOM_PREFIX) :]: v for k, v in fields.items() if k.startswith(CUSTOM_PREFIX)},
        provider=provider,
        raw=raw,
    )


def database_path(url: str) -> str:
    """``sqlite:///path``, ``sqlite:///:memory:``, a bare path or ``:memory:`` -> what sqlite3 opens."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :] or ":memory:"
    if "://" in url:
        raise ConfigurationError(f"unsupported store URL {url!r}: only sqlite:/// URLs and file paths are supported")
    return url


def conversation_key(kind: str, a: str, b: str | None = None) -> str:
    """The storage key of a conversation: one key for both sides of a one-to-one chat."""
    if kind == "group":
        return f"g:{a}"
    low, high = sorted((a, b or ""))
    return f"u:{low}|{high}"


class Store:
    """Thread-safe access to one SQLite database."""

    def __init__(self, url: str = ":memory:") -> None:
        self.path = database_path(url)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 30000")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        with self.write() as db:
            # executescript() would commit on its own; run the statements inside this transaction.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with BEGIN IMMEDIATE, so concurrent writers queue instead of failing."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # still locked after the busy timeout
                raise ServiceUnavailableError(f"database {self.path!r} is busy: {exc}") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- meta ---------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta_setdefault(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is there; return the stored one."""
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return str(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()["value"])

    # -- users and profiles -------------------------------------------------------------------

    def add_users(self, user_ids: Iterable[str], now: float) -> dict[str, bool]:
        """Register users; the value says whether each was new."""
        created: dict[str, bool] = {}
        with self.write() as db:
            for user_id in user_ids:
                cursor = db.execute("INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, now))
                created[user_id] = cursor.rowcount == 1
        return created

    def existing_users(self, user_ids: Iterable[str]) -> set[str]:
        ids = list(user_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row["id"] for row in self._read(f"SELECT id FROM users WHERE id IN ({marks})", chunk))
        return found

    def profile(self, user_id: str) -> dict[str, str]:
        rows = self._read("SELECT field, value FROM profiles WHERE user_id = ?", (user_id,))
        return {row["field"]: row["value"] for row in rows}

    def set_profile_fields(self, user_id: str, fields: dict[str, str]) -> None:
        self.set_profiles({user_id: fields})

    def set_profiles(self, profiles: Mapping[str, Mapping[str, str]]) -> None:
        """Set profile fields of many users in one transaction (other fields are kept)."""
        with self.write() as db:
            db.executemany(
                "INSERT INTO profiles (user_id, field, value) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
                [(user_id, name, value) for user_id, fields in profiles.items() for name, value in fields.items()],
            )

    # -- groups -------------------------------------------------------------------------------

    def group(self, group_id: str) -> GroupRow | None:
        rows = self._read(
            "SELECT g.*, (SELECT COUNT(*) FROM members m WHERE m.group_id = g.id) AS member_count "
            "FROM groups g WHERE g.id = ? AND g.dismissed_at IS NULL",
            (group_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return GroupRow(
            id=row["id"], name=row["name"], owner=row["owner"], introduction=row["introduction"],
            notification=row["notification"], face_url=row["face_url"], mute_all=bool(row["mute_all"]),
            created_at=row["created_at"], member_count=row["member_count"],
        )  # fmt: skip

    def group_ids(self) -> list[str]:
        return [
            row["id"] for row in self._read("SELECT id FROM groups WHERE dismissed_at IS NULL ORDER BY created_at, id")
        ]

    def create_group(
        self, group_id: str, *, name: str, owner: str | None, introduction: str, notification: str,
        face_url: str, now: float, members: Sequence[tuple[str, str]],
    ) -> bool:  # fmt: skip
        """Create a group with its initial members; False if a live group has that id already."""
        with self.write() as db:
            existing = db.execute("SELECT dismissed_at FROM groups WHERE id = ?", (group_id,)).fetchone()
            if existing is not None and existing["dismissed_at"] is None:
                return False
            if existing is not None:  # a dismissed group's id is free again; forget its past
                self._purge_group(db, group_id)
            db.execute(
                "INSERT INTO groups (id, name, owner, introduction, notification, face_url, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (group_id, name, owner, introduction, notification, face_url, now),
            )
            db.executemany(
                "INSERT OR REPLACE INTO members (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
                [(group_id, user_id, role, now) for user_id, role in members],
            )
        return True

    @staticmethod
    def _purge_group(db: sqlite3.Connection, group_id: str) -> None:
        for table, column in (("groups", "id"), ("members", "group_id"), ("mutes", "group_id")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (group_id,))
        db.execute("DELETE FROM messages WHERE conversation = ?", (conversation_key("group", group_id),))

    def update_group(self, group_id: str, fields: dict[str, Any]) -> bool:
        allowed = {"name", "introduction", "notification", "face_url", "mute_all", "owner"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown group fields {sorted(unknown)}")
        if not fields:
            return self.group(group_id) is not None
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.write() as db:
            cursor = db.execute(
                f"UPDATE groups SET {assignments} WHERE id = ? AND dismissed_at IS NULL", (*fields.values(), group_id)
            )
            return cursor.rowcount == 1

    def dismiss_group(self, group_id: str, now: float) -> bool:
        with self.write() as db:
            cursor = db.execute(
                "UPDATE groups SET dismissed_at = ? WHERE id = ? AND dismissed_at IS NULL", (now, group_id)
            )
            if cursor.rowcount == 1:
                db.execute("DELETE FROM members WHERE group_id = ?", (group_id,))
            return cursor.rowcount == 1

    # -- members and mutes --------------------------------------------------------------------

    def members(self, group_id: str, *, offset: int = 0, limit: int = -1) -> list[MemberRow]:
        rows = self._read(
            "SELECT m.user_id, m.role, m.joined_at, u.until FROM members m "
            "LEFT JOIN mutes u ON u.group_id = m.group_id AND u.user_id = m.user_id "
            "WHERE m.group_id = ? ORDER BY m.joined_at, m.user_id LIMIT ? OFFSET ?",
            (group_id, limit, offset),
        )
        return [MemberRow(row["user_id"], row["role"], row["joined_at"], row["until"]) for row in rows]

    def member(self, group_id: str, user_id: str) -> MemberRow | None:
        rows = self._read(
            "SELECT m.user_id, m.role, m.joined_at, u.until FROM members m "
            "LEFT JOIN mutes u ON u.group_id = m.group_id AND u.user_id = m.user_id "
            "WHERE m.group_id = ? AND m.user_id = ?",
            (group_id, user_id),
        )
        return MemberRow(rows[0]["user_id"], rows[0]["role"], rows[0]["joined_at"], rows[0]["until"]) if rows else None

    def groups_of(self, user_id: str) -> list[str]:
        """Ids of the live groups ``user_id`` is a member of."""
        rows = self._read(
            "SELECT m.group_id FROM members m JOIN groups g ON g.id = m.group_id "
            "WHERE m.user_id = ? AND g.dismissed_at IS NULL ORDER BY m.group_id",
            (user_id,),
        )
        return [row["group_id"] for row in rows]

    def add_members(self, group_id: str, members: Sequence[tuple[str, str]], now: float) -> dict[str, bool]:
        """Add members; the value says whether each was new (an existing member keeps its role)."""
        added: dict[str, bool] = {}
        with self.write() as db:
            for user_id, role in members:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO members (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
                    (group_id, user_id, role, now),
                )
                added[user_id] = cursor.rowcount == 1
        return added

    def set_role(self, group_id: str, user_id: str, role: str) -> bool:
        with self.write() as db:
            cursor = db.execute(
                "UPDATE members SET role = ? WHERE group_id = ? AND user_id = ?", (role, group_id, user_id)
            )
            return cursor.rowcount == 1

    def remove_members(self, group_id: str, user_ids: Iterable[str]) -> dict[str, bool]:
        """Remove members; the value says whether each was a member."""
        removed: dict[str, bool] = {}
        with self.write() as db:
            for user_id in user_ids:
                cursor = db.execute("DELETE FROM members WHERE group_id = ? AND user_id = ?", (group_id, user_id))
                removed[user_id] = cursor.rowcount == 1
        return removed

    def set_mutes(self, group_id: str, user_ids: Iterable[str], until: float | None) -> None:
        """Mute until ``until`` (epoch seconds), or lift the mute when it is None."""
        with self.write() as db:
            for user_id in user_ids:
                if until is None:
                    db.execute("DELETE FROM mutes WHERE group_id = ? AND user_id = ?", (group_id, user_id))
                else:
                    db.execute(
                        "INSERT INTO mutes (group_id, user_id, until) VALUES (?, ?, ?) "
                        "ON CONFLICT (group_id, user_id) DO UPDATE SET until = excluded.until",
                        (group_id, user_id, until),
                    )

    def mutes(self, group_id: str, now: float) -> dict[str, float]:
        """Mutes still in force at ``now``; expired ones are dropped as a side effect."""
        with self.write() as db:
            db.execute("DELETE FROM mutes WHERE group_id = ? AND until <= ?", (group_id, now))
            rows = db.execute("SELECT user_id, until FROM mutes WHERE group_id = ? ORDER BY user_id", (group_id,))
            return {row["user_id"]: row["until"] for row in rows}

    # -- messages -----------------------------------------------------------------------------

    def append_message(
        self, conversation: str, *, key: str, sender: str, elements: list[dict[str, Any]],
        metadata: dict[str, Any], time: float, dedupe: str | None, dedupe_window: float | None = None,
    ) -> tuple[MessageRow, bool]:  # fmt: skip
        """Store a message at the conversation's next seq. With a ``dedupe`` key already stored in the
        conversation, nothing is written and the stored message is returned; the flag says 'new'.

        With ``dedupe_window`` (seconds) a key only holds that long, as servers that dedupe within a
        window do: a stored message older than ``time - dedupe_window`` releases its key and the new
        message is stored."""
        with self.write() as db:
            if dedupe is not None:
                row = db.execute(
                    "SELECT * FROM messages WHERE conversation = ? AND dedupe = ?", (conversation, dedupe)
                ).fetchone()
                if row is not None and (dedupe_window is None or row["time"] >= time - dedupe_window):
                    return _message_row(row), False
                if row is not None:
                    db.execute(
                        "UPDATE messages SET dedupe = NULL WHERE conversation = ? AND seq = ?",
                        (conversation, row["seq"]),
                    )
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation = ?", (conversation,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO messages (conversation, seq, key, sender, elements, metadata, time, dedupe) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation, seq, key, sender, json.dumps(elements), json.dumps(metadata), time, dedupe),
            )
        return MessageRow(conversation, seq, key, sender, elements, metadata, time, dedupe, False), True

    def append_messages(self, messages: Iterable[NewMessage]) -> int:
        """Store many messages with the times given (an import, a seed) in one transaction. Each takes
        its conversation's next seq, in the order given; dedupe keys are stored, not checked. Returns
        how many were written."""
        next_seq: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        with self.write() as db:
            for message in messages:
                conversation = message.conversation
                if conversation not in next_seq:
                    next_seq[conversation] = db.execute(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation = ?", (conversation,)
                    ).fetchone()[0]
                seq = next_seq[conversation]
                next_seq[conversation] = seq + 1
                rows.append((
                    conversation, seq, message.key, message.sender,
                    "[]" if message.revoked else json.dumps(message.elements), json.dumps(message.metadata),
                    message.time, message.dedupe, int(message.revoked),
                ))  # fmt: skip
            db.executemany(
                "INSERT INTO messages (conversation, seq, key, sender, elements, metadata, time, dedupe, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def conversations(self, prefix: str = "") -> dict[str, float]:
        """Conversation keys starting with ``prefix`` and the time of each one's newest message."""
        rows = self._read(
            "SELECT conversation, MAX(time) AS newest FROM messages WHERE substr(conversation, 1, ?) = ? "
            "GROUP BY conversation",
            (len(prefix), prefix),
        )
        return {row["conversation"]: row["newest"] for row in rows}

    def message_by_key(self, key: str) -> MessageRow | None:
        rows = self._read("SELECT * FROM messages WHERE key = ?", (key,))
        return _message_row(rows[0]) if rows else None

    def messages(
        self,
        conversation: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        descending: bool = True,
    ) -> list[MessageRow]:
        """Messages of a conversation with seq strictly between ``after`` and ``before``."""
        order = "DESC" if descending else "ASC"
        rows = self._read(
            f"SELECT * FROM messages WHERE conversation = ? AND seq < ? AND seq > ? ORDER BY seq {order} LIMIT ?",
            (conversation, before if before is not None else 2**62, after if after is not None else 0, limit),
        )
        return [_message_row(row) for row in rows]

    def revoke_message(self, key: str) -> bool | None:
        """Mark a message revoked and drop its content. None: no such message; False: already revoked."""
        with self.write() as db:
            row = db.execute("SELECT revoked FROM messages WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row["revoked"]:
                return False
            db.execute("UPDATE messages SET revoked = 1, elements = '[]' WHERE key = ?", (key,))
            return True

    # -- read positions (conversation lists, unread counts) ----------------------------------

    def read_position(self, user_id: str, conversation: str) -> tuple[int, int]:
        """(read up to this seq, hidden from the list up to this seq) of ``user_id`` in a conversation."""
        rows = self._read(
            "SELECT read_seq, hidden_seq FROM read_positions WHERE user_id = ? AND conversation = ?",
            (user_id, conversation),
        )
        return (int(rows[0]["read_seq"]), int(rows[0]["hidden_seq"])) if rows else (0, 0)

    def set_read_position(
        self, user_id: str, conversation: str, *, read_seq: int | None = None, hidden_seq: int | None = None
    ) -> None:
        """Set either position (None keeps it)."""
        with self.write() as db:
            db.execute(
                "INSERT INTO read_positions (user_id, conversation, read_seq, hidden_seq) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, conversation) DO UPDATE SET "
                "read_seq = COALESCE(?, read_seq), hidden_seq = COALESCE(?, hidden_seq)",
                (user_id, conversation, read_seq or 0, hidden_seq or 0, read_seq, hidden_seq),
            )

    def user_chats(self, user_id: str) -> list[str]:
        """Keys of the one-to-one conversations ``user_id`` has a message in."""
        rows = self._read(
            "SELECT DISTINCT conversation FROM messages WHERE substr(conversation, 1, 2) = 'u:' AND "
            "(substr(conversation, 3, ?) = ? OR substr(conversation, -?) = ?)",
            (len(user_id) + 1, user_id + "|", len(user_id) + 1, "|" + user_id),
        )
        keys = []
        for row in rows:
            low, _, high = str(row["conversation"])[2:].partition("|")
            if user_id in (low, high):
                keys.append(str(row["conversation"]))
        return keys

    def seqs_after(self, conversation: str, after_seq: int, *, not_from: str) -> list[int]:
        """Seqs of the messages after ``after_seq`` not sent by ``not_from``, newest first."""
        rows = self._read(
            "SELECT seq FROM messages WHERE conversation = ? AND seq > ? AND sender != ? ORDER BY seq DESC",
            (conversation, after_seq, not_from),
        )
        return [int(row["seq"]) for row in rows]

    def last_seq(self, conversation: str, *, sender: str | None = None, before_time: float | None = None) -> int:
        """The newest seq of a conversation (0 when empty), of ``sender``'s messages, or stored before a time."""
        sql = "SELECT MAX(seq) FROM messages WHERE conversation = ?"
        params: list[Any] = [conversation]
        if sender is not None:
            sql, params = sql + " AND sender = ?", [*params, sender]
        if before_time is not None:
            sql, params = sql + " AND time < ?", [*params, before_time]
        rows = self._read(sql, params)
        return int(rows[0][0] or 0)

    # -- revocation records (for providers whose server cannot revoke) ------------------------

    def record_revocation(self, scope: str, key: str, now: float) -> bool:
        with self.write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO revocations (scope, key, revoked_at) VALUES (?, ?, ?)", (scope, key, now)
            )
            return cursor.rowcount == 1

    def revoked_keys(self, scope: str, keys: Iterable[str]) -> set[str]:
        ids = list(keys)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = self._read(f"SELECT key FROM revocations WHERE scope = ? AND key IN ({marks})", (scope, *ids))
        return {row["key"] for row in rows}


def _message_row(row: sqlite3.Row) -> MessageRow:
    return MessageRow(
        conversation=row["conversation"], seq=row["seq"], key=row["key"], sender=row["sender"],
        elements=json.loads(row["elements"]), metadata=json.loads(row["metadata"]), time=row["time"],
        dedupe=row["dedupe"], revoked=bool(row["revoked"]),
    )  # fmt: skip
