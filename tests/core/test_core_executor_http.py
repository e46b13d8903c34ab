"""The executor over HTTP, through the public API, on every driver.

Each test runs three ways: the sync client on httpx, the async client on an injected
``httpx.AsyncClient`` (both through ``httpx.MockTransport``), and the async client on its default aiohttp
driver against a real HTTP server on 127.0.0.1 answering the same script. Waits go to a FakeClock, so
backoff and Retry-After are asserted exactly and nothing really sleeps.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from imbridge import (
    AsyncIMClient,
    Conversation,
    IMClient,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    UnsupportedOperationError,
)
from imbridge.emulators import EmulatorReply, EmulatorRequest, serve
from imbridge.testing import FakeClock

DRIVERS = ["sync-httpx", "async-httpx", "async-aiohttp"]
TENCENT = {"sdk_app_id": 1400000000, "secret_key": "k" * 64, "admin": "administrator"}


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Script:
    """Answers requests in order (the last answer repeats) and remembers every request it saw."""

    answers: list[Answer]
    seen: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.seen.append((method, path, query, json.loads(body) if body else None))
            return self.answers[min(len(self.seen), len(self.answers)) - 1]

    # httpx.MockTransport handler
    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = self.next(request.method, request.url.path, dict(request.url.params), request.read())
        content = json.dumps(answer.body).encode() if answer.body is not None else b""
        return httpx.Response(answer.status, headers=answer.headers, content=content)

    # the loopback server's handler (imbridge.emulators.serve)
    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        answer = self.next(request.method, request.path, dict(request.query), request.body)
        content = json.dumps(answer.body).encode() if answer.body is not None else b""
        return EmulatorReply(answer.status, content, {"content-type": "application/json", **answer.headers})


Run = Callable[[Callable[[Any], Any]], Any]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _runner(
    driver: str, provider: str, settings: dict[str, Any], script: Script, clock: FakeClock, retry: RetryPolicy
) -> Iterator[Run]:
    """Yields ``run(operation)``: builds the client for ``driver`` and performs ``operation(client)``."""
    if driver == "sync-httpx":

        def run_sync(operation: Callable[[Any], Any]) -> Any:
            http = httpx.Client(transport=httpx.MockTransport(script))
            with IMClient(
                provider, http_client=http, retry=retry, clock=clock, base_url="http://im.test", **settings
            ) as im:
                return operation(im)

        yield run_sync
        return

    def run_async(operation: Callable[[Any], Any], base_url: str, http: httpx.AsyncClient | None) -> Any:
        async def scenario() -> Any:
            async with AsyncIMClient(
                provider, http_client=http, retry=retry, clock=clock, base_url=base_url, **settings
            ) as im:
                return await operation(im)

        return asyncio.run(scenario())

    if driver == "async-httpx":
        yield lambda operation: run_async(
            operation, "http://im.test", httpx.AsyncClient(transport=httpx.MockTransport(script))
        )
        return
    with serve(script) as server:
        yield lambda operation: run_async(operation, server.url, None)


@pytest.fixture
def wukong(driver: str, clock: FakeClock) -> Iterator[Callable[..., tuple[Run, Script]]]:
    made: list[Iterator[Run]] = []

    def make(*answers: Answer, retry: RetryPolicy | None = None) -> tuple[Run, Script]:
        script = Script(list(answers))
        runs = _runner(driver, "wukong", {"store": ""}, script, clock, retry or RetryPolicy(max_attempts=3))
        made.append(runs)
        return next(runs), script

    yield make
    for runs in made:
        runs.close()


def _health(im: Any) -> Any:
    return im.provider.call("GET", "/health")


OK = Answer(200, {"status": "ok"})


def test_retryable_errors_are_retried_until_success(
    wukong: Callable[..., tuple[Run, Script]], clock: FakeClock
) -> None:
    run, script = wukong(Answer(503, {"msg": "busy"}), Answer(502), OK)
    assert run(_health) == {"status": "ok"}
    assert len(script.seen) == 3
    assert len(clock.sleeps) == 2  # a backoff before each retry


def test_non_retryable_error_is_not_retried(wukong: Callable[..., tuple[Run, Script]], clock: FakeClock) -> None:
    run, script = wukong(Answer(400, {"msg": "channel_id不能为空\uff01", "status": 400}), OK)
    with pytest.raises(InvalidRequestError) as caught:
        run(_health)
    assert len(script.seen) == 1
    assert caught.value.attempts == 1 and clock.sleeps == []


def test_retries_stop_at_max_attempts_and_the_error_counts_them(wukong: Callable[..., tuple[Run, Script]]) -> None:
    run, script = wukong(Answer(503), retry=RetryPolicy(max_attempts=4, initial_backoff=0.1))
    with pytest.raises(ServiceUnavailableError) as caught:
        run(_health)
    assert len(script.seen) == 4 and caught.value.attempts == 4
    assert "attempts=4" in str(caught.value) and "wukong" in str(caught.value)


def test_backoff_grows_exponentially_without_jitter(
    wukong: Callable[..., tuple[Run, Script]], clock: FakeClock
) -> None:
    run, _ = wukong(Answer(503), retry=RetryPolicy(max_attempts=4, initial_backoff=0.5, max_backoff=1.5, jitter=False))
    with pytest.raises(ServiceUnavailableError):
        run(_health)
    assert clock.sleeps == [0.5, 1.0, 1.5]


def test_retry_after_is_honoured(wukong: Callable[..., tuple[Run, Script]], clock: FakeClock) -> None:
    run, script = wukong(Answer(429, {"msg": "slow down"}, {"Retry-After": "7"}), OK)
    assert run(_health) == {"status": "ok"}
    assert clock.sleeps == [7.0] and len(script.seen) == 2


def test_retry_after_is_capped(wukong: Callable[..., tuple[Run, Script]], clock: FakeClock) -> None:
    run, _ = wukong(Answer(429, None, {"Retry-After": "500"}), OK, retry=RetryPolicy(max_retry_after=30))
    run(_health)
    assert clock.sleeps == [30.0]


def test_rate_limit_without_retry_after_backs_off(wukong: Callable[..., tuple[Run, Script]], clock: FakeClock) -> None:
    run, _ = wukong(Answer(429), retry=RetryPolicy(max_attempts=2, initial_backoff=0.25, jitter=False))
    with pytest.raises(RateLimitError) as caught:
        run(_health)
    assert caught.value.retry_after is None and clock.sleeps == [0.25]


def test_unsupported_operation_sends_nothing(wukong: Callable[..., tuple[Run, Script]]) -> None:
    run, script = wukong(OK)  # no store: WuKongIM keeps no profiles, so set_profile is UNSUPPORTED

    def set_profile(im: Any) -> Any:
        return im.users.set_profile("alice", nickname="A")

    with pytest.raises(UnsupportedOperationError):
        run(set_profile)
    assert script.seen == []


def test_dedupe_key_is_identical_on_every_attempt(driver: str, clock: FakeClock) -> None:
    # Tencent deduplicates sends by MsgRandom (C2C): every retry must carry the one chosen before the first.
    ok = Answer(200, {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MsgTime": 1700000000, "MsgKey": "1_2_3"})
    network_exception = Answer(200, {"ActionStatus": "FAIL", "ErrorCode": 20004, "ErrorInfo": "network exception"})
    script = Script([network_exception, Answer(503), ok])
    runs = _runner(driver, "tencent", TENCENT, script, clock, RetryPolicy(max_attempts=3))
    run = next(runs)

    def send(im: Any) -> Any:
        return im.messages.send("alice", Conversation.user("bob"), "hi")

    sent = run(send)
    runs.close()
    bodies = [body for _, path, _, body in script.seen if path.endswith("/sendmsg")]
    assert len(bodies) == 3
    assert len({(body["MsgRandom"], body["MsgSeq"]) for body in bodies}) == 1
    assert sent.ref.key == "1_2_3"


def test_a_malformed_reply_to_a_fanned_out_request_is_an_imbridge_error(driver: str, clock: FakeClock) -> None:
    """Bulk operations fan requests out (a Gather); a reply of the wrong shape read after the fan-out is a
    ProviderError like any other malformed reply, never a raw pydantic error (found by the response property
    test: ``FailAccounts: null`` in a multiaccount_import answer)."""
    script = Script([Answer(200, {"ActionStatus": "OK", "ErrorCode": 0, "FailAccounts": None})])
    runs = _runner(driver, "tencent", TENCENT, script, clock, RetryPolicy(max_attempts=1))
    run = next(runs)
    try:

        def register(im: Any) -> Any:
            return im.users.register(["alice", "bob"])

        with pytest.raises(ProviderError, match="unexpected response shape"):
            run(register)
    finally:
        runs.close()
