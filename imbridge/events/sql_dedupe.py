"""A deduplication store in imbridge's store database, shared by every worker that opens it.

It lives on the storage layer (:class:`imbridge.storage.Database`: SQLite for the workers of one host,
PostgreSQL for several hosts) in a table of its own, ``imbridge_event_claims``, under its own versioned
schema (``schema_version:event_claims``), so it shares a database with the rest of imbridge's store or has
one of its own. A claim is one atomic statement (insert, or take over an expired claim), so two workers
receiving the same re-delivery at the same moment hand it to the app once between them.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, MetaData, Table, Text, delete

from imbridge.storage import Database, Schema

__all__ = ["CLAIMS_SCHEMA", "SQLDedupeStore"]

_METADATA = MetaData()
claims = Table(
    "imbridge_event_claims",
    _METADATA,
    Column("key", Text, primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)
CLAIMS_SCHEMA = Schema(name="event_claims", metadata=_METADATA, version=1)

SWEEP_EVERY = 60.0
"""Seconds between sweeps of expired claims (a claim also takes over an expired one of its key)."""


class SQLDedupeStore:
    """Claims in a database (``sqlite:///path``, a file path, or ``postgresql://...``) several processes share.
    A failing database raises the storage layer's typed errors (the receiver then answers 503)."""

    def __init__(self, url: str) -> None:
        self._database = Database(url)
        self._database.ensure(CLAIMS_SCHEMA)
        self._swept_at = 0.0

    def claim(self, key: str, *, ttl: float, now: float) -> bool:
        insert = self._database.insert(claims).values(key=key, expires_at=now + ttl)
        # Insert; or, when the key is there, take it over only if its claim has expired: a live claim stays
        # and the statement changes no row (row count 0).
        statement = insert.on_conflict_do_update(
            index_elements=[claims.c.key], set_={"expires_at": insert.excluded.expires_at},
            where=claims.c.expires_at <= now,
        )  # fmt: skip
        with self._database.write() as connection:
            claimed = connection.execute(statement).rowcount == 1
            if now - self._swept_at > SWEEP_EVERY:
                connection.execute(delete(claims).where(claims.c.expires_at <= now))
                self._swept_at = now
        return claimed

    def release(self, key: str) -> None:
        with self._database.write() as connection:
            connection.execute(delete(claims).where(claims.c.key == key))

    def close(self) -> None:
        self._database.close()

    def __repr__(self) -> str:
        return f"SQLDedupeStore({self._database.shown!r})"
