"""Retry-After, whatever its value, on both providers and every driver (issue 13, point 6).

A ``Retry-After`` of ``1e15``, ``inf`` or ``1e300`` used to raise a bare OverflowError (timedelta cannot hold
it) on 429 and 503, on both providers and both drivers; a legitimate ``1e9`` blocked each call about 120 s
under the default policy. Now every value gives the mapped IMBridgeError, and the time one call spends
waiting between attempts never exceeds ``RetryPolicy.max_total_wait`` (30 s by default), which the caller
sets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, IMClient, NotFoundError, RateLimitError, RetryPolicy, ServiceUnavailableError
from imbridge._flow import Response
from imbridge.testing import FakeClock

SETTINGS = {
    "tencent": {"sdk_app_id": 1400000000, "secret_key": "k" * 64},
    "wukong": {"manager_token": "t" * 16, "store": ""},
}
HUGE = ["1e15", "inf", "1e300", "-inf", "1e9", "99999999999999999999999", "nan", "-5", "Fri, 31 Dec 9999 23:59:59 GMT"]
ERRORS = {429: RateLimitError, 503: ServiceUnavailableError}
DEFAULT_BUDGET = 30.0  # RetryPolicy().max_total_wait


def _operation(provider: str) -> Any:
    """A call both drivers make with one replay-safe request per attempt."""
    if provider == "tencent":
        return lambda im: im.groups.get("g1")  # POST get_group_info
    return lambda im: im.groups.get("g1")  # GET /cluster/channels


class Refusing:
    """A server that answers every request with ``status`` and ``Retry-After: value``."""

    def __init__(self, status: int, value: str) -> None:
        self.status, self.value, self.requests = status, value, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(self.status, headers={"Retry-After": self.value}, content=b"busy")


@pytest.fixture
def loopback() -> Iterator[dict[str, Any]]:
    """A real HTTP server on 127.0.0.1 for the aiohttp driver; ``state`` sets its answer."""
    state: dict[str, Any] = {"status": 429, "value": "1", "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            state["requests"] += 1
            self.send_response(state["status"])
            self.send_header("Retry-After", state["value"])
            self.send_header("content-length", "4")
            self.end_headers()
            self.wfile.write(b"busy")

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


def _client(provider: str, answer: Any, clock: FakeClock, **options: Any) -> IMClient:
    http = httpx.Client(transport=httpx.MockTransport(answer))
    return IMClient(provider, http_client=http, clock=clock, base_url="http://im.test", **options,
                    **SETTINGS[provider])  # fmt: skip


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_sync_httpx(provider: str, status: int, value: str) -> None:
    server, clock = Refusing(status, value), _clock()
    with _client(provider, server, clock) as im, pytest.raises(ERRORS[status]):
        _operation(provider)(im)
    assert sum(clock.sleeps) <= DEFAULT_BUDGET
    assert 1 <= server.requests <= 3


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_async_injected_httpx(provider: str, status: int, value: str) -> None:
    server, clock = Refusing(status, value), _clock()

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
            im = AsyncIMClient(provider, http_client=http, clock=clock, base_url="http://im.test", **SETTINGS[provider])
            async with im:
                with pytest.raises(ERRORS[status]):
                    await _operation(provider)(im)

    asyncio.run(run())
    assert sum(clock.sleeps) <= DEFAULT_BUDGET


@pytest.mark.parametrize("value", ["1e15", "inf", "1e300", "1e9", "nan"])
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_async_aiohttp(provider: str, status: int, value: str, loopback: dict[str, Any]) -> None:
    loopback.update(status=status, value=value)
    clock = _clock()

    async def run() -> None:
        async with AsyncIMClient(provider, clock=clock, base_url=loopback["url"], **SETTINGS[provider]) as im:
            with pytest.raises(ERRORS[status]):
                await _operation(provider)(im)

    asyncio.run(run())
    assert sum(clock.sleeps) <= DEFAULT_BUDGET
    assert loopback["requests"] >= 1


@pytest.mark.parametrize("value", ["1e15", "inf", "1e300", "1e9"])
def test_a_retry_after_beyond_the_budget_fails_the_call_at_once(value: str) -> None:
    """The default policy waits at most 30 s per call: asked for more, it raises now, with the hint."""
    server, clock = Refusing(429, value), _clock()
    with _client("wukong", server, clock) as im, pytest.raises(RateLimitError) as info:
        im.groups.get("g1")
    assert server.requests == 1 and clock.sleeps == []
    assert info.value.retry_after is not None and info.value.retry_after > timedelta(seconds=30)


def test_the_caller_sets_the_budget() -> None:
    """A larger budget: each wait is capped at max_retry_after, and all of them together at max_total_wait."""
    server, clock = Refusing(429, "1e9"), _clock()
    policy = RetryPolicy(max_attempts=5, max_retry_after=40, max_total_wait=100)
    with _client("wukong", server, clock, retry=policy) as im, pytest.raises(RateLimitError):
        im.groups.get("g1")
    assert clock.sleeps == [40.0, 40.0]  # a third wait of 40 would pass 100 s: the call stops
    assert server.requests == 3


def test_a_short_retry_after_is_honoured() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"data": []})])
    clock = _clock()
    # The channel is unknown (NotFoundError): what matters is the wait before that answer.
    with _client("wukong", lambda _request: next(answers), clock) as im, pytest.raises(NotFoundError):
        im.groups.get("g1")
    assert clock.sleeps == [2.0]


YEAR = timedelta(days=365)  # imbridge._flow.MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1e15", YEAR), ("inf", YEAR), ("1e300", YEAR), ("-5", timedelta(0)), ("7", timedelta(seconds=7)),
     ("nan", None), ("soon", None), ("Fri, 31 Dec 9999 23:59:59 GMT", YEAR)],
)  # fmt: skip
def test_retry_after_header_reads_within_bounds(value: str, expected: timedelta | None) -> None:
    assert Response(429, {"Retry-After": value}, b"").retry_after() == expected


def test_the_bound_is_the_one_documented() -> None:
    from imbridge._flow import MAX_RETRY_AFTER

    assert MAX_RETRY_AFTER == YEAR
