"""Deduplication (and replay) stores: remember which events were already handed to the app.

A receiver claims each event's ``event_id`` before it calls the app's handler and releases the claim when
the handler fails (so the vendor's retry is handled). A claim lives ``ttl`` seconds: a re-delivery inside
that window is answered as the vendor expects but not handed to the app again. Several worker processes
share one store to deduplicate across workers: the in-memory store is per process; :class:`SQLDedupeStore`
(imbridge's store database) is shared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_MAX_ENTRIES", "DedupeStore", "MemoryDedupeStore"]

DEFAULT_MAX_ENTRIES = 200_000
"""How many claims the in-memory store keeps at most (about 40 MB of keys at the longest event ids)."""


@runtime_checkable
class DedupeStore(Protocol):
    """What a receiver needs from a deduplication store. Implementations must be safe to call from
    several threads, and ``claim`` must be atomic: of two concurrent claims of one key, one wins."""

    def claim(self, key: str, *, ttl: float, now: float) -> bool:
        """Claim ``key`` until ``now + ttl``: True if it was free (or its claim had expired), False if
        it is held."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key`` (its handler failed: the next delivery must be handled)."""
        ...


class MemoryDedupeStore:
    """Claims kept in this process, bounded: past ``max_entries`` the oldest claims are dropped first
    (a re-delivery of one of those would be handed to the app again; size the bound to the traffic of
    one dedupe window)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, key: str, *, ttl: float, now: float) -> bool:
        with self._lock:
            expiry = self._expiry
            held = expiry.get(key)
            if held is not None:
                if held > now:
                    return False
                del expiry[key]
            if now >= self._next_sweep or len(expiry) >= self.max_entries:
                self._sweep(now)
            expiry[key] = now + ttl
            return True

    def _sweep(self, now: float) -> None:
        """Drop expired claims, then the oldest past the bound. Claims are appended in time order, so the
        expired ones are at the front; a sweep runs at most once a second (or when full)."""
        expiry = self._expiry
        while expiry:
            oldest, until = next(iter(expiry.items()))
            if until > now and len(expiry) < self.max_entries:
                break
            del expiry[oldest]
        self._next_sweep = now + 1.0

    def release(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def __len__(self) -> int:
        return len(self._expiry)

    def __repr__(self) -> str:
        return f"MemoryDedupeStore({len(self._expiry)} of at most {self.max_entries})"
