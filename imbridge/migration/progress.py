"""Progress per phase (items, rate, ETA): rich bars on a terminal, plain or JSON lines otherwise.

``rich`` draws the bars because a live multi-bar display that behaves on resize, in CI logs and with
other output is a solved problem there; it is imported only when bars are asked for (or the default
picks them on a terminal).

The rate behind an ETA is smoothed (an exponentially weighted average with a time constant of
:data:`RATE_TIME_CONSTANT` seconds), so a burst or a stall moves the ETA gradually. A task whose items are
of very different sizes (history channels: a group of thousands of messages, a pair of three) shows no
ETA of its own; its ETA is that of the task that counts the work (messages). A total that is an estimate
(a plan's message count) is shown as ``~N``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

MODES = ("auto", "rich", "plain", "json", "none")
#: Seconds over which the rate behind an ETA is averaged (older samples weigh e times less per period).
RATE_TIME_CONSTANT = 20.0
#: The smoothed rate takes a new sample at most this often (a sample over a shorter span is noise).
MIN_SAMPLE_SECONDS = 0.5

Clock = Callable[[], float]


class Task(Protocol):
    def advance(self, count: int = 1) -> None: ...
    def add_total(self, count: int) -> None: ...
    def finish(self) -> None: ...


class Progress(Protocol):
    def task(
        self, phase: str, total: int | None, done: int = 0, *, eta: bool = True, estimated: bool = False
    ) -> Task: ...
    def close(self) -> None: ...


class _Counter:
    """Done, total and a smoothed rate: what every display shows."""

    def __init__(self, phase: str, total: int | None, done: int, eta: bool, estimated: bool, clock: Clock) -> None:
        self.phase, self.total, self.done, self.eta, self.estimated, self.clock = (
            phase,
            total,
            done,
            eta,
            estimated,
            clock,
        )
        self.started = self.sampled_at = clock()
        self.sampled_done = done
        self.rate: float | None = None

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        span = now - self.sampled_at
        if span >= MIN_SAMPLE_SECONDS:
            sample = (self.done - self.sampled_done) / span
            if self.rate is None:
                self.rate = sample
            else:  # exponential smoothing over time: weights decay with elapsed seconds, not with samples
                self.rate += (1 - math.exp(-span / RATE_TIME_CONSTANT)) * (sample - self.rate)
            self.sampled_at, self.sampled_done = now, self.done

    def add_total(self, count: int) -> None:
        self.total = max((self.total or 0) + count, self.done)

    def eta_seconds(self) -> float | None:
        if not self.eta or self.total is None or not self.rate or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def total_text(self) -> str:
        if self.total is None:
            return "?"
        return f"~{self.total}" if self.estimated else str(self.total)

    def state(self, event: str) -> dict[str, Any]:
        eta = self.eta_seconds()
        elapsed = self.clock() - self.started
        # before the first sample (a task shorter than MIN_SAMPLE_SECONDS): the plain average
        rate = self.rate if self.rate is not None else (self.done - self.sampled_done) / max(elapsed, 1e-9)
        return {"event": event, "phase": self.phase, "done": self.done, "total": self.total,
                "total_estimated": self.estimated, "rate": round(rate, 1),
                "eta_seconds": None if eta is None else round(eta, 1),
                "elapsed_seconds": round(elapsed, 2)}  # fmt: skip


class _LineTask:
    """Counts, and prints a line at most every ``interval`` seconds and once at the end."""

    def __init__(self, owner: _LineProgress, counter: _Counter) -> None:
        self.owner, self.counter = owner, counter
        self.last_print = counter.started

    def advance(self, count: int = 1) -> None:
        self.counter.advance(count)
        now = self.counter.clock()
        if now - self.last_print >= self.owner.interval:
            self.last_print = now
            self.owner.emit(self.counter, "progress")

    def add_total(self, count: int) -> None:
        self.counter.add_total(count)

    def finish(self) -> None:
        self.owner.emit(self.counter, "done")


class _LineProgress:
    def __init__(self, stream: TextIO, as_json: bool, interval: float, clock: Clock) -> None:
        self.stream, self.as_json, self.interval, self.clock = stream, as_json, interval, clock

    def task(self, phase: str, total: int | None, done: int = 0, *, eta: bool = True, estimated: bool = False) -> Task:
        return _LineTask(self, _Counter(phase, total, done, eta, estimated, self.clock))

    def emit(self, counter: _Counter, event: str) -> None:
        state = counter.state(event)
        if self.as_json:
            line = json.dumps(state)
        else:
            eta = "" if state["eta_seconds"] is None else f", ETA {state['eta_seconds']:.0f} s"
            verb = "done" if event == "done" else "…"
            line = f"{counter.phase}: {counter.done}/{counter.total_text()} ({state['rate']:.0f}/s{eta}) {verb}"
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
    def task(self, phase: str, total: int | None, done: int = 0, *, eta: bool = True, estimated: bool = False) -> Task:
        return _NoTask()

    def close(self) -> None:
        return None


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class _RichTask:
    """A rich bar fed with our counter: the same totals, rate and ETA as the line modes."""

    def __init__(self, bars: Any, task_id: Any, counter: _Counter) -> None:
        self.bars, self.task_id, self.counter = bars, task_id, counter
        self._show()

    def _show(self, **extra: Any) -> None:
        rate = self.counter.rate
        self.bars.update(self.task_id, completed=self.counter.done, total=self.counter.total,
                         count=f"{self.counter.done}/{self.counter.total_text()}",
                         rate="" if rate is None else f"{rate:,.0f}/s",
                         eta=_clock_text(self.counter.eta_seconds()), **extra)  # fmt: skip

    def advance(self, count: int = 1) -> None:
        self.counter.advance(count)
        self._show()

    def add_total(self, count: int) -> None:
        self.counter.add_total(count)
        self._show()

    def finish(self) -> None:
        self.counter.total = self.counter.done
        self.counter.estimated = False
        self._show()


class _RichProgress:
    def __init__(self, stream: TextIO, clock: Clock) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.clock = clock
        self.bars = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(), TextColumn("{task.fields[count]:>13}"),
            TaskProgressColumn(), TextColumn("[cyan]{task.fields[rate]:>9}"), TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"), console=Console(file=stream), refresh_per_second=8,
        )  # fmt: skip
        self.bars.start()

    def task(self, phase: str, total: int | None, done: int = 0, *, eta: bool = True, estimated: bool = False) -> Task:
        task_id = self.bars.add_task(phase, total=total, completed=done, rate="", count="", eta="")
        return _RichTask(self.bars, task_id, _Counter(phase, total, done, eta, estimated, self.clock))

    def close(self) -> None:
        self.bars.stop()


def make_progress(
    mode: str = "auto", stream: TextIO | None = None, interval: float = 2.0, *, clock: Clock = time.monotonic
) -> Progress:
    """``auto``: rich bars when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if mode not in MODES:
        raise ValueError(f"progress is one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        mode = "rich" if out.isatty() else "plain"
    if mode == "rich":
        return _RichProgress(out, clock)
    if mode in ("plain", "json"):
        return _LineProgress(out, mode == "json", interval, clock)
    return _NoProgress()
