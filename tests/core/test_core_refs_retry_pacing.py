"""MessageRef round-trips, RetryPolicy.backoff, the client-side Pacer, and the FakeClock itself."""

from __future__ import annotations

import base64
import json
import math
import random
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from imbridge import ConfigurationError, Conversation, InvalidRequestError, MessageRef, RetryPolicy
from imbridge._pacing import Pacer, Rate
from imbridge.testing import FakeClock

# -- MessageRef ------------------------------------------------------------------------------------

REFS = [
    MessageRef(provider="local", conversation=Conversation.user("bob"), sender="alice", key="k1"),
    MessageRef(
        provider="tencent",
        conversation=Conversation.group("@TGS#群组-1"),
        sender="用户_😀",
        key="144115_42_1700000000",
        seq=42,
        extra={"random": "123456", "note": "naïve / ünïcödé", "empty": ""},
    ),
    MessageRef(provider="wukong", conversation=Conversation.group("g"), sender="s", key="9" * 19, seq=0),
]


@pytest.mark.parametrize("ref", REFS, ids=["minimal", "unicode-extra", "seq-zero"])
def test_message_ref_round_trip(ref: MessageRef) -> None:
    text = str(ref)
    assert text.isascii() and " " not in text and "\n" not in text
    parsed = MessageRef.parse(text)
    assert parsed == ref
    assert parsed.extra == ref.extra and parsed.seq == ref.seq and parsed.conversation == ref.conversation
    assert str(parsed) == text


def test_message_refs_differ_when_messages_differ() -> None:
    assert len({str(ref) for ref in REFS}) == len(REFS)
    assert str(REFS[0]) != str(REFS[0].model_copy(update={"key": "k2"}))


def _encoded(payload: object) -> str:
    return "imref1." + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "imref1.",
        "imref1.!!!!",
        "imref2." + str(REFS[0])[len("imref1.") :],
        str(REFS[0])[:-6],  # truncated
        "imref1." + base64.urlsafe_b64encode(b"not json").decode(),
        _encoded([1, 2, 3]),
        _encoded({"provider": "local", "sender": "a", "key": "k"}),  # no conversation
        _encoded({"provider": "local", "conversation": {"kind": "room", "id": "x"}, "sender": "a", "key": "k"}),
    ],
)
def test_message_ref_parse_refuses_garbage(garbage: str) -> None:
    with pytest.raises(InvalidRequestError):
        MessageRef.parse(garbage)


def test_message_ref_parse_refuses_non_strings() -> None:
    for value in (None, 123, b"imref1.abc"):
        with pytest.raises(InvalidRequestError):
            MessageRef.parse(value)  # type: ignore[arg-type]


# -- RetryPolicy.backoff ------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=5.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert RetryPolicy(initial_backoff=0, jitter=False).backoff(5) == 0


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=5.0, max_retry_after=30.0)
    assert policy.backoff(1, retry_after=timedelta(seconds=7)) == 7.0  # longer than max_backoff, no jitter
    assert policy.backoff(4, retry_after=timedelta(milliseconds=250)) == 0.25
    assert policy.backoff(1, retry_after=timedelta(minutes=10)) == 30.0
    assert policy.backoff(1, retry_after=timedelta(seconds=-3)) == 0.0


def test_jitter_stays_within_the_ceiling() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=6.0)
    rng = random.Random(1234)
    for retry_number, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 6.0), (9, 6.0)):
        waits = [policy.backoff(retry_number, rng=rng) for _ in range(300)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > 0.8 * ceiling and min(waits) < 0.2 * ceiling  # spread over the range (full jitter)


def test_retry_policy_validation_and_none() -> None:
    assert RetryPolicy.none().max_attempts == 1
    # A wrong policy is a configuration error, like every other wrong client option (issue 13, point 7).
    for wrong in ({"max_attempts": 0}, {"initial_backoff": -1}, {"max_backoff": math.nan},
                  {"max_total_wait": -1}, {"max_attemps": 3}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            RetryPolicy(**wrong)
    with pytest.raises(pydantic.ValidationError):  # frozen: a shared policy cannot be changed under a client
        RetryPolicy().max_attempts = 9  # type: ignore[misc]


# -- Pacer --------------------------------------------------------------------------------------


def _max_in_window(times: list[float], period: float) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + period - 1e-9) for start in ordered)


