"""Sends through a FaultProxy, then the server's own state read back and checked against what was reported.

The invariants (issue 8): every send reported successful is stored exactly once; no send is stored twice;
a send reported failed is absent unless its error says it may have landed; every failure is a typed
imbridge error; no call waits beyond what its timeouts, retries and documented waits allow.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge.errors import IMBridgeError, TransportError
from imbridge.providers.local.store import conversation_key
from imbridge.providers.wukong import messages as wukong_messages
from imbridge.providers.wukong import wire
from imbridge.retry import RetryPolicy
from imbridge.testing.faults import Fault, FaultPlan, FaultProxy

SENDS = int(os.environ.get("IMBRIDGE_FAULT_SENDS", "30"))
"""Sends per fault kind: 30 in CI; ``IMBRIDGE_FAULT_SENDS=1000`` for the full run."""
RATE = float(os.environ.get("IMBRIDGE_FAULT_RATE", "0.1"))
"""Probability that one request (sends, lookups, retries alike) gets the fault."""
TIMEOUT = 0.3
"""The client's timeout, seconds: short so that held answers cost little."""
SLACK = 0.25
"""Per request: what a loaded 2-core machine may add to a timeout before the client notices."""
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, max_retry_after=1.0)
RETRY_AFTER = "1"

#: What a WuKongIM send may sleep by design: recovery lookups after an unknown outcome, then confirmation polls,
#: then the waits for the history to list what a lookup found by key (once per flow: a listed message ends it).
WUKONG_FLOW_SLEEPS = (
    sum(wukong_messages.RECOVERY_DELAYS) + sum(wukong_messages.CONFIRM_DELAYS) + sum(wukong_messages.LISTING_DELAYS)
)
HOLD_BEFORE = TIMEOUT + sum(wukong_messages.RECOVERY_DELAYS) + 1.0
"""How long a held request waits before it is forwarded: past the client's timeout and its recovery lookups,
so a client that re-sent after finding nothing would store the message twice (issue 13, point 1)."""


FULL_RUN = "IMBRIDGE_FAULT_SENDS" in os.environ
#: Faults the HTTP library sees (resets, held and cut answers); the others are plain HTTP answers, the same
#: to every driver, so CI runs them on the sync driver only (a full run does every kind on both).
TRANSPORT_FAULTS = frozenset(
    {Fault.RESET_BEFORE, Fault.RESET_AFTER, Fault.READ_TIMEOUT, Fault.TRUNCATED, Fault.SLOW, Fault.HOLD_BEFORE}
)


def plan_for(kind: Fault, *, seed: int = 8, rate: float = RATE) -> FaultPlan:
    if kind is Fault.RATE_LIMIT_RETRY_AFTER:
        rate /= 3  # each one really waits its Retry-After (1 s)
    # A held answer outlives the client's timeout by far, so a client that did not give up would show.
    return FaultPlan({kind: rate}, seed=seed, hold=TIMEOUT + 3.0, slow=TIMEOUT / 3, retry_after=RETRY_AFTER,
                     hold_before=HOLD_BEFORE)


def may_have_landed(error: BaseException) -> bool:
    """Whether a failure admits that the send may have been stored."""
    if isinstance(error, TransportError) and error.may_have_landed:
        return True
    return "may have landed" in str(error).lower()


@dataclass
class Outcome:
    text: str
    error: BaseException | None
    seconds: float
    requests: int  # what the proxy read during the call (sequential runs only)


@dataclass
class Report:
    kind: str
    sends: int
    ok: int = 0
    failed: int = 0
    failed_may_have_landed: int = 0
    failed_landed: int = 0
    faults_injected: int = 0
    requests: int = 0
    max_call_seconds: float = 0.0
    max_held_wait: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "sends": self.sends, "ok": self.ok, "failed": self.failed,
            "failed_may_have_landed": self.failed_may_have_landed, "failed_but_stored": self.failed_landed,
            "faults": self.faults_injected, "requests": self.requests,
            "max_call_s": round(self.max_call_seconds, 3), "max_held_wait_s": round(self.max_held_wait, 3),
            "errors": dict(self.errors),
        }  # fmt: skip


