"""The migration's state database (SQLite): plan, per-item progress, id map, checkpoints, mirror journal.

One file, given by the user, owned by one process at a time. Every phase records what it finished here, so
a run killed at any moment resumes where it stopped. WAL with ``synchronous=NORMAL``: a commit survives
the process being killed (only a power cut can lose the last few, and those are looked up before any
re-send anyway).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from imbridge.errors import ConfigurationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    phase TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    data TEXT NOT NULL DEFAULT '{}', detail TEXT NOT NULL DEFAULT '', updated REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (phase, key)
);
CREATE INDEX IF NOT EXISTS items_status ON items (phase, status);
CREATE TABLE IF NOT EXISTS idmap (
    kind TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (kind, source)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    channel TEXT PRIMARY KEY, position TEXT NOT NULL, migrated INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, resource TEXT NOT NULL, method TEXT NOT NULL,
    args TEXT NOT NULL, error TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''
);
"""

PENDING, DONE, FAILED, SKIPPED = "pending", "done", "failed", "skipped"
#: Collisions listed in full in the error (the rest are counted).
MAX_COLLISIONS_LISTED = 50


class IdCollisionError(ConfigurationError):
    """Two source ids would share one target id: nothing is written until this is resolved."""

    def __init__(self, kind: str, collisions: dict[str, list[str]]) -> None:
        self.kind, self.collisions = kind, collisions
        listed = "; ".join(
            f"{target!r} <- {', '.join(map(repr, sources))}"
            for target, sources in list(collisions.items())[:MAX_COLLISIONS_LISTED]
        )
        more = len(collisions) - MAX_COLLISIONS_LISTED
        super().__init__(
            f"{len(collisions)} target {kind} ids would be shared by different source ids (the state file maps "
            f"them so from an earlier imbridge version): {listed}" + (f"; and {more} more" if more > 0 else "")
        )


@dataclass(frozen=True, slots=True)
class Item:
    phase: str
    key: str
    status: str
    data: dict[str, Any]
    detail: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: dict[str, Any]
    migrated: int
    skipped: int


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    created: float
    resource: str
    method: str
    args: Any
    """The journaled call as stored (JSON), or None when the stored text cannot be read at all."""
    error: str
    status: str
    attempts: int
    last_error: str = ""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None  # one unreadable entry must not hide the others: replay marks it failed