@pytest.mark.parametrize(("limit", "burst"), [(10, 1), (8, 1), (5, 3), (200, 20), (1, 1)])
def test_pacer_concurrent_reservations_respect_the_rate(limit: int, burst: int) -> None:
    clock = FakeClock()
    pacer = Pacer(clock.monotonic)
    rate = Rate(limit, burst=burst)
    count = 3 * limit + burst
    # Reserved all at once, as concurrent callers would: each gets its own moment to send.
    send_times = [clock.monotonic() + pacer.reserve("api", rate) for _ in range(count)]
    assert send_times == sorted(send_times)
    assert _max_in_window(send_times, 1.0) <= limit + burst - 1
    # Not slower than needed: the first `burst` go at once, then one per interval.
    assert send_times[burst - 1] == pytest.approx(clock.monotonic())
    assert send_times[-1] - send_times[0] == pytest.approx((count - burst) / limit)


def test_pacer_sequential_caller_that_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(clock.monotonic)
    rate = Rate(4, burst=2)
    sent = []
    for _ in range(30):
        clock.sleep(pacer.reserve("sendmsg", rate))
        sent.append(clock.monotonic())
        clock.advance(0.01)  # the request itself takes a little time
    assert _max_in_window(sent, 1.0) <= 4 + 2 - 1
    assert sum(clock.sleeps) > 0


def test_pacer_idle_time_restores_the_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(clock.monotonic)
    rate = Rate(2, burst=3)
    assert [pacer.reserve("a", rate) for _ in range(3)] == [0, 0, 0]
    assert pacer.reserve("a", rate) > 0
    clock.advance(10)
    assert [pacer.reserve("a", rate) for _ in range(3)] == [0, 0, 0]


def test_pacer_cost_weighted_reservations() -> None:
    clock = FakeClock()
    pacer = Pacer(clock.monotonic)
    rate = Rate(200, period=1.0)  # e.g. recipient-messages per second
    assert pacer.reserve("batch", rate, cost=100) == 0
    assert pacer.reserve("batch", rate, cost=100) == pytest.approx(0.5)  # waits for the first one's 100 units
    assert pacer.reserve("batch", rate, cost=1) == pytest.approx(1.0)
    clock.advance(1.005)
    assert pacer.reserve("batch", rate, cost=50) == pytest.approx(0.0, abs=1e-9)


def test_pacer_keeps_apis_apart_and_follows_rate_changes() -> None:
    clock = FakeClock()
    pacer = Pacer(clock.monotonic)
    slow = Rate(1)
    assert pacer.reserve("one", slow) == 0
    assert pacer.reserve("two", slow) == 0  # another API has its own bucket
    assert pacer.reserve("one", slow) == pytest.approx(1.0)
    assert pacer.reserve("one", Rate(1000)) == 0  # a new rate starts a new bucket


def test_rate_validation() -> None:
    for bad in ({"limit": 0}, {"limit": 1, "period": 0}, {"limit": 1, "burst": 0}):
        with pytest.raises(ValueError):
            Rate(**bad)  # type: ignore[arg-type]


# -- FakeClock ----------------------------------------------------------------------------------


async def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2030, 5, 1, 12, tzinfo=UTC))
    start, mono = clock.now(), clock.monotonic()
    assert clock.now() == start and start == datetime(2030, 5, 1, 12, tzinfo=UTC)
    clock.sleep(2.5)
    await clock.asleep(0.5)
    clock.sleep(0)  # nothing to wait: not recorded
    clock.advance(timedelta(minutes=1))
    assert clock.now() == start + timedelta(seconds=63)
    assert clock.monotonic() == mono + 63
    assert clock.sleeps == [2.5, 0.5] and clock.elapsed == 63
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        FakeClock(datetime(2030, 1, 1))  # naive
