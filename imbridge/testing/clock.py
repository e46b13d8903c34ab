"""A controllable clock for tests: time moves only when the test says so.

Pass it as ``clock=`` to :class:`imbridge.IMClient` or :class:`imbridge.AsyncIMClient`; every wait the
client makes (retry backoff, pacing, polling) then advances the fake time instead of sleeping, and
expiries (timed mutes, login tokens) follow :meth:`FakeClock.advance`::

    clock = FakeClock()
    im = IMClient("local", database=":memory:", clock=clock)
    ...
    im.groups.mute("g1", ["carol"], duration=timedelta(minutes=10))
    clock.advance(timedelta(minutes=10, seconds=1))   # the mute has lifted

This module imports nothing from pytest, so it can be used from any test framework.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from imbridge._clock import SystemClock

__all__ = ["DEFAULT_START", "FakeClock"]

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Where a FakeClock starts unless told otherwise: fixed, so tests are reproducible and do not depend
on today's date."""


class FakeClock:
    """A clock whose time advances only through :meth:`advance`, :meth:`sleep` and :meth:`asleep`.

    ``sleeps`` records every positive wait requested of it (in seconds, in order), so a test can assert
    on backoff and pacing without sleeping. (Zero waits, which the executor asks for when no pacing is
    due, are not recorded.)
    """

    def __init__(self, start: datetime = DEFAULT_START, *, monotonic_start: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._monotonic_start = monotonic_start
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    @property
    def elapsed(self) -> float:
        """Seconds the clock has moved since it was made."""
        return self._elapsed

    def now(self) -> datetime:
        """The current fake time, timezone-aware UTC."""
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._monotonic_start + self._elapsed

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward (never back)."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._elapsed += step

    def sleep(self, seconds: float) -> None:
        """Record the wait and advance by it, returning at once."""
        if seconds <= 0:
            return
        with self._lock:
            self.sleeps.append(seconds)
            self._elapsed += seconds

    async def asleep(self, seconds: float) -> None:
        """As :meth:`sleep`, for asyncio code."""
        self.sleep(seconds)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()})"


class ShiftedClock(SystemClock):
    """The real clock moved by a fixed offset: replays of recorded HTTP run at the recording's time.

    Answers recorded from a server carry absolute times (a mute's end, a message's time); replayed
    later, they would all lie in the past. Sleeping and monotonic time stay real.
    """

    def __init__(self, offset_seconds: float) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return super().now() + self.offset

    def __repr__(self) -> str:
        return f"ShiftedClock({self.offset.total_seconds():+.0f} s)"
