"""Fixtures for the core tests: a fake clock, and one client fixture that runs each test body twice,
once on IMClient and once on AsyncIMClient."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from imbridge import AsyncIMClient, IMClient
from imbridge.testing import FakeClock

RESOURCES = frozenset({"users", "messages", "groups"})


class AsyncAsSync:
    """An AsyncIMClient (or one of its resources) called with the sync client's shape.

    Every coroutine it returns is run to completion on ``loop``; an async iterator (``iter_history``) is
    consumed lazily, one ``__anext__`` at a time. Nothing is re-implemented: each call reaches the real
    async method, so a test body written against IMClient exercises AsyncIMClient unchanged.
    """

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in RESOURCES:
            return AsyncAsSync(value, self._loop)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._loop.run_until_complete(result)
            if inspect.isasyncgen(result):
                return self._iterate(result)
            return result

        return call

    def _iterate(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        while True:
            try:
                yield self._loop.run_until_complete(iterator.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.run_until_complete(self._target.aclose())

    def __repr__(self) -> str:
        return repr(self._target)


OpenClient = Callable[..., Any]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_client(flavour: str, clock: FakeClock) -> Iterator[OpenClient]:
    """``open_client(**settings)``: a local client (sync, or async behind AsyncAsSync) on the fake clock;
    ``database`` defaults to ``:memory:``. Every client opened is closed at teardown."""
    loop = asyncio.new_event_loop()
    opened: list[Any] = []

    def open_(**settings: Any) -> Any:
        settings.setdefault("database", ":memory:")
        settings.setdefault("clock", clock)
        client: Any
        if flavour == "sync":
            client = IMClient("local", **settings)
        else:
            client = AsyncAsSync(AsyncIMClient("local", **settings), loop)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.close()
    loop.close()


@pytest.fixture
def im(open_client: OpenClient) -> Any:
    """A fresh in-memory local client, sync or async."""
    return open_client()


@pytest.fixture
def people(im: Any) -> Any:
    """``im`` with alice, bob, carol and dave registered."""
    im.users.register(["alice", "bob", "carol", "dave"])
    return im


@pytest.fixture
def team(people: Any) -> Any:
    """``people`` plus group ``team``: owner alice, admin bob, members carol and dave."""
    people.groups.create(name="Team", owner="alice", members=["carol", "dave"], admins=["bob"], group_id="team")
    return people