class StateDB:
    """The state file. Not thread-safe: one migration (one event loop) or one mirror client uses it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, ensure_ascii=False)),
        )

    # -- items ------------------------------------------------------------------------------------

    def add_items(
        self, phase: str, entries: Iterable[tuple[str, dict[str, Any]]], *, own_transaction: bool = True
    ) -> int:
        """Add items not yet planned (a re-plan keeps the progress of those already there); refresh the
        data of pending ones. Returns how many are new. ``own_transaction=False`` inside a caller's."""
        before = self.count(phase)
        with self.transaction() if own_transaction else contextlib.nullcontext():
            for key, data in entries:
                self._db.execute(
                    "INSERT INTO items (phase, key, data, updated) VALUES (?, ?, ?, ?) ON CONFLICT (phase, key) "
                    "DO UPDATE SET data = excluded.data WHERE items.status = 'pending'",
                    (phase, key, json.dumps(data, ensure_ascii=False), time.time()),
                )
        return self.count(phase) - before

    def delete_items(self, phase: str) -> None:
        self._db.execute("DELETE FROM items WHERE phase = ?", (phase,))

    def items(self, phase: str, status: str | None = None) -> list[Item]:
        sql = "SELECT * FROM items WHERE phase = ?" + (" AND status = ?" if status else "") + " ORDER BY rowid"
        rows = self._db.execute(sql, (phase, status) if status else (phase,)).fetchall()
        return [Item(r["phase"], r["key"], r["status"], json.loads(r["data"]), r["detail"]) for r in rows]

    def item(self, phase: str, key: str) -> Item | None:
        r = self._db.execute("SELECT * FROM items WHERE phase = ? AND key = ?", (phase, key)).fetchone()
        return Item(r["phase"], r["key"], r["status"], json.loads(r["data"]), r["detail"]) if r else None

    def keys(self, phase: str, status: str | None = None) -> list[str]:
        sql = "SELECT key FROM items WHERE phase = ?" + (" AND status = ?" if status else "") + " ORDER BY rowid"
        return [r["key"] for r in self._db.execute(sql, (phase, status) if status else (phase,))]

    def set_status(self, phase: str, key: str, status: str, detail: str = "") -> None:
        self._db.execute(
            "UPDATE items SET status = ?, detail = ?, updated = ? WHERE phase = ? AND key = ?",
            (status, detail, time.time(), phase, key),
        )

    def set_many(self, phase: str, keys: Iterable[str], status: str, detail: str = "") -> None:
        with self.transaction():
            for key in keys:
                self.set_status(phase, key, status, detail)

    def count(self, phase: str, status: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM items WHERE phase = ?" + (" AND status = ?" if status else "")
        return int(self._db.execute(sql, (phase, status) if status else (phase,)).fetchone()[0])

    def counts(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for row in self._db.execute("SELECT phase, status, COUNT(*) AS n FROM items GROUP BY phase, status"):
            result.setdefault(row["phase"], {})[row["status"]] = int(row["n"])
        return result

    def reset_failed(self, phase: str) -> None:
        self._db.execute("UPDATE items SET status = 'pending' WHERE phase = ? AND status = 'failed'", (phase,))

    def finish_item(self, phase: str, key: str, data: dict[str, Any], status: str = DONE) -> None:
        """Set an item's status and replace its data in one write."""
        self._db.execute(
            "UPDATE items SET status = ?, data = ?, detail = '', updated = ? WHERE phase = ? AND key = ?",
            (status, json.dumps(data, ensure_ascii=False), time.time(), phase, key),
        )

    def requeue(self, phase: str, keys: Iterable[str], detail: str) -> int:
        """Put items back to pending whatever their status (a repair); returns how many exist."""
        count = 0
        with self.transaction():
            for key in keys:
                cursor = self._db.execute(
                    "UPDATE items SET status = 'pending', detail = ?, updated = ? WHERE phase = ? AND key = ?",
                    (detail, time.time(), phase, key),
                )
                count += cursor.rowcount
        return count

    # -- id map -----------------------------------------------------------------------------------

    def map_ids(self, kind: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Record source -> target ids; raises :class:`IdCollisionError` (writing nothing) when one of these
        target ids would be shared by two source ids, with the ones already recorded or among ``pairs``."""
        fresh = list(pairs)
        if not fresh:
            return
        targets = {target for _, target in fresh}
        collisions = {t: s for t, s in self.collisions(kind, fresh).items() if t in targets}
        if collisions:
            raise IdCollisionError(kind, collisions)
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO idmap (kind, source, target) VALUES (?, ?, ?)", [(kind, s, t) for s, t in fresh]
            )

    def mapped_one(self, kind: str, source: str) -> str | None:
        row = self._db.execute("SELECT target FROM idmap WHERE kind = ? AND source = ?", (kind, source)).fetchone()
        return str(row["target"]) if row else None

    def collisions(self, kind: str, pairs: Iterable[tuple[str, str]] = ()) -> dict[str, list[str]]:
        """Target ids that more than one source id maps to: in the map already (an earlier version's ids
        could collide) or once ``pairs`` are added. A source already mapped keeps its recorded target."""
        mapped = self.mapped(kind)
        for source, target in pairs:
            mapped.setdefault(source, target)
        sources: dict[str, list[str]] = {}
        for source, target in mapped.items():
            sources.setdefault(target, []).append(source)
        return {target: sorted(names) for target, names in sorted(sources.items()) if len(names) > 1}

    def mapped(self, kind: str) -> dict[str, str]:
        rows = self._db.execute("SELECT source, target FROM idmap WHERE kind = ?", (kind,))
        return {r["source"]: r["target"] for r in rows}

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoint(self, channel: str) -> Checkpoint | None:
        r = self._db.execute("SELECT * FROM checkpoints WHERE channel = ?", (channel,)).fetchone()
        return Checkpoint(json.loads(r["position"]), int(r["migrated"]), int(r["skipped"])) if r else None

    def save_checkpoint(self, channel: str, position: dict[str, Any], migrated: int, skipped: int) -> None:
        self._db.execute(
            "INSERT INTO checkpoints (channel, position, migrated, skipped, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (channel) DO UPDATE SET position = excluded.position, migrated = excluded.migrated, "
            "skipped = excluded.skipped, updated = excluded.updated",
            (channel, json.dumps(position, ensure_ascii=False), migrated, skipped, time.time()),
        )

    def reset_checkpoint(self, channel: str) -> None:
        """Start a channel over from its first message (a repair): every message is looked up before it is
        sent, so only what the target lacks is copied. A group keeps the upper bound it was planned with."""
        checkpoint = self.checkpoint(channel)
        if checkpoint is None:
            return
        kept = {"last": checkpoint.position["last"]} if "last" in checkpoint.position else {}
        self.save_checkpoint(channel, kept, 0, 0)

    def processed(self) -> dict[str, int]:
        """Messages looked at (copied or skipped) per channel."""
        rows = self._db.execute("SELECT channel, migrated + skipped AS n FROM checkpoints")
        return {r["channel"]: int(r["n"]) for r in rows}

    def totals(self) -> tuple[int, int]:
        row = self._db.execute("SELECT COALESCE(SUM(migrated), 0), COALESCE(SUM(skipped), 0) FROM checkpoints")
        migrated, skipped = row.fetchone()
        return int(migrated), int(skipped)

    # -- mirror journal ---------------------------------------------------------------------------

    def journal_add(self, resource: str, method: str, args: Any, error: str, status: str = PENDING) -> int:
        """Add an entry; ``status`` FAILED keeps a call that can never be replayed (with ``error`` saying why)."""
        cursor = self._db.execute(
            "INSERT INTO journal (created, resource, method, args, error, status, last_error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), resource, method, json.dumps(args, ensure_ascii=False), error, status,
             error if status == FAILED else ""),
        )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def journal(self, status: str | None = PENDING) -> list[JournalEntry]:
        sql = "SELECT * FROM journal" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [
            JournalEntry(r["id"], r["created"], r["resource"], r["method"], _loads(r["args"]), r["error"],
                         r["status"], r["attempts"], r["last_error"])
            for r in self._db.execute(sql, (status,) if status else ())
        ]  # fmt: skip

    def journal_mark(self, entry_id: int, status: str, last_error: str = "") -> None:
        self._db.execute(
            "UPDATE journal SET status = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
            (status, last_error, entry_id),
        )

    # -- transactions -----------------------------------------------------------------------------

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def transaction(self) -> StateDB._Tx:
        return StateDB._Tx(self._db)

    def iter_rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[sqlite3.Row]:
        yield from self._db.execute(sql, params)
