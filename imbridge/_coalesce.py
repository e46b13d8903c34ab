"""Shared requests for concurrent flows on the async driver: the executor side of :class:`~imbridge._flow.Join`.

Group commit: per group, at most one combined request is in flight. The first Join of an idle group starts a
drain task at once (no timer, so a lone flow waits no longer than it would alone); every Join arriving while a
request of its group is in flight waits for the next one, which takes all of them. The busier the group, the
more each request carries; the request rate per group is bounded by one per round trip.

An item its request did not settle (``split`` answered KEEP_WAITING: a message not stored yet) stays in the
group for the next request until its ``wait`` runs out, so a flow is woken once, with its answer, instead of
polling. While only such items wait (nothing new joined), the next request comes after a pause that doubles
from MIN_PAUSE up to MAX_PAUSE, and goes back to none once something is settled or joins.

The flows one reply answers are woken WAKE_AT_ONCE at a time, WAKE_SPACING apart, not all at once. Woken together,
64 confirmed sends left together, were answered together and waited together for the next read: the sends on a
channel moved as one convoy, the client idled while its read was out, and the bursts of objects made and freed
cost an extra full garbage collection every ~2,000 sends. Spread, they keep the client busy (benchmarks/RESULTS.md,
"Issue 19, seventh round"). An error is delivered at once: nothing follows it that could leave in a burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from imbridge._clock import Clock
from imbridge._flow import KEEP_WAITING, Join, Request
from imbridge.errors import IMBridgeError, ProviderError

#: What an item's answer is when the combined reply could not be split (a reply of the wrong shape).
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError)
MIN_PAUSE = 0.001
MAX_PAUSE = 0.05
#: How many flows one reply wakes per step, and the time between steps: 8 every 0.125 ms (about one send's CPU)
#: is 64,000 a second, far above what one client process sends, so the spreading adds at most 0.875 ms to the
#: 64th flow of a reply and never limits the rate (measured: 4 or 16 at a time did worse; see the module doc).
WAKE_AT_ONCE = 8
WAKE_SPACING = 0.000125

Combine = Callable[[list[Any]], tuple[Request | None, Callable[[Any], list[Any]]]]


def _wake(answered: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, answer in answered:
        if not future.done():  # its caller gave up meanwhile
            future.set_result(answer)


def _wake_spread(answered: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """Answer the first WAKE_AT_ONCE flows now and the others WAKE_AT_ONCE at a time, WAKE_SPACING apart."""
    _wake(answered[:WAKE_AT_ONCE])
    if len(answered) > WAKE_AT_ONCE:
        loop = asyncio.get_running_loop()
        for step, start in enumerate(range(WAKE_AT_ONCE, len(answered), WAKE_AT_ONCE), start=1):
            loop.call_later(WAKE_SPACING * step, _wake, answered[start : start + WAKE_AT_ONCE])


class _Waiter:
    __slots__ = ("deadline", "future", "item", "new")

    def __init__(self, item: Any, future: asyncio.Future[Any], deadline: float) -> None:
        self.item, self.future, self.deadline, self.new = item, future, deadline, True


class _Group:
    __slots__ = ("running", "waiting")

    def __init__(self) -> None:
        self.waiting: list[_Waiter] = []
        self.running = False


class Coalescer:
    """The groups of one async executor. ``send(request, operation)`` performs one request (pacing, retries, error
    mapping), labelled with the operation of the flow that opened the group; ``clock`` times waits and pauses."""

    def __init__(self, send: Callable[[Request, str], Awaitable[Any]], clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._groups: dict[Any, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones only)

    def join(self, instruction: Join, operation: str) -> asyncio.Future[Any]:
        """The future of this flow's answer from its group's combined requests (an error set as the request's).
        A future rather than a coroutine: one object less alive per waiting flow."""
        group = self._groups.get(instruction.group)
        if group is None:
            group = self._groups[instruction.group] = _Group()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        group.waiting.append(_Waiter(instruction.item, future, self._clock.monotonic() + instruction.wait))
        if not group.running:
            group.running = True
            task = asyncio.create_task(self._drain(instruction.group, group, instruction.combine, operation))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _drain(self, key: Any, group: _Group, combine: Combine, operation: str) -> None:
        pause = 0.0
        batch: list[_Waiter] = []
        try:
            while group.waiting:
                batch = [waiter for waiter in group.waiting if not waiter.future.done()]  # a cancelled caller
                group.waiting = []
                if not batch:
                    continue
                settled = any(waiter.new for waiter in batch)
                for waiter in batch:
                    waiter.new = False
                answers = await self._ask(combine, [waiter.item for waiter in batch], operation)
                now = self._clock.monotonic()
                answered: list[tuple[asyncio.Future[Any], Any]] = []
                for waiter, answer in zip(batch, answers, strict=True):
                    if waiter.future.done():
                        continue
                    if answer is KEEP_WAITING:
                        if now < waiter.deadline:
                            group.waiting.append(waiter)
                            continue
                        answer = None
                    settled = True
                    if isinstance(answer, IMBridgeError):
                        waiter.future.set_exception(answer)
                    else:
                        answered.append((waiter.future, answer))
                batch = []  # each is answered, scheduled to be, or waiting again: nothing is left to fail on cancel
                _wake_spread(answered)
                if group.waiting and not any(waiter.new for waiter in group.waiting):
                    # Only items this request did not settle: ask again after a pause, longer each time in vain.
                    pause = MIN_PAUSE if settled else min(max(pause * 2, MIN_PAUSE), MAX_PAUSE)
                    await self._clock.asleep(pause)
        except BaseException as exc:  # cancelled, or a defect: no waiting flow is left hanging
            for waiter in batch + group.waiting:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            group.waiting = []
            raise
        finally:
            group.running = False
            if self._groups.get(key) is group and not group.waiting:
                del self._groups[key]

    async def _ask(self, combine: Combine, items: list[Any], operation: str) -> list[Any]:
        """One answer per item from one combined request: its share of the reply, or the request's error."""
        try:
            request, split = combine(items)
            # No request: what the group's earlier requests showed answers every item (split(None)).
            answers = split(await self._send(request, operation) if request is not None else None)
            if len(answers) != len(items):
                raise ValueError(f"{len(answers)} answers for {len(items)} items")
            return answers
        except IMBridgeError as error:
            return [error] * len(items)
        except _SHAPE_ERRORS as exc:
            return [ProviderError(f"unexpected response shape: {type(exc).__name__}: {exc}")] * len(items)
