"""``im.maintenance``: the work that falls due on the server (on WuKongIM, lifting timed mutes that ended).

``run_due()`` does it once and says what it did. ``run_forever()`` (``imbridge worker``) and, on the async
client, ``start()`` or ``AsyncIMClient(background_maintenance=...)`` do it on a schedule. Every app instance
may run it at once: where they share a store, a lease in the store lets one instance at a time do the work
and the others skip that round (``MaintenanceReport.ran`` is False for them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from imbridge._exec import AsyncExecutor, SyncExecutor
from imbridge.capabilities import Operation
from imbridge.errors import IMBridgeError, InvalidRequestError
from imbridge.models.maintenance import MaintenanceReport
from imbridge.resources._base import AsyncResource, Call, Gate, Operations, SyncResource, _seconds

logger = logging.getLogger("imbridge")

#: Seconds between runs unless told otherwise.
DEFAULT_INTERVAL = 30.0
#: How long a run may hold the store's lease before another instance may take over (it is renewed as the run
#: goes and released at its end; it only matters when a worker dies mid-run).
DEFAULT_LEASE = timedelta(seconds=60)
#: The shortest wait between runs, however soon the next work falls due.
MIN_WAIT = 0.05

OnReport = Callable[[MaintenanceReport], None]
OnError = Callable[[IMBridgeError], None]


def worker_id() -> str:
    """Who runs the work, as shown in reports and in the store's lease: host, process, and a per-client part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def next_wait(report: MaintenanceReport | None, interval: float, now: datetime) -> float:
    """Seconds until the next run: the interval, or sooner when known work falls due before it ends."""
    if report is None or report.next_due_at is None or not report.ran:
        return interval
    return min(interval, max((report.next_due_at - now).total_seconds(), MIN_WAIT))


def _interval(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidRequestError(f"interval must be a positive number of seconds, got {value!r}")
    return float(value)


class MaintenanceOperations(Operations):
    def run_due(self, worker: str, lease: timedelta | float) -> Call[MaintenanceReport]:
        operation = self._gate(Operation.MAINTENANCE_RUN_DUE)
        return operation, self.provider.run_due(worker, _seconds(lease, "lease"))


class Maintenance(SyncResource[MaintenanceOperations]):
    _operations = MaintenanceOperations

    def __init__(self, gate: Gate, executor: SyncExecutor) -> None:
        super().__init__(gate, executor)
        self.worker = worker_id()

    def run_due(self, *, lease: timedelta | float = DEFAULT_LEASE) -> MaintenanceReport:
        """Do what has fallen due on the server now, and say what was done (and what failed: it stays due)."""
        return self._run(self._ops.run_due(self.worker, lease))

    def run_forever(
        self, interval: float = DEFAULT_INTERVAL, *, stop: threading.Event | None = None,
        on_report: OnReport | None = None, on_error: OnError | None = None, lease: timedelta | float = DEFAULT_LEASE,
    ) -> None:  # fmt: skip
        """``run_due`` every ``interval`` seconds (sooner when the next mute ends before that) until ``stop`` is
        set. A run that fails (the server or the store is down) is logged, handed to ``on_error``, and tried
        again after the interval: a worker outlives outages."""
        wait_for = _interval(interval)
        stop = stop or threading.Event()
        while not stop.is_set():
            report: MaintenanceReport | None = None
            try:
                report = self.run_due(lease=lease)
            except IMBridgeError as error:
                logger.warning("imbridge maintenance run failed: %s", error)
                if on_error is not None:
                    on_error(error)
            else:
                if on_report is not None:
                    on_report(report)
            stop.wait(next_wait(report, wait_for, self._executor.clock.now()))


class AsyncMaintenance(AsyncResource[MaintenanceOperations]):
    _operations = MaintenanceOperations

    def __init__(self, gate: Gate, executor: AsyncExecutor) -> None:
        super().__init__(gate, executor)
        self.worker = worker_id()
        self._task: asyncio.Task[None] | None = None

    async def run_due(self, *, lease: timedelta | float = DEFAULT_LEASE) -> MaintenanceReport:
        """Do what has fallen due on the server now, and say what was done (and what failed: it stays due)."""
        return await self._run(self._ops.run_due(self.worker, lease))

    async def run_forever(
        self, interval: float = DEFAULT_INTERVAL, *, on_report: OnReport | None = None,
        on_error: OnError | None = None, lease: timedelta | float = DEFAULT_LEASE,
    ) -> None:  # fmt: skip
        """``run_due`` every ``interval`` seconds (sooner when the next mute ends before that) until cancelled.
        A failed run is logged, handed to ``on_error``, and tried again after the interval."""
        wait_for = _interval(interval)
        while True:
            report: MaintenanceReport | None = None
            try:
                report = await self.run_due(lease=lease)
            except IMBridgeError as error:
                logger.warning("imbridge maintenance run failed: %s", error)
                if on_error is not None:
                    on_error(error)
            else:
                if on_report is not None:
                    on_report(report)
            await asyncio.sleep(next_wait(report, wait_for, self._executor.clock.now()))

    def start(
        self, interval: float = DEFAULT_INTERVAL, *, on_report: OnReport | None = None,
        on_error: OnError | None = None,
    ) -> asyncio.Task[None]:  # fmt: skip
        """Run due work in the background of this event loop until ``stop()`` or the client's ``aclose()``.
        Calling it again while it runs returns the running task."""
        if self._task is not None and not self._task.done():
            return self._task
        wait_for = _interval(interval)
        self._task = asyncio.get_running_loop().create_task(
            self.run_forever(wait_for, on_report=on_report, on_error=on_error),
            name=f"imbridge-maintenance-{self.worker}",
        )
        return self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop the background runs (a run in progress is cancelled; its lease is released)."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        current = asyncio.current_task()
        try:
            await task
        except asyncio.CancelledError:
            if current is not None and current.cancelling():
                raise  # our own caller is being cancelled too: let that through
