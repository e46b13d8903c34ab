"""What ``im.maintenance.run_due()`` needs from the store: a lease (one instance does the due work at a time)
and the timed mutes that fall due.

**The lease** is a row per name, ``(name, holder, expires_at)``, taken with one statement on both backends::

    INSERT INTO leases VALUES (:name, :holder, :expires)
    ON CONFLICT (name) DO UPDATE SET holder = :holder, expires_at = :expires
    WHERE leases.expires_at <= :now OR leases.holder = :holder

Its row count says whether this holder has it (taken, or renewed because it already held it). SQLite runs it
under ``BEGIN IMMEDIATE`` (one writer at a time); PostgreSQL locks the conflicting row, so a second contender
waits for the first to commit and then re-checks the ``WHERE`` against the committed row. A holder that dies
loses it when it expires. Why a lease row and not a PostgreSQL advisory lock: an advisory lock belongs to a
database session, while a maintenance run is a flow that yields between HTTP requests and must not pin one of
the pool's connections for its whole length (a transaction-scoped one would have to span the run); a lease
also expires by itself when its holder vanishes without closing its connection, and it is the same code on
SQLite. Its times come from the holders' clocks: a skew between hosts shortens or lengthens a takeover after a
crash by that skew, never lets two holders in at once while the holder renews well before ``expires_at``.

**Due mutes** are the ``mutes`` rows whose ``until`` has passed. Lifting one is two steps around the server
call: read them (``due_mutes``), take them off the server's list, then ``clear_mutes`` deletes each row only if
it still holds the ``until`` that was read; a row that changed meanwhile (the member was muted again) is
reported back, so the caller puts that member back on the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, Double, MetaData, Table, Text, bindparam, delete, func, or_, select

from imbridge.storage.core import mutes
from imbridge.storage.database import Database
from imbridge.storage.schema import Schema

LEASES = MetaData()
leases = Table(
    "leases", LEASES,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", Double, nullable=False),
)  # fmt: skip

#: Versioned apart from the core tables (``meta.schema_version:maintenance``): created the first time a store
#: is used for maintenance, without touching the core schema's version.
MAINTENANCE_SCHEMA = Schema("maintenance", LEASES, 1)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class DueMute:
    group_id: str
    user_id: str
    until: float


class Leases:
    """Named leases in one database (see the module's docstring for how they stay exclusive)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(MAINTENANCE_SCHEMA)
        statement = db.insert(leases).values(
            name=bindparam("name"), holder=bindparam("holder"), expires_at=bindparam("expires")
        )
        self._take = db.prepare(
            statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
                where=or_(leases.c.expires_at <= bindparam("now"), leases.c.holder == bindparam("holder")),
            )
        )

    def acquire(self, name: str, holder: str, *, now: float, seconds: float) -> bool:
        """Take (or renew) the lease ``name`` for ``seconds`` from ``now``; False if another holder has it."""
        with self.db.write() as connection:
            taken = self._take.run(connection, {"name": name, "holder": holder, "expires": now + seconds, "now": now})
        return taken == 1

    def release(self, name: str, holder: str) -> bool:
        """Give the lease back, if ``holder`` still has it."""
        with self.db.write() as connection:
            gone = connection.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))
        return gone.rowcount == 1

    def current(self, name: str) -> Lease | None:
        with self.db.read() as connection:
            row = connection.execute(select(leases).where(leases.c.name == name)).first()
        return Lease(row.name, row.holder, row.expires_at) if row is not None else None


class MuteSchedule:
    """The timed mutes of a store, by when they end."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, now: float, *, limit: int) -> list[DueMute]:
        """Mutes that ended at or before ``now``, the oldest first, at most ``limit``."""
        with self.db.read() as connection:
            rows = connection.execute(
                select(mutes.c.group_id, mutes.c.user_id, mutes.c.until)
                .where(mutes.c.until <= now)
                .order_by(mutes.c.until, mutes.c.group_id, mutes.c.user_id)
                .limit(limit)
            )
            return [DueMute(row.group_id, row.user_id, row.until) for row in rows]

    def due_in_group(self, group_id: str, now: float) -> list[DueMute]:
        with self.db.read() as connection:
            rows = connection.execute(
                select(mutes.c.group_id, mutes.c.user_id, mutes.c.until)
                .where(mutes.c.group_id == group_id, mutes.c.until <= now)
                .order_by(mutes.c.user_id)
            )
            return [DueMute(row.group_id, row.user_id, row.until) for row in rows]

    def next_end(self, now: float) -> float | None:
        """When the next mute still in force ends (None if none is)."""
        with self.db.read() as connection:
            value = connection.execute(select(func.min(mutes.c.until)).where(mutes.c.until > now)).scalar()
        return float(value) if value is not None else None

    def clear(self, lifted: Sequence[DueMute]) -> set[str]:
        """Delete each row that still holds the ``until`` it was read with; return the members (of one group)
        whose row changed meanwhile to a mute that has not ended: they were muted again."""
        if not lifted:
            return set()
        group_ids = {mute.group_id for mute in lifted}
        if len(group_ids) != 1:
            raise ValueError("clear() takes the mutes of one group")
        (group_id,) = group_ids
        with self.db.write() as connection:
            for mute in sorted(lifted, key=lambda m: m.user_id):  # one lock order: no deadlock between clearers
                connection.execute(
                    delete(mutes).where(
                        mutes.c.group_id == group_id, mutes.c.user_id == mute.user_id, mutes.c.until == mute.until
                    )
                )
            users: Iterable[str] = [mute.user_id for mute in lifted]
            remaining = connection.execute(
                select(mutes.c.user_id).where(mutes.c.group_id == group_id, mutes.c.user_id.in_(sorted(users)))
            )
            return {row.user_id for row in remaining}
