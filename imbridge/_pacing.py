"""Client-side pacing: spread bursts out instead of collecting frequency-control errors.

A GCRA (generic cell rate algorithm) bucket per API: each call is given the earliest moment at which
it conforms to the rate, and the driver sleeps until then. ``reserve`` never blocks, so the same code
serves threads and asyncio tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` units per ``period`` seconds; ``burst`` units may go out back to back."""

    limit: float
    period: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.period <= 0 or self.burst < 1:
            raise ValueError(f"invalid rate {self}")

    @property
    def interval(self) -> float:
        """Seconds one unit occupies."""
        return self.period / self.limit


class _Bucket:
    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.theoretical_arrival = 0.0

    def reserve(self, cost: int, now: float) -> float:
        interval = self.rate.interval
        tolerance = (self.rate.burst - 1) * interval
        start = max(now, self.theoretical_arrival - tolerance)
        self.theoretical_arrival = max(self.theoretical_arrival, start) + cost * interval
        return start - now


class Pacer:
    """Buckets by API name. ``reserve`` returns how long the caller must wait before sending."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def reserve(self, api: str, rate: Rate, cost: int = 1) -> float:
        with self._lock:
            bucket = self._buckets.get(api)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[api] = _Bucket(rate)
            return bucket.reserve(cost, self._clock())
