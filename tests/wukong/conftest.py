"""Fixtures for the WuKongIM provider tests: a fake clock, the in-memory fake server, clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from wukong_fake import TOKEN, FakeWukong

from imbridge import IMClient
from imbridge.retry import RetryPolicy


class FakeClock:
    """now()/monotonic() advance only when told to, or by what the client sleeps."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.moment.timestamp()

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> FakeWukong:
    return FakeWukong()


@pytest.fixture
def make_client(server: FakeWukong, clock: FakeClock, tmp_path: Path) -> Iterator[object]:
    made: list[IMClient] = []

    def make(**settings: object) -> IMClient:
        options: dict[str, object] = {
            "base_url": "http://wk.test", "manager_token": TOKEN, "store": str(tmp_path / "wk.db"),
            "policy_cache_seconds": 0, **settings,
        }  # fmt: skip
        client = IMClient(
            "wukong", http_client=httpx.Client(transport=httpx.MockTransport(server)),
            retry=RetryPolicy(initial_backoff=0, max_attempts=3), clock=clock, **options,
        )  # fmt: skip
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
