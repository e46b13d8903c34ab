"""The migration's state database: plan, per-item progress, id map, checkpoints, mirror journal, and the
claims that let several worker processes (on one host or several) share the work.

On :mod:`imbridge.storage` (SQLAlchemy Core): a path (or ``sqlite:///…``) is a SQLite file, as before, and
a ``postgresql://…`` URL a database several hosts share. The tables are a versioned :class:`Schema` of their
own (``meta.schema_version:migration``); a file written by an imbridge from before this layer (the same
tables, no version) is adopted in place: the missing tables are added, nothing is rewritten. Every phase
records what it finished here, so a run killed at any moment resumes where it stopped. SQLite runs in WAL
with ``synchronous=NORMAL``: a commit survives the process being killed.

**Claims** (``claims``: one row per claimed item, ``(phase, key) -> worker, run, expires``). A worker takes
pending items with one conditional upsert per item::

    INSERT INTO claims … ON CONFLICT (phase, key) DO UPDATE SET worker = :me, expires = :now + lease, …
    WHERE claims.expires <= :now AND (claims.worker <> '' OR claims.run <> :run)

after choosing candidates, in the same transaction: on PostgreSQL ``SELECT … FOR UPDATE OF items SKIP
LOCKED`` (two workers claiming at once choose different items instead of queueing on the same rows); on
SQLite under ``BEGIN IMMEDIATE`` (one writer at a time per file). A claim is renewed by its worker's
heartbeat; one that stops being renewed (the worker died, or hung) expires and is taken by the next claim.
A claim released with its item still pending (its group was not created, say) is kept for the run as
``worker = ''``: the same run does not take it again, the next run does.

What a worker writes about a claimed item (its checkpoint, its status) is **fenced**: written in a
transaction that first checks (on PostgreSQL locks, ``FOR UPDATE``) the claim row and writes nothing when
another worker holds it now (:class:`ClaimLost`). A worker that lost a claim therefore never moves a
checkpoint another worker is advancing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from imbridge.errors import ConfigurationError
from imbridge.storage import Database, Schema
from imbridge.storage.schema import meta_table as meta

PENDING, DONE, FAILED, SKIPPED = "pending", "done", "failed", "skipped"
#: Collisions listed in full in the error (the rest are counted).
MAX_COLLISIONS_LISTED = 50

MIGRATION = MetaData()
items = Table(
    "items", MIGRATION,
    Column("phase", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default=PENDING),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("detail", Text, nullable=False, server_default=""),
    Column("updated", Double, nullable=False, server_default="0"),
)  # fmt: skip
Index("items_status", items.c.phase, items.c.status)
idmap = Table(
    "idmap", MIGRATION,
    Column("kind", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("target", Text, nullable=False),
)  # fmt: skip
checkpoints = Table(
    "checkpoints", MIGRATION,
    Column("channel", Text, primary_key=True),
    Column("position", Text, nullable=False),
    Column("migrated", BigInteger, nullable=False, server_default="0"),
    Column("skipped", BigInteger, nullable=False, server_default="0"),
    Column("updated", Double, nullable=False, server_default="0"),
)  # fmt: skip
journal_table = Table(
    "journal", MIGRATION,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", Double, nullable=False),
    Column("resource", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("args", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=PENDING),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)  # fmt: skip
mirror_refs = Table(
    "mirror_refs", MIGRATION,
    Column("primary_ref", Text, primary_key=True),
    Column("secondary_ref", Text, nullable=False),
)  # fmt: skip
claims = Table(
    "claims", MIGRATION,
    Column("phase", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("worker", Text, nullable=False),  # '' once released
    Column("run", Integer, nullable=False),
    Column("expires", Double, nullable=False),
    Column("taken", Integer, nullable=False, server_default="1"),  # times claimed (a takeover counts)
)  # fmt: skip
Index("claims_worker", claims.c.worker)
workers_table = Table(
    "workers", MIGRATION,
    Column("id", Text, primary_key=True),
    Column("run", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", Double, nullable=False),
    Column("heartbeat", Double, nullable=False),
    Column("finished", Double),
    Column("phase", Text, nullable=False, server_default=""),
    Column("channels", BigInteger, nullable=False, server_default="0"),
    Column("messages", BigInteger, nullable=False, server_default="0"),
    Column("items", BigInteger, nullable=False, server_default="0"),
    Column("peak_rss_mb", Double),
    Column("detail", Text, nullable=False, server_default=""),
)  # fmt: skip

#: Version 1: the tables of the SQLite-only state file (adopted as they are) plus mirror_refs (created on
#: the fly before), claims and workers.
MIGRATION_SCHEMA = Schema("migration", MIGRATION, 1)


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


class ClaimLost(Exception):
    """Another worker holds this item's claim now: the work on it stops, writing nothing more."""


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


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _item(row: Any) -> Item:
    return Item(row.phase, row.key, row.status, json.loads(row.data), row.detail)


