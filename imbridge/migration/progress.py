"""Progress per phase (items, rate, ETA): rich bars on a terminal, plain or JSON lines otherwise.

``rich`` draws the bars because a live multi-bar display that behaves on resize, in CI logs and with
other output is a solved problem there; it is imported only when bars are asked for (or the default
picks them on a terminal).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol, TextIO

MODES = ("auto", "rich", "plain", "json", "none")


class Task(Protocol):
    def advance(self, count: int = 1) -> None: ...
    def add_total(self, count: int) -> None: ...
    def finish(self) -> None: ...


class Progress(Protocol):
    def task(self, phase: str, total: int | None, done: int = 0) -> Task: ...
    def close(self) -> None: ...


def _eta(done: int, total: int | None, rate: float) -> float | None:
    if total is None or rate <= 0:
        return None
    return max(total - done, 0) / rate


class _LineTask:
    """Counts, and prints a line at most every ``interval`` seconds and once at the end."""

    def __init__(self, owner: _LineProgress, phase: str, total: int | None, done: int) -> None:
        self.owner, self.phase, self.total = owner, phase, total
        self.done = done
        self.start_done = done
        self.started = time.monotonic()
        self.last_print = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last_print >= self.owner.interval:
            self.last_print = now
            self.owner.emit(self._state("progress"))

    def add_total(self, count: int) -> None:
        self.total = (self.total or 0) + count

    def finish(self) -> None:
        self.owner.emit(self._state("done"))

    def _state(self, event: str) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        eta = _eta(self.done, self.total, rate)
        return {"event": event, "phase": self.phase, "done": self.done, "total": self.total,
                "rate": round(rate, 1), "eta_seconds": None if eta is None else round(eta, 1),
                "elapsed_seconds": round(elapsed, 2)}  # fmt: skip


class _LineProgress:
    def __init__(self, stream: TextIO, as_json: bool, interval: float) -> None:
        self.stream, self.as_json, self.interval = stream, as_json, interval

    def task(self, phase: str, total: int | None, done: int = 0) -> Task:
        return _LineTask(self, phase, total, done)

    def emit(self, state: dict[str, Any]) -> None:
        if self.as_json:
            line = json.dumps(state)
        else:
            total = "?" if state["total"] is None else state["total"]
            eta = "" if state["eta_seconds"] is None else f", ETA {state['eta_seconds']:.0f} s"
            verb = "done" if state["event"] == "done" else "…"
            line = f"{state['phase']}: {state['done']}/{total} ({state['rate']:.0f}/s{eta}) {verb}"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        return None


class _NoTask:
    def advance(self, count: int = 1) -> None:
        return None

    def add_total(self, count: int) -> None:
        return None

    def finish(self) -> None:
        return None


class _NoProgress:
    def task(self, phase: str, total: int | None, done: int = 0) -> Task:
        return _NoTask()

    def close(self) -> None:
        return None


class _RichTask:
    """A rich task that also shows its own items/s (rich's speed column needs a total to be useful)."""

    def __init__(self, bars: Any, task_id: Any, total: int | None, done: int) -> None:
        self.bars, self.task_id, self.total, self.done = bars, task_id, total, done
        self.started = time.monotonic()
        self.count = 0

    def advance(self, count: int = 1) -> None:
        self.count += count
        self.done += count
        rate = self.count / max(time.monotonic() - self.started, 1e-9)
        self.bars.update(self.task_id, advance=count, rate=f"{rate:,.0f}/s")

    def add_total(self, count: int) -> None:
        self.total = (self.total or 0) + count
        self.bars.update(self.task_id, total=self.total)

    def finish(self) -> None:
        self.bars.update(self.task_id, total=self.done, completed=self.done)


class _RichProgress:
    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bars = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("[cyan]{task.fields[rate]:>9}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=Console(file=stream), refresh_per_second=8,
        )  # fmt: skip
        self.bars.start()

    def task(self, phase: str, total: int | None, done: int = 0) -> Task:
        task_id = self.bars.add_task(phase, total=total, completed=done, rate="")
        return _RichTask(self.bars, task_id, total, done)

    def close(self) -> None:
        self.bars.stop()


def make_progress(mode: str = "auto", stream: TextIO | None = None, interval: float = 2.0) -> Progress:
    """``auto``: rich bars when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if mode not in MODES:
        raise ValueError(f"progress is one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        mode = "rich" if out.isatty() else "plain"
    if mode == "rich":
        return _RichProgress(out)
    if mode in ("plain", "json"):
        return _LineProgress(out, mode == "json", interval)
    return _NoProgress()
