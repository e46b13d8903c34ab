"""The async driver's shared requests (imbridge/_coalesce.py) wake the flows one reply answers a few at a time.

Woken all at once, the confirmed sends of a channel left, were answered and waited together: one convoy, with the
client idle while its read was out (benchmarks/RESULTS.md, "Issue 19, seventh round"). These tests drive the
Coalescer itself with a server stand-in that answers every item, and watch when each flow is woken, counted in
event-loop iterations (a ticker re-scheduled on every iteration), so no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from imbridge._clock import SystemClock
from imbridge._coalesce import WAKE_AT_ONCE, Coalescer
from imbridge._flow import Join, Request
from imbridge.errors import ProviderError


class _Ticker:
    """Counts event-loop iterations while it runs."""

    def __init__(self) -> None:
        self.iterations = 0
        self._running = True

    def start(self) -> None:
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.iterations += 1
        if self._running:
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._running = False


def _combine(items: list[Any]) -> tuple[Request, Any]:
    return Request("POST", "/read", json=list(items)), lambda reply: [f"stored {item}" for item in reply]


def _joined(count: int, failure: Exception | None = None) -> tuple[asyncio.Event, list[asyncio.Future[Any]]]:
    """``count`` flows joined to one group at once (its drain task starts only when the caller yields, so its one
    request carries them all), and the event that lets that request be answered: each item stored, or ``failure``."""
    release = asyncio.Event()

    async def send(request: Request, operation: str) -> Any:
        await release.wait()
        if failure is not None:
            raise failure
        return request.json

    coalescer = Coalescer(send, SystemClock())
    return release, [coalescer.join(Join("channel", number, _combine), "messages.send") for number in range(count)]


async def _answered_in_one_reply(count: int) -> tuple[list[Any], list[int]]:
    """Each flow's answer and the loop iteration it was woken in, for ``count`` flows answered by one reply."""
    release, futures = _joined(count)
    ticker = _Ticker()
    woken_at: list[int] = [-1] * count
    for number, future in enumerate(futures):
        future.add_done_callback(lambda _f, number=number: woken_at.__setitem__(number, ticker.iterations))
    await asyncio.sleep(0)  # the drain task takes every waiting flow into its request
    ticker.start()
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=5)
    ticker.stop()
    return answers, woken_at


async def test_one_reply_wakes_its_flows_a_few_at_a_time_and_answers_each() -> None:
    answers, woken_at = await _answered_in_one_reply(3 * WAKE_AT_ONCE + 2)

    assert answers == [f"stored {number}" for number in range(3 * WAKE_AT_ONCE + 2)]
    steps = sorted(set(woken_at))
    assert [woken_at.count(step) for step in steps] == [WAKE_AT_ONCE, WAKE_AT_ONCE, WAKE_AT_ONCE, 2], woken_at
    assert woken_at == sorted(woken_at)  # in the order they joined


async def test_a_reply_for_a_few_flows_wakes_them_together() -> None:
    answers, woken_at = await _answered_in_one_reply(WAKE_AT_ONCE)

    assert answers == [f"stored {number}" for number in range(WAKE_AT_ONCE)]
    assert len(set(woken_at)) == 1, woken_at


async def test_an_error_reaches_every_flow_of_the_request_at_once() -> None:
    error = ProviderError("the read failed")
    release, futures = _joined(30, error)
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=5)
    assert all(outcome is error for outcome in outcomes)


async def test_a_flow_whose_caller_gives_up_between_steps_is_skipped_and_the_others_are_answered() -> None:
    release, futures = _joined(20)
    # Given up once the reply has come and the first step is woken: its answer is still scheduled (third step).
    futures[0].add_done_callback(lambda _f: futures[17].cancel())
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=5)
    assert isinstance(outcomes[17], asyncio.CancelledError)
    assert [outcome for number, outcome in enumerate(outcomes) if number != 17] == [
        f"stored {number}" for number in range(20) if number != 17
    ]