def worker_name() -> str:
    """``host:pid:random``: unique, and says where to look for the process (a dead local one is detected)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def _local_pid_dead(worker: str) -> bool:
    """Whether ``worker`` names a process of this host that no longer exists (pid reuse errs towards alive)."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # a zombie (killed, not yet reaped by its parent) is dead too
    try:
        with open(f"/proc/{pid_text}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class StateDB:
    """The state database. One instance per process; its methods may be called from several threads (each
    is one short transaction; ``transaction()`` groups them, per thread)."""

    def __init__(self, path: str) -> None:
        self.db = Database(path)
        self.path = self.db.shown
        self.backend = self.db.backend
        self._local = threading.local()
        try:
            self.db.ensure(MIGRATION_SCHEMA)
        except BaseException:
            self.db.close()
            raise
        self._prepare()

    def _prepare(self) -> None:
        """The statements run per channel or per message, built once (see :class:`imbridge.storage.Database.prepare`:
        on SQLite they then skip SQLAlchemy's per-execution work, which cost more than SQLite itself here)."""
        prepare = self.db.prepare
        self._get_meta = prepare(select(meta.c.value).where(meta.c.key == bindparam("key")))
        self._get_item = prepare(
            select(items).where(items.c.phase == bindparam("phase"), items.c.key == bindparam("key"))
        )
        self._set_status = prepare(
            update(items)
            .where(items.c.phase == bindparam("b_phase"), items.c.key == bindparam("b_key"))
            .values(status=bindparam("b_status"), detail=bindparam("b_detail"), updated=bindparam("b_now"))
        )
        self._get_checkpoint = prepare(select(checkpoints).where(checkpoints.c.channel == bindparam("channel")))
        save = self.db.insert(checkpoints).values(
            channel=bindparam("channel"), position=bindparam("position"), migrated=bindparam("migrated"),
            skipped=bindparam("skipped"), updated=bindparam("now"),
        )  # fmt: skip
        self._save_checkpoint = prepare(
            save.on_conflict_do_update(
                index_elements=["channel"],
                set_={
                    "position": save.excluded.position,
                    "migrated": save.excluded.migrated,
                    "skipped": save.excluded.skipped,
                    "updated": save.excluded.updated,
                },
            )
        )
        claimable = and_(
            claims.c.expires <= bindparam("now"), or_(claims.c.worker != "", claims.c.run != bindparam("run"))
        )
        blocking = exists().where(claims.c.phase == items.c.phase, claims.c.key == items.c.key, ~claimable)
        candidates = (
            select(items.c.key)
            .where(items.c.phase == bindparam("phase"), items.c.status == PENDING, ~blocking)
            .order_by(items.c.key)
            .limit(bindparam("limit"))
        )
        if self.backend == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True, of=items)
        self._candidates = prepare(candidates)
        take = self.db.insert(claims).values(
            phase=bindparam("phase"), key=bindparam("key"), worker=bindparam("worker"), run=bindparam("run"),
            expires=bindparam("expires"), taken=1,
        )  # fmt: skip
        self._take = prepare(
            take.on_conflict_do_update(
                index_elements=["phase", "key"],
                set_={
                    "worker": take.excluded.worker,
                    "run": take.excluded.run,
                    "expires": take.excluded.expires,
                    "taken": claims.c.taken + 1,
                },
                where=claimable,
            )
        )
        holder = select(claims.c.worker).where(claims.c.phase == bindparam("phase"), claims.c.key == bindparam("key"))
        self._holder = prepare(holder.with_for_update() if self.backend == "postgresql" else holder)
        self._release = prepare(
            update(claims)
            .where(claims.c.phase == bindparam("b_phase"), claims.c.key == bindparam("b_key"),
                   claims.c.worker == bindparam("b_worker"))
            .values(worker=bindparam("b_to"), expires=0.0)
        )  # fmt: skip
        self._worker_update = prepare(
            update(workers_table)
            .where(workers_table.c.id == bindparam("b_worker"))
            .values(heartbeat=bindparam("b_now"), channels=workers_table.c.channels + bindparam("b_channels"),
                    messages=workers_table.c.messages + bindparam("b_messages"),
                    items=workers_table.c["items"] + bindparam("b_items"),
                    phase=func.coalesce(bindparam("b_phase", type_=Text), workers_table.c.phase))
        )  # fmt: skip

    def close(self) -> None:
        self.db.close()

    # -- connections ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction for the calls inside the block (on this thread)."""
        current: Connection | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self.db.write() as connection:
            self._local.tx = connection
            try:
                yield connection
            finally:
                self._local.tx = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        current: Connection | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self.db.read() as connection:
            yield connection

    # -- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        with self._read() as c:
            row = self._get_meta.first(c, {"key": key})
        return json.loads(row.value) if row is not None else None

    def set_meta(self, key: str, value: Any) -> None:
        statement = self.db.insert(meta).values(key=key, value=_dumps(value))
        with self.transaction() as c:
            c.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": statement.excluded.value}))

    # -- items ------------------------------------------------------------------------------------

    def add_items(
        self, phase: str, entries: Iterable[tuple[str, dict[str, Any]]], *, own_transaction: bool = True
    ) -> int:
        """Add items not yet planned (a re-plan keeps the progress of those already there); refresh the
        data of pending ones. Returns how many are new. (``own_transaction`` is kept for callers: the calls
        inside a ``transaction()`` block join it either way.)"""
        rows = [{"phase": phase, "key": key, "data": _dumps(data), "updated": time.time()} for key, data in entries]
        if not rows:
            return 0
        statement = self.db.insert(items)
        statement = statement.on_conflict_do_update(
            index_elements=["phase", "key"], set_={"data": statement.excluded.data}, where=items.c.status == PENDING
        )
        with self.transaction() as c:
            before = self._count(c, phase)
            for start in range(0, len(rows), 500):
                c.execute(statement, rows[start : start + 500])
            return self._count(c, phase) - before

    def delete_items(self, phase: str) -> None:
        with self.transaction() as c:
            c.execute(delete(items).where(items.c.phase == phase))

    def items(self, phase: str, status: str | None = None) -> list[Item]:
        return list(self.iter_items(phase, status))

    def iter_items(self, phase: str, status: str | None = None, *, page: int = 1000) -> Iterator[Item]:
        """The items of a phase by key, read a page at a time (a phase of millions never sits in memory)."""
        after = ""
        first = True
        while True:
            query = select(items).where(items.c.phase == phase)
            if status:
                query = query.where(items.c.status == status)
            if not first:
                query = query.where(items.c.key > after)
            with self._read() as c:
                rows = c.execute(query.order_by(items.c.key).limit(page)).all()
            yield from (_item(r) for r in rows)
            if len(rows) < page:
                return
            after, first = rows[-1].key, False

    def item(self, phase: str, key: str) -> Item | None:
        with self._read() as c:
            row = self._get_item.first(c, {"phase": phase, "key": key})
        return _item(row) if row is not None else None

    def keys(self, phase: str, status: str | None = None) -> list[str]:
        query = select(items.c.key).where(items.c.phase == phase)
        if status:
            query = query.where(items.c.status == status)
        with self._read() as c:
            return list(c.execute(query.order_by(items.c.key)).scalars())

    def set_status(self, phase: str, key: str, status: str, detail: str = "") -> None:
        with self.transaction() as c:
            values = {"b_phase": phase, "b_key": key, "b_status": status, "b_detail": detail, "b_now": time.time()}
            self._set_status.run(c, values)

    def set_many(self, phase: str, keys: Iterable[str], status: str, detail: str = "") -> None:
        with self.transaction():
            for key in keys:
                self.set_status(phase, key, status, detail)

    @staticmethod
    def _count(c: Connection, phase: str, status: str | None = None) -> int:
        query = select(func.count()).select_from(items).where(items.c.phase == phase)
        if status:
            query = query.where(items.c.status == status)
        return int(c.execute(query).scalar_one())

    def count(self, phase: str, status: str | None = None) -> int:
        with self._read() as c:
            return self._count(c, phase, status)

    def counts(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        with self._read() as c:
            rows = c.execute(
                select(items.c.phase, items.c.status, func.count()).group_by(items.c.phase, items.c.status)
            )
            for phase, status, n in rows:
                result.setdefault(phase, {})[status] = int(n)
        return result

    def reset_failed(self, phase: str) -> None:
        with self.transaction() as c:
            c.execute(update(items).where(items.c.phase == phase, items.c.status == FAILED).values(status=PENDING))

    def finish_item(self, phase: str, key: str, data: dict[str, Any], status: str = DONE) -> None:
        """Set an item's status and replace its data in one write."""
        with self.transaction() as c:
            c.execute(
                update(items)
                .where(items.c.phase == phase, items.c.key == key)
                .values(status=status, data=_dumps(data), detail="", updated=time.time())
            )

    def requeue(self, phase: str, keys: Iterable[str], detail: str) -> int:
        """Put items back to pending whatever their status (a repair); returns how many exist."""
        count = 0
        with self.transaction() as c:
            for key in keys:
                done = c.execute(
                    update(items)
                    .where(items.c.phase == phase, items.c.key == key)
                    .values(status=PENDING, detail=detail, updated=time.time())
                )
                count += done.rowcount
        return count

    def updated_since(self, phase: str, status: str, since: float) -> list[str]:
        """Keys of ``phase`` in ``status`` written after ``since`` (Unix seconds)."""
        query = select(items.c.key).where(items.c.phase == phase, items.c.status == status, items.c.updated > since)
        with self._read() as c:
            return list(c.execute(query.order_by(items.c.key)).scalars())

    def failures(self, limit: int) -> list[Item]:
        query = select(items).where(items.c.status == FAILED).order_by(items.c.phase, items.c.key).limit(limit)
        with self._read() as c:
            return [_item(r) for r in c.execute(query)]

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
        statement = self.db.insert(idmap).on_conflict_do_nothing(index_elements=["kind", "source"])
        with self.transaction() as c:
            for start in range(0, len(fresh), 500):
                c.execute(statement, [{"kind": kind, "source": s, "target": t} for s, t in fresh[start : start + 500]])

    def mapped_one(self, kind: str, source: str) -> str | None:
        with self._read() as c:
            value = c.execute(select(idmap.c.target).where(idmap.c.kind == kind, idmap.c.source == source)).scalar()
        return str(value) if value is not None else None

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
        with self._read() as c:
            return {
                r.source: r.target
                for r in c.execute(select(idmap.c.source, idmap.c.target).where(idmap.c.kind == kind))
            }

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoint(self, channel: str) -> Checkpoint | None:
        with self._read() as c:
            r = self._get_checkpoint.first(c, {"channel": channel})
        return Checkpoint(json.loads(r.position), int(r.migrated), int(r.skipped)) if r is not None else None

    def save_checkpoint(self, channel: str, position: dict[str, Any], migrated: int, skipped: int) -> None:
        values = {"channel": channel, "position": _dumps(position), "migrated": migrated, "skipped": skipped,
                  "now": time.time()}  # fmt: skip
        with self.transaction() as c:
            self._save_checkpoint.run(c, values)

    def reset_checkpoint(self, channel: str) -> None:
        """Start a channel over from its first message (a repair): every message is looked up before it is
        sent, so only what the target lacks is copied. A group keeps the upper bound it was planned with."""
        checkpoint = self.checkpoint(channel)
        if checkpoint is None:
            return
        kept = {"last": checkpoint.position["last"]} if "last" in checkpoint.position else {}
        self.save_checkpoint(channel, kept, 0, 0)

    def checkpoint_times(self, channels: Iterable[str]) -> list[float]:
        """When each of ``channels`` last had its checkpoint saved (Unix seconds)."""
        query = select(checkpoints.c.updated).where(checkpoints.c.channel.in_(list(channels)))
        with self._read() as c:
            return [float(t) for t in c.execute(query).scalars()]

    def processed(self) -> dict[str, int]:
        """Messages looked at (copied or skipped) per channel."""
        with self._read() as c:
            rows = c.execute(select(checkpoints.c.channel, checkpoints.c.migrated + checkpoints.c.skipped))
            return {channel: int(n) for channel, n in rows}

    def totals(self) -> tuple[int, int]:
        query = select(
            func.coalesce(func.sum(checkpoints.c.migrated), 0), func.coalesce(func.sum(checkpoints.c.skipped), 0)
        )
        with self._read() as c:
            migrated, skipped = c.execute(query).one()
        return int(migrated), int(skipped)

    # -- mirror journal and refs ------------------------------------------------------------------

    def journal_add(self, resource: str, method: str, args: Any, error: str, status: str = PENDING) -> int:
        """Add an entry; ``status`` FAILED keeps a call that can never be replayed (with ``error`` saying why)."""
        statement = journal_table.insert().values(
            created=time.time(), resource=resource, method=method, args=_dumps(args), error=error, status=status,
            last_error=error if status == FAILED else "",
        ).returning(journal_table.c.id)  # fmt: skip
        with self.transaction() as c:
            return int(c.execute(statement).scalar_one())

    def journal(self, status: str | None = PENDING) -> list[JournalEntry]:
        query = select(journal_table)
        if status:
            query = query.where(journal_table.c.status == status)
        with self._read() as c:
            return [
                JournalEntry(r.id, r.created, r.resource, r.method, _loads(r.args), r.error, r.status, r.attempts,
                             r.last_error)
                for r in c.execute(query.order_by(journal_table.c.id))
            ]  # fmt: skip

    def journal_mark(self, entry_id: int, status: str, last_error: str = "") -> None:
        with self.transaction() as c:
            c.execute(
                update(journal_table)
                .where(journal_table.c.id == entry_id)
                .values(status=status, attempts=journal_table.c.attempts + 1, last_error=last_error)
            )

    def mirror_ref(self, primary_ref: str) -> str | None:
        with self._read() as c:
            value = c.execute(
                select(mirror_refs.c.secondary_ref).where(mirror_refs.c.primary_ref == primary_ref)
            ).scalar()
        return str(value) if value is not None else None

    def remember_ref(self, primary_ref: str, secondary_ref: str) -> None:
        statement = self.db.insert(mirror_refs).values(primary_ref=primary_ref, secondary_ref=secondary_ref)
        with self.transaction() as c:
            c.execute(
                statement.on_conflict_do_update(
                    index_elements=["primary_ref"], set_={"secondary_ref": statement.excluded.secondary_ref}
                )
            )

    # -- claims -----------------------------------------------------------------------------------

    def claim(self, phase: str, worker: str, run: int, *, lease: float, limit: int = 1) -> list[str]:
        """Claim up to ``limit`` pending items of ``phase`` no live claim holds (by key); returns their keys."""
        now = time.time()
        taken: list[str] = []
        with self.transaction() as c:
            for row in self._candidates.rows(c, {"phase": phase, "now": now, "run": run, "limit": limit}):
                values = {"phase": phase, "key": row.key, "worker": worker, "run": run, "expires": now + lease,
                          "now": now}  # fmt: skip
                if self._take.run(c, values) == 1:
                    taken.append(row.key)
        return taken

    def claims_off(self, phase: str, *, limit: int, exclude: Sequence[str]) -> list[str]:
        """Pending items with no claim at all (claims switched off: a test shows the double work it causes)."""
        query = select(items.c.key).where(items.c.phase == phase, items.c.status == PENDING)
        if exclude:
            query = query.where(items.c.key.not_in(list(exclude)))
        with self._read() as c:
            return list(c.execute(query.order_by(items.c.key).limit(limit)).scalars())

    def take(self, phase: str, key: str, worker: str, run: int, *, lease: float) -> bool:
        """Claim one named thing (a once-per-run step), whether or not it is an item."""
        now = time.time()
        values = {"phase": phase, "key": key, "worker": worker, "run": run, "expires": now + lease, "now": now}
        with self.transaction() as c:
            return self._take.run(c, values) == 1

    def renew(self, worker: str, lease: float) -> int:
        """Extend every claim ``worker`` still holds (taken-over ones are not its any more); returns how many."""
        with self.transaction() as c:
            return int(
                c.execute(update(claims).where(claims.c.worker == worker).values(expires=time.time() + lease)).rowcount
            )

    def release(self, phase: str, keys: Iterable[str], worker: str, *, abandon: bool = False) -> None:
        """Give claims back, and count them as items this worker handled. A released row stays (``worker =
        ''``, expired) so that this run does not take an item left pending again (a finished item is not
        pending, so not claimable anyway). ``abandon``: the worker stopped working on them without finishing
        (another took them over, or may): expired but kept under its name, so any worker takes them at once."""
        keys = list(keys)
        with self.transaction() as c:
            for key in keys:
                values = {"b_phase": phase, "b_key": key, "b_worker": worker, "b_to": worker if abandon else ""}
                self._release.run(c, values)
            self.worker_update(worker, c, items=len(keys), phase=phase)

    def held_by(self, worker: str) -> set[tuple[str, str]]:
        """The (phase, key) claims ``worker`` holds."""
        with self._read() as c:
            return {
                (r.phase, r.key)
                for r in c.execute(select(claims.c.phase, claims.c.key).where(claims.c.worker == worker))
            }

    @contextlib.contextmanager
    def fenced(self, phase: str, key: str, worker: str | None) -> Iterator[Connection]:
        """A write transaction that goes ahead only while ``worker`` holds the claim on ``(phase, key)``
        (locked on PostgreSQL until commit, so a takeover waits for it); :class:`ClaimLost` otherwise.
        ``worker`` None: no claim to check (claims switched off, or a caller outside the workers)."""
        with self.transaction() as c:
            if worker is not None:
                row = self._holder.first(c, {"phase": phase, "key": key})
                if row is None or row.worker != worker:
                    raise ClaimLost(f"{phase} {key}")
            yield c

    def held_by_others(self, phase: str, worker: str) -> int:
        """Pending items of ``phase`` whose claim another live worker holds: the phase is not over yet."""
        now = time.time()
        query = (
            select(func.count())
            .select_from(items.join(claims, and_(claims.c.phase == items.c.phase, claims.c.key == items.c.key)))
            .where(items.c.phase == phase, items.c.status == PENDING, claims.c.worker != "",
                   claims.c.worker != worker, claims.c.expires > now)
        )  # fmt: skip
        with self._read() as c:
            return int(c.execute(query).scalar_one())

    def expire_dead_local(self) -> list[str]:
        """Expire the claims of workers on this host whose process is gone (no need to wait for the lease)."""
        now = time.time()
        with self._read() as c:
            holders = list(
                c.execute(
                    select(claims.c.worker).where(claims.c.worker != "", claims.c.expires > now).distinct()
                ).scalars()
            )
        dead = [w for w in holders if _local_pid_dead(w)]
        if dead:
            with self.transaction() as c:
                c.execute(update(claims).where(claims.c.worker.in_(dead)).values(expires=0.0))
                c.execute(update(workers_table).where(workers_table.c.id.in_(dead), workers_table.c.finished.is_(None))
                          .values(detail="dead (its process is gone)"))  # fmt: skip
        return dead

    # -- workers ----------------------------------------------------------------------------------

    def worker_started(self, worker: str, run: int) -> None:
        host, _, rest = worker.partition(":")
        now = time.time()
        with self.transaction() as c:
            c.execute(
                self.db.insert(workers_table)
                .values(id=worker, run=run, host=host, pid=int(rest.partition(":")[0] or 0), started=now, heartbeat=now)
                .on_conflict_do_nothing(index_elements=["id"])
            )

    def worker_update(
        self,
        worker: str,
        c: Connection | None = None,
        *,
        channels: int = 0,
        messages: int = 0,
        items: int = 0,
        phase: str | None = None,
    ) -> None:
        """Add to a worker's counts (and set its phase, when given); renews its heartbeat time."""
        values = {"b_worker": worker, "b_now": time.time(), "b_channels": channels, "b_messages": messages,
                  "b_items": items, "b_phase": phase}  # fmt: skip
        if c is not None:
            self._worker_update.run(c, values)
            return
        with self.transaction() as own:
            self._worker_update.run(own, values)

    def worker_finished(self, worker: str, *, detail: str, peak_rss_mb: float | None) -> None:
        self.worker_heartbeat(worker, peak_rss_mb, finished=time.time(), detail=detail)

    def worker_heartbeat(self, worker: str, peak_rss_mb: float | None, **values: Any) -> None:
        with self.transaction() as c:
            c.execute(
                update(workers_table)
                .where(workers_table.c.id == worker)
                .values(heartbeat=time.time(), peak_rss_mb=peak_rss_mb, **values)
            )

    def worker_exited(self, pid: int, code: int) -> None:
        """Record how a worker process of this host ended (its parent saw it exit)."""
        if code == 0:
            return
        how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
        with self.transaction() as c:
            c.execute(
                update(workers_table)
                .where(workers_table.c.host == socket.gethostname(), workers_table.c.pid == pid,
                       workers_table.c.finished.is_(None))
                .values(detail=how, finished=time.time())
            )  # fmt: skip

    def workers(self, run: int | None = None) -> list[dict[str, Any]]:
        query = select(workers_table)
        if run is not None:
            query = query.where(workers_table.c.run == run)
        with self._read() as c:
            return [dict(r._mapping) for r in c.execute(query.order_by(workers_table.c.started, workers_table.c.id))]

    def claim_counts(self, phase: str) -> dict[str, int]:
        """Per item of ``phase``: how many times it was claimed (a takeover after a worker died adds one)."""
        with self._read() as c:
            return {
                k: int(n) for k, n in c.execute(select(claims.c.key, claims.c.taken).where(claims.c.phase == phase))
            }

    def update_meta(self, key: str, change: Any) -> Any:
        """Read-modify-write one meta value atomically across workers (``change(old) -> new``; old None if
        unset): the row is created, then locked (PostgreSQL ``FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``)."""
        with self.transaction() as c:
            c.execute(self.db.insert(meta).values(key=key, value="null").on_conflict_do_nothing(index_elements=["key"]))
            query = select(meta.c.value).where(meta.c.key == key)
            if self.backend == "postgresql":
                query = query.with_for_update()
            new = change(json.loads(c.execute(query).scalar_one()))
            c.execute(update(meta).where(meta.c.key == key).values(value=_dumps(new)))
        return new

    def delete_meta(self, key: str) -> None:
        with self.transaction() as c:
            c.execute(delete(meta).where(meta.c.key == key))
