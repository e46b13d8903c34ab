"""The proxy's faults do what they say (what reaches the server, what the client sees), and the executor's
final error tells when an earlier attempt may have landed."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from imbridge import Conversation, IMClient
from imbridge.emulators import EmulatorReply, EmulatorRequest, serve
from imbridge.errors import MessageMayHaveLandedError, RateLimitError, TransportError
from imbridge.retry import RetryPolicy
from imbridge.testing.faults import Fault, FaultPlan, FaultProxy


class Counter:
    """An upstream that counts what reached it and answers a small JSON object."""

    def __init__(self) -> None:
        self.seen = 0

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        self.seen += 1
        return EmulatorReply.json({"status": 200, "n": self.seen})


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Counter, str]]:
    counter = Counter()
    with serve(counter) as server:
        yield counter, server.url


EXPECTED: dict[Fault, tuple[bool, str]] = {
    # fault: (reaches the server, what the client gets)
    Fault.RESET_BEFORE: (False, "error"),
    Fault.RESET_AFTER: (True, "error"),
    Fault.STATUS_5XX: (False, "503"),
    Fault.GATEWAY_5XX: (True, "502"),
    Fault.RATE_LIMIT: (False, "429"),
    Fault.RATE_LIMIT_RETRY_AFTER: (False, "429 retry-after"),
    Fault.FREQUENCY_BODY: (False, "60007"),
    Fault.READ_TIMEOUT: (True, "timeout"),
    Fault.TRUNCATED: (True, "error"),
    Fault.MALFORMED: (True, "garbled"),
    Fault.SLOW: (True, "200 late"),
    Fault.HOLD_BEFORE: (True, "timeout"),  # reaches it late: after the client gave up
}


@pytest.mark.parametrize("kind", list(Fault), ids=str)
def test_each_fault_does_what_it_says(kind: Fault, upstream: tuple[Counter, str]) -> None:
    counter, url = upstream
    counter.seen = 0
    plan = FaultPlan({kind: 1.0}, hold=2.0, slow=0.2, retry_after="7", hold_before=1.0)
    with FaultProxy(url, plan) as proxy, httpx.Client(timeout=0.5) as client:
        reaches, effect = EXPECTED[kind]
        started = time.monotonic()
        try:
            reply: httpx.Response | None = client.post(f"{proxy.url}/x", json={"a": 1})
        except httpx.TimeoutException:
            reply, got = None, "timeout"
        except httpx.TransportError:
            reply, got = None, "error"
        elapsed = time.monotonic() - started
        client.close()  # a client that gave up closes its connection: the proxy notices and records the wait
        deadline = time.monotonic() + 2
        while kind is Fault.READ_TIMEOUT and proxy.events[0].waited is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if kind is Fault.HOLD_BEFORE:
            assert counter.seen == 0  # still held when the client gave up...
            assert proxy.settle(5) == 0  # ...then forwarded all the same
            assert proxy.events[0].forwarded is not None
            assert proxy.events[0].forwarded - proxy.events[0].received >= 1.0
    assert counter.seen == (1 if reaches else 0)
    assert proxy.counts[kind] == 1 and proxy.events[0].fault is kind
    if reply is None:
        assert got == effect
        if kind is Fault.READ_TIMEOUT:
            assert proxy.events[0].waited is not None and proxy.events[0].waited < 1.5  # the client gave up
        return
    if effect == "garbled":
        assert reply.status_code == 200 and reply.content != b'{"status":200,"n":1}'
    elif effect == "200 late":
        assert reply.status_code == 200 and reply.json()["n"] == 1 and elapsed >= 0.2
    elif effect == "60007":
        assert reply.json()["ErrorCode"] == 60007
    elif effect == "429 retry-after":
        assert reply.status_code == 429 and reply.headers["retry-after"] == "7"
    else:
        assert reply.status_code == int(effect) and "retry-after" not in reply.headers


def test_the_schedule_is_deterministic_for_a_seed(upstream: tuple[Counter, str]) -> None:
    def schedule(seed: int) -> list[Fault | None]:
        plan = FaultPlan({Fault.STATUS_5XX: 0.3, Fault.RATE_LIMIT: 0.2}, seed=seed)
        with FaultProxy(upstream[1], plan) as proxy, httpx.Client() as client:
            for _ in range(40):
                client.get(f"{proxy.url}/x")
        return [event.fault for event in proxy.events]

    first = schedule(3)
    assert first == schedule(3)
    assert first != schedule(4)
    assert 0 < first.count(None) < 40


def test_paths_limit_where_faults_go(upstream: tuple[Counter, str]) -> None:
    plan = FaultPlan({Fault.STATUS_5XX: 1.0}, paths=("/message/send",))
    with FaultProxy(upstream[1], plan) as proxy, httpx.Client() as client:
        assert client.get(f"{proxy.url}/message/byclientmsgno").status_code == 200
        assert client.post(f"{proxy.url}/message/send", json={}).status_code == 503


def _tencent(handler: object) -> IMClient:
    return IMClient(
        "tencent", sdk_app_id=1400000001, secret_key=secrets.token_hex(16), base_url="http://tencent.test",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
        retry=RetryPolicy(max_attempts=3, initial_backoff=0),
    )  # fmt: skip


def test_a_final_rate_limit_says_an_earlier_attempt_may_have_landed() -> None:
    """Attempt 1 is reset after the server processed it, attempts 2 and 3 are refused with 429: the error
    must not read as a clean refusal, since the first attempt may have stored the message."""
    answers = iter(["reset", "429", "429"])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(429)

    with _tencent(handler) as im, pytest.raises(MessageMayHaveLandedError) as caught:
        im.messages.send("alice", Conversation.user("bob"), "hi")
    assert "MAY HAVE LANDED" in str(caught.value) and caught.value.idempotency_key
    assert isinstance(caught.value.__cause__, RateLimitError)  # the last answer, kept as the cause
    assert caught.value.attempts == 3


def test_a_refusal_on_every_attempt_does_not_claim_a_landing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429)

    with _tencent(handler) as im, pytest.raises(RateLimitError) as caught:
        im.messages.send("alice", Conversation.user("bob"), "hi")
    assert "MAY HAVE LANDED" not in str(caught.value)


def test_a_connect_failure_after_a_reset_keeps_may_have_landed() -> None:
    answers = iter(["reset", "refused", "refused"])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        raise httpx.ConnectError("connection refused", request=request)

    with _tencent(handler) as im, pytest.raises(TransportError) as caught:
        im.messages.send("alice", Conversation.user("bob"), "hi")
    assert caught.value.may_have_landed is True
    assert isinstance(caught.value, MessageMayHaveLandedError)
