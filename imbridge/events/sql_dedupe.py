"""A deduplication store in imbridge's store database, shared by every worker that opens it.

It lives in a table of its own (``imbridge_event_claims``, created if missing) beside the local provider's
tables, and claims with one atomic statement, so two workers receiving the same re-delivery at the same
moment hand it to the app once between them.
"""

from __future__ import annotations

from imbridge.errors import ServiceUnavailableError
from imbridge.providers.local.store import Store

__all__ = ["SQLDedupeStore"]

_TABLE = """CREATE TABLE IF NOT EXISTS imbridge_event_claims (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS imbridge_event_claims_expiry ON imbridge_event_claims (expires_at)"

PURGE_EVERY = 60.0
"""Seconds between sweeps of expired claims (each claim also overrides an expired one of its key)."""


class SQLDedupeStore:
    """Claims in a database (``sqlite:///path`` or a file path) that several processes share."""

    def __init__(self, url: str) -> None:
        self._store = Store(url)
        with self._store.write() as db:
            db.execute(_TABLE)
            db.execute(_INDEX)
        self._purged_at = 0.0

    def claim(self, key: str, *, ttl: float, now: float) -> bool:
        try:
            with self._store.write() as db:
                # Insert, or take over an expired claim; a live claim stays and no row changes.
                cursor = db.execute(
                    "INSERT INTO imbridge_event_claims (key, expires_at) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
                    "WHERE imbridge_event_claims.expires_at <= ?",
                    (key, now + ttl, now),
                )
                claimed = cursor.rowcount == 1
                if now - self._purged_at > PURGE_EVERY:
                    db.execute("DELETE FROM imbridge_event_claims WHERE expires_at <= ?", (now,))
                    self._purged_at = now
        except ServiceUnavailableError:
            raise
        except Exception as exc:  # sqlite3 errors: the receiver answers 503 and the vendor retries
            raise ServiceUnavailableError(f"deduplication store failed: {exc}") from exc
        return claimed

    def release(self, key: str) -> None:
        with self._store.write() as db:
            db.execute("DELETE FROM imbridge_event_claims WHERE key = ?", (key,))

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f"SQLDedupeStore({self._store.path!r})"
