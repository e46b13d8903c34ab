"""A migrated message whose send may have landed is looked up again later, never sent twice (issue 13, point 1)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from migration_support import World

from imbridge.emulators._base import EmulatorTransport
from imbridge.migration import Migration, MigrationOptions


class Holding(httpx.AsyncBaseTransport):
    """The WuKongIM emulator, except that the ``nth`` message send is held on its way: the client times out at
    once, and the request reaches the server ``hold`` seconds later (None: never, it was lost)."""

    def __init__(self, inner: EmulatorTransport, nth: int, hold: float | None) -> None:
        self.inner, self.nth, self.hold, self.sends = inner, nth, hold, 0
        self.delivered = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/message/send":
            self.sends += 1
            if self.sends == self.nth:
                await request.aread()
                if self.hold is not None:
                    timer = threading.Timer(self.hold, self._deliver, [request])
                    timer.daemon = True
                    timer.start()
                raise httpx.ReadTimeout("held on the way", request=request)
        return await self.inner.handle_async_request(request)

    def _deliver(self, request: httpx.Request) -> None:
        self.inner.handle_request(request)
        self.delivered.set()


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World.make(tmp_path, store_delay=1)
    yield w
    w.close()


def _check_once(world: World, migration: Migration) -> None:
    expected = world.expected()
    actual = world.actual(list(expected))
    assert all(count == 1 for ids in actual.values() for count in Counter(ids).values()), "a message stored twice"
    assert actual == expected
    assert migration.verify()["ok"]


def test_a_send_landing_late_is_found_not_sent_again(world: World, tmp_path: Path) -> None:
    """Held past the send's recovery lookups, delivered while the migration looks it up again."""
    holding = Holding(world.wukong.transport(), nth=5, hold=2.0)
    m = Migration(world.source(), world.target(holding), str(tmp_path / "state.db"), MigrationOptions(concurrency=2))
    status = m.run(world.users())
    assert holding.delivered.is_set()
    assert status["complete"], m.failures()
    _check_once(world, m)
    m.close()


def test_a_send_never_found_fails_its_channel_as_uncertain_then_is_taken_up_again(
    world: World, tmp_path: Path
) -> None:
    """Lost on the way: the in-run lookups find nothing, and the channel is taken up again under its claim
    once uncertain_wait has passed: the key is looked up, then sent once."""
    holding = Holding(world.wukong.transport(), nth=5, hold=None)
    options = MigrationOptions(concurrency=2, uncertain_wait=0.5)
    m = Migration(world.source(), world.target(holding), str(tmp_path / "state.db"), options)
    status = m.run(world.users())
    assert status["complete"], m.failures()
    _check_once(world, m)
    m.close()


def test_the_uncertain_wait_is_a_bounded_number_of_seconds() -> None:
    from imbridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        MigrationOptions(uncertain_wait=-1)
