"""Issue 13, point 8: processes opening one fresh SQLite database at the same moment all succeed.

Before: 2 of 160 such opens failed with a raw ``sqlite3.OperationalError: database is locked`` at
``PRAGMA journal_mode=WAL``. Switching to WAL needs the exclusive lock, and SQLite refuses it at once,
without waiting for the busy timeout, while another connection holds the write lock (here: the first
process to get through creating the schema). The test makes that moment last instead of waiting for the
race: one process holds a write transaction on the fresh file while the others open it.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
import traceback
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

from imbridge.providers.local.store import Store

OPENERS = 8


def _hold_the_write_lock(path: str, locked: Event, seconds: float) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE another_apps_table (x)")
    locked.set()
    time.sleep(seconds)
    holder.execute("COMMIT")
    holder.close()


def _open(path: str, locked: Event, barrier: Barrier, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    locked.wait(30)
    barrier.wait(30)
    try:
        store = Store(path)
        store.add_users(["u"], 1.0)
        store.close()
        results.put("ok")
    except BaseException as error:  # reported with its type: the test names what escaped
        results.put(f"{type(error).__module__}.{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}")


def _open_together(path: str, hold_seconds: float | None) -> list[str]:
    context = multiprocessing.get_context("fork")  # fork: the openers start within microseconds of each other
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    locked, barrier = context.Event(), context.Barrier(OPENERS)
    processes = [context.Process(target=_open, args=(path, locked, barrier, results)) for _ in range(OPENERS)]
    if hold_seconds is not None:
        processes.append(context.Process(target=_hold_the_write_lock, args=(path, locked, hold_seconds)))
    else:
        locked.set()
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=90) for _ in range(OPENERS)]
    for process in processes:
        process.join(timeout=30)
    return outcomes


def test_opens_of_a_fresh_file_while_another_process_writes_it_all_succeed(tmp_path: Path) -> None:
    outcomes = _open_together(str(tmp_path / "fresh.db"), hold_seconds=0.5)
    failures = [outcome for outcome in outcomes if outcome != "ok"]
    assert not failures, f"{len(failures)} of {len(outcomes)} opens failed; first: {failures[0]}"


def test_many_simultaneous_opens_of_fresh_files_all_succeed(tmp_path: Path) -> None:
    outcomes = [o for n in range(5) for o in _open_together(str(tmp_path / f"fresh-{n}.db"), hold_seconds=None)]
    failures = [outcome for outcome in outcomes if outcome != "ok"]
    assert not failures, f"{len(failures)} of {len(outcomes)} opens failed; first: {failures[0]}"
