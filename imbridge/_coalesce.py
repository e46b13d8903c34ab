"""Shared requests for concurrent flows on the async driver: the executor side of :class:`~imbridge._flow.Join`.

Group commit: per group, at most one combined request is in flight. The first Join of an idle group starts a
drain task at once (no timer, so a lone flow waits no longer than it would alone); every Join arriving while a
request of its group is in flight waits for the next one, which takes all of them. The busier the group, the
more each request carries; the request rate per group is bounded by one per round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from imbridge._flow import Join, Request
from imbridge.errors import IMBridgeError, ProviderError

#: What an item's answer is when the combined reply could not be split (a reply of the wrong shape).
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError)


class _Group:
    __slots__ = ("running", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Any, asyncio.Future[Any]]] = []
        self.running = False


class Coalescer:
    """The groups of one async executor. ``send(request, operation)`` performs one request (pacing, retries, error
    mapping), labelled with the operation of the flow that opened the group."""

    def __init__(self, send: Callable[[Request, str], Awaitable[Any]]) -> None:
        self._send = send
        self._groups: dict[Any, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones only)

    async def join(self, instruction: Join, operation: str) -> Any:
        """This flow's answer from the next combined request of its group (an error raised as the request's)."""
        group = self._groups.get(instruction.group)
        if group is None:
            group = self._groups[instruction.group] = _Group()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        group.waiting.append((instruction.item, future))
        if not group.running:
            group.running = True
            task = asyncio.create_task(self._drain(instruction.group, group, instruction.combine, operation))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(
        self, key: Any, group: _Group, combine: Callable[[list[Any]], tuple[Request, Callable[[Any], list[Any]]]],
        operation: str,
    ) -> None:  # fmt: skip
        try:
            while group.waiting:
                batch, group.waiting = group.waiting, []
                batch = [(item, future) for item, future in batch if not future.done()]  # a cancelled caller
                if not batch:
                    continue
                try:
                    request, split = combine([item for item, _ in batch])
                    answers = split(await self._send(request, operation))
                    if len(answers) != len(batch):
                        raise ValueError(f"{len(answers)} answers for {len(batch)} items")
                except IMBridgeError as error:
                    answers = [error] * len(batch)
                except _SHAPE_ERRORS as exc:
                    answers = [ProviderError(f"unexpected response shape: {type(exc).__name__}: {exc}")] * len(batch)
                except BaseException as exc:  # cancelled, or a defect: no waiting flow is left hanging
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, IMBridgeError):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            group.running = False
            if group.waiting:  # only if the loop above ended by an exception: nobody must wait forever
                for _, future in group.waiting:
                    if not future.done():
                        future.set_exception(ProviderError("a shared request ended without an answer"))
                group.waiting = []
            if self._groups.get(key) is group:
                del self._groups[key]
