"""Migration workers: processes that share one migration through its state database.

``imbridge migrate run --workers N`` plans (if needed), re-checks the target, then starts N worker processes
on this host (``python -m imbridge.migration._worker``, settings passed on stdin, never on the command line)
and shows their progress, read from the state database. ``--join`` on another host (the same state, on
PostgreSQL) starts N more that take part in the run under way. Each worker runs the phases in order; within a
phase it claims items (a channel, a group, a hundred accounts) from the state database
(:meth:`StateDB.claim`), works on ``concurrency`` of them at once, and waits at the end of a phase until
no other live worker holds a pending item of it (a group must exist before its history is copied; mutes
come after the history). A heartbeat renews the worker's claims; a worker that dies or hangs stops
renewing, its claims expire after ``lease`` seconds (at once when it was a process of this host that is
gone) and another worker takes them over, resuming from the checkpoint the dead one saved. A worker that
cannot renew stops working on its claims (it checks before every send) well before they expire, so two
workers never send into one channel at the same time; each message is looked up on the target before it
is sent anyway (the per-message idempotency key), so what the dead worker sent after its last checkpoint is
found, not repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from imbridge.errors import ConfigurationError
from imbridge.migration.state import ClaimLost, StateDB, worker_name

if TYPE_CHECKING:
    from imbridge.migration.pipeline import Migration

#: Seconds between two looks at the state database while waiting for other workers.
POLL_SECONDS = 0.5
#: Switched off only to show, in a test, the double work claims prevent (``IMBRIDGE_MIGRATION_CLAIMS=off``).
CLAIMS_ENV = "IMBRIDGE_MIGRATION_CLAIMS"
#: ``off``: a dead worker of this host is not noticed by its pid; its claims wait for their lease to expire,
#: as those of a worker on another host do (the tests use it to take that path on one machine).
LOCAL_DEATH_ENV = "IMBRIDGE_MIGRATION_LOCAL_DEATH"


def peak_rss_mb() -> float | None:
    """This process's peak resident set (Linux ``VmHWM``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Claims:
    """One worker's claims: taking items, the heartbeat, and the local deadline its work checks."""

    def __init__(self, state: StateDB, run: int, lease: float, *, name: str | None = None) -> None:
        self.state, self.run, self.lease = state, run, lease
        self.name = name or worker_name()
        self.enabled = os.environ.get(CLAIMS_ENV, "on") != "off"
        self.held: set[tuple[str, str]] = set()
        self._lost: set[tuple[str, str]] = set()
        self._valid_until = time.time() + lease / 2
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_dead_check = 0.0

    @property
    def holder(self) -> str | None:
        """The name fenced writes check (None when claims are off)."""
        return self.name if self.enabled else None

    async def start(self) -> None:
        self.state.worker_started(self.name, self.run)
        self._renew()
        self._heartbeat = asyncio.create_task(self._beat())

    async def stop(self, detail: str = "") -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):  # the state database may be what failed
            self.state.worker_finished(self.name, detail=detail, peak_rss_mb=peak_rss_mb())

    def _renew(self) -> None:
        started = time.time()
        self.state.renew(self.name, self.lease)
        # claims this worker thinks it holds but another took over (it was not renewing in time): lost
        self._lost |= self.held - self.state.held_by(self.name)
        # work goes on while half the lease is left: a stalled heartbeat stops it long before a takeover
        self._valid_until = started + self.lease / 2

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            with contextlib.suppress(Exception):  # a failed renewal lets the deadline pass: work stops
                self._renew()
                self.state.worker_heartbeat(self.name, peak_rss_mb())

    def check(self, phase: str, key: str) -> None:
        """Raise :class:`ClaimLost` unless this worker holds the claim on ``(phase, key)``. Free while the
        heartbeat renewed the claims less than half a lease ago; past that (the process was stopped, or the
        database slow) the claims are renewed now and this one's holder read back: one another worker took
        meanwhile is lost, one nobody took is this worker's again."""
        if not self.enabled:
            return
        if time.time() >= self._valid_until:
            self._renew()
        if (phase, key) in self._lost:
            raise ClaimLost(f"{phase} {key} was taken over while this worker was not renewing its claims")

    def take(self, phase: str, limit: int) -> list[str]:
        if not self.enabled:
            mine = [key for p, key in self.held if p == phase]
            keys = self.state.claims_off(phase, limit=limit, exclude=mine)
        else:
            local_death = os.environ.get(LOCAL_DEATH_ENV, "on") != "off"
            if local_death and time.time() - self._last_dead_check >= POLL_SECONDS:
                self._last_dead_check = time.time()
                self.state.expire_dead_local()
            keys = self.state.claim(phase, self.name, self.run, lease=self.lease, limit=limit)
        self.held.update((phase, key) for key in keys)
        return keys

    def release(self, phase: str, keys: Sequence[str], *, abandon: bool = False) -> None:
        for key in keys:
            self.held.discard((phase, key))
            self._lost.discard((phase, key))
        if self.enabled:
            self.state.release(phase, keys, self.name, abandon=abandon)
        else:
            self.state.worker_update(self.name, items=len(keys), phase=phase)

    def others_busy(self, phase: str) -> bool:
        if not self.enabled:
            return False
        return self.state.held_by_others(phase, self.name) > 0

    async def once(self, step: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` in one worker of this run; the others wait for it and get what it recorded."""
        key = f"step:{step}:{self.run}"
        while True:
            done = self.state.get_meta(key)
            if done is not None:
                return done
            if not self.enabled or self.state.take("step", key, self.name, self.run, lease=self.lease):
                result = await work()
                self.state.set_meta(key, result)
                self.state.release("step", [key], self.name)
                return result
            await asyncio.sleep(POLL_SECONDS)


async def claimed(
    claims: Claims, phase: str, work: Callable[[list[str]], Awaitable[None]], *, concurrency: int, batch: int = 1
) -> int:
    """Claim items of ``phase`` (``batch`` at a time) and run ``work`` on them, ``concurrency`` at once,
    until none is left to claim and no other live worker holds one; returns how many this worker handled."""
    handled = 0

    async def lane() -> None:
        nonlocal handled
        while True:
            keys = claims.take(phase, batch)
            if not keys:
                if claims.others_busy(phase):
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                return
            completed = False
            try:
                for key in keys:
                    claims.check(phase, key)
                await work(keys)
                handled += len(keys)
                completed = True
            except ClaimLost:
                pass  # another worker has it now: leave it alone
            finally:
                # Not completed (lost, stopped, failed): expire what is still ours of it at once, for any
                # worker to take (never hold a claim nobody works on). Completed but still pending (its
                # group is missing, say): released for good in this run.
                claims.release(phase, keys, abandon=not completed)

    await asyncio.gather(*(lane() for _ in range(max(concurrency, 1))))
    return handled


# -- processes -------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies (Linux ``PR_SET_PDEATHSIG``),
    so a killed ``imbridge migrate run`` leaves no worker behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def payload(migration: Migration, phases: Sequence[str]) -> bytes:
    """What a worker process needs, pickled (settings may hold secrets: they go on stdin, not argv)."""
    from dataclasses import asdict

    body = {"state": migration.state_url, "source": migration._source_spec, "target": migration._target_spec,
            "options": asdict(migration.options), "phases": list(phases)}  # fmt: skip
    try:
        return pickle.dumps(body)
    except Exception as error:
        raise ConfigurationError(
            "several worker processes need source and target settings (mappings of plain values), not client "
            f"objects or injected HTTP clients: {type(error).__name__}: {error}"
        ) from None


def start_processes(data: bytes, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` worker processes, each handed ``data`` on stdin."""
    processes = []
    for _ in range(count):
        process = subprocess.Popen(
            [sys.executable, "-m", "imbridge.migration._worker"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(data)
        process.stdin.close()
        processes.append(process)
    return processes


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM (a worker saves its checkpoints and stops), then SIGKILL what is left after ``grace`` s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