def check(
    kind: Fault, outcomes: list[Outcome], stored: Counter[str], proxy: FaultProxy, *, flow_sleeps: float,
    concurrent: bool = False,
) -> Report:
    """Every invariant, on every outcome; the problems found (empty when all hold) and the figures. With
    ``concurrent`` sends, what holds only for one request at a time (a Retry-After honoured by the next request
    the proxy sees: another send's may come sooner) is not checked."""
    report = Report(str(kind), len(outcomes), faults_injected=proxy.counts[kind], requests=proxy.requests)
    sent = {outcome.text for outcome in outcomes}
    for text, count in stored.items():
        if text in sent and count > 1:
            report.problems.append(f"{text} stored {count} times")
    retry_wait = max(RETRY.max_backoff, RETRY.max_retry_after)
    for outcome in outcomes:
        report.max_call_seconds = max(report.max_call_seconds, outcome.seconds)
        count = stored.get(outcome.text, 0)
        if outcome.error is None:
            report.ok += 1
            if count != 1:
                report.problems.append(f"{outcome.text} reported sent, stored {count} times")
        else:
            report.failed += 1
            error = outcome.error
            report.errors[type(error).__name__] += 1
            if not isinstance(error, IMBridgeError):
                report.problems.append(f"{outcome.text} failed with an untyped {type(error).__name__}: {error}")
            landed = may_have_landed(error)
            report.failed_may_have_landed += landed
            report.failed_landed += count > 0
            if count and not landed:
                report.problems.append(f"{outcome.text} reported failed ({error!r}) but stored {count} times")
        if outcome.requests:
            # Each attempt waits at most its timeout, and at most one retry wait precedes it.
            bound = outcome.requests * (TIMEOUT + SLACK + retry_wait) + flow_sleeps + 0.5
            if outcome.seconds > bound:
                report.problems.append(f"{outcome.text} took {outcome.seconds:.2f} s, over its bound {bound:.2f} s")
    for event in proxy.events:
        if event.waited is not None:
            report.max_held_wait = max(report.max_held_wait, event.waited)
            if event.waited > TIMEOUT + SLACK:
                report.problems.append(f"request {event.index} kept waiting {event.waited:.2f} s (timeout {TIMEOUT})")
    if kind is Fault.RATE_LIMIT_RETRY_AFTER and not concurrent:
        # Sequential clients only: the request after a 429 with Retry-After comes no sooner than it says.
        for event, following in zip(proxy.events, proxy.events[1:], strict=False):
            if event.fault is kind and following.received - event.received < float(RETRY_AFTER) - 0.05:
                report.problems.append(f"request {event.index + 1} ignored Retry-After")
    return report


# -- driving the sends ---------------------------------------------------------------------------


def send_all(im: IMClient, proxy: FaultProxy, tag: str, sender: str, to: Conversation, n: int) -> list[Outcome]:
    outcomes = []
    for number in range(n):
        text = f"{tag}-{number}"
        before, started = proxy.requests, time.monotonic()
        try:
            im.messages.send(sender, to, text)
            error: BaseException | None = None
        except Exception as exc:  # whatever escapes is judged by check()
            error = exc
        outcomes.append(Outcome(text, error, time.monotonic() - started, proxy.requests - before))
    return outcomes


async def asend_all(
    im: AsyncIMClient, proxy: FaultProxy, tag: str, sender: str, to: Conversation, n: int, *, concurrency: int = 1
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    numbers = iter(range(n))

    async def worker() -> None:
        for number in numbers:
            text = f"{tag}-{number}"
            before, started = proxy.requests, time.monotonic()
            try:
                await im.messages.send(sender, to, text)
                error: BaseException | None = None
            except Exception as exc:  # whatever escapes is judged by check()
                error = exc
            # With several workers in flight the proxy's count is shared: no per-call bound then.
            requests = proxy.requests - before if concurrency == 1 else 0
            outcomes.append(Outcome(text, error, time.monotonic() - started, requests))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


# -- reading the server's state ----------------------------------------------------------------------


def tencent_stored(emulator: Any, sender: str, recipient: str) -> Counter[str]:
    rows = emulator.store.messages(conversation_key("user", sender, recipient), limit=-1)
    return Counter(
        element["MsgContent"]["Text"] for row in rows for element in row.elements if element["MsgType"] == "TIMTextElem"
    )


def wukong_emulator_stored(emulator: Any, sender: str, recipient: str) -> Counter[str]:
    emulator.flush()
    conversation = f"wk:{wire.PERSON}:{wire.fake_channel_id(sender, recipient)}"
    rows = emulator.store.messages(conversation, limit=-1)
    return Counter(json.loads(base64.b64decode(row.metadata["payload"]))["content"] for row in rows)


def history_stored(im: IMClient, sender: str, recipient: str) -> Counter[str]:
    """What a real server holds, read through the provider (not through the proxy)."""
    texts: Counter[str] = Counter()
    for message in im.messages.iter_history(Conversation.user(recipient), viewer=sender):
        for element in message.elements:
            text = getattr(element, "text", None)
            if text is not None:
                texts[text] += 1
    return texts


StateReader = Callable[[], Counter[str]]
