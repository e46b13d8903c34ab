"""A send that may have landed is never sent twice; the app reconciles it with ``messages.find_by_key``, on
every provider, sync and async (issue 13, point 1)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, MessageMayHaveLandedError, Text
from imbridge.emulators import serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import InvalidRequestError, TransportError
from imbridge.retry import RetryPolicy
from imbridge.testing.faults import Fault, FaultPlan, FaultProxy

APP_ID = 1400000001
TIMEOUT = 0.3
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)


@dataclass
class Served:
    provider: str
    url: str
    settings: dict[str, Any]
    users: Any  # list[str] -> None: users the server must know


@pytest.fixture(scope="module")
def wukong() -> Iterator[Served]:
    token = secrets.token_hex(8)
    emulator = WukongEmulator(manager_token=token, store_delay_requests=1)
    with serve(emulator) as server:
        yield Served("wukong", server.url, {"manager_token": token, "store": ""}, lambda _users: None)
    emulator.close()


@pytest.fixture(scope="module")
def tencent() -> Iterator[Served]:
    key = secrets.token_hex(16)
    emulator = TencentEmulator(sdk_app_id=APP_ID, secret_key=key, rate_limits={"*": 100_000.0})
    with serve(emulator) as server:
        yield Served("tencent", server.url, {"sdk_app_id": APP_ID, "secret_key": key},
                     lambda users: emulator.store.add_users(users, time.time()))  # fmt: skip
    emulator.close()


def _names() -> tuple[str, str, str]:
    suffix = secrets.token_hex(3)
    return f"ra{suffix}", f"rb{suffix}", f"rg{suffix}"


def _client(served: Served | None, url: str | None = None, *, asynchronous: bool = False, **extra: Any) -> Any:
    cls = AsyncIMClient if asynchronous else IMClient
    if served is None:
        return cls("local", database=":memory:")
    return cls(served.provider, base_url=url or served.url, retry=RETRY, timeout=TIMEOUT, **served.settings, **extra)


PROVIDERS = ("local", "wukong", "tencent")


def _served(name: str, request: pytest.FixtureRequest) -> Served | None:
    return None if name == "local" else request.getfixturevalue(name)


def _setup(im: IMClient, served: Served | None, alice: str, bob: str, group: str) -> None:
    if served is not None:
        served.users([alice, bob])
    im.users.register([alice, bob])
    im.groups.create(name="Team", owner=alice, members=[bob], group_id=group)


@pytest.mark.parametrize("name", PROVIDERS)
def test_find_by_key_returns_what_was_sent_or_none(name: str, request: pytest.FixtureRequest) -> None:
    served = _served(name, request)
    alice, bob, group = _names()
    with _client(served) as im:
        _setup(im, served, alice, bob, group)
        for to in (Conversation.user(bob), Conversation.group(group)):
            sent = im.messages.send(alice, to, [Text("kept")], idempotency_key=f"key-{to.id}")
            im.messages.send(alice, to, "another", idempotency_key=f"other-{to.id}")
            found = im.messages.find_by_key(alice, to, f"key-{to.id}")
            assert found is not None and found.sender == alice
            assert [getattr(e, "text", None) for e in found.elements] == ["kept"]
            assert str(found.ref) == str(sent.ref)  # the same message: revocable, comparable
            assert im.messages.find_by_key(alice, to, "never-sent") is None
        # another sender's message under the same key is not this sender's
        im.messages.send(bob, Conversation.group(group), "bob's", idempotency_key="shared")
        assert im.messages.find_by_key(alice, Conversation.group(group), "shared") is None
        with pytest.raises(InvalidRequestError):
            im.messages.find_by_key(alice, "not a conversation", "k")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_find_by_key_async(name: str, request: pytest.FixtureRequest) -> None:
    served = _served(name, request)
    alice, bob, _ = _names()
    if served is not None:
        served.users([alice, bob])
    async with _client(served, asynchronous=True) as im:
        await im.users.register([alice, bob])
        to = Conversation.user(bob)
        sent = await im.messages.send(alice, to, "kept", idempotency_key="k1")
        found = await im.messages.find_by_key(alice, to, "k1")
        assert found is not None and str(found.ref) == str(sent.ref)
        assert await im.messages.find_by_key(alice, to, "k2") is None


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_held_wukong_send_raises_then_reconciles(wukong: Served, asynchronous: bool) -> None:
    """The issue's case: the send is held on the way past the timeout and the recovery lookups. imbridge does
    not send it again; the error carries the key; once the request lands, find_by_key finds the one copy."""
    alice, bob, _ = _names()
    to = Conversation.user(bob)
    plan = FaultPlan({Fault.HOLD_BEFORE: 1.0}, paths=("/message/send",), hold_before=TIMEOUT + 1.5)
    with FaultProxy(wukong.url, plan) as proxy:

        async def send_async() -> None:
            async with _client(wukong, proxy.url, asynchronous=True) as im:
                await im.messages.send(alice, to, "late", idempotency_key="held")

        with _client(wukong, proxy.url) as im, pytest.raises(MessageMayHaveLandedError) as caught:
            if asynchronous:
                asyncio.run(send_async())
            else:
                im.messages.send(alice, to, "late", idempotency_key="held")
        assert proxy.settle() == 0
    error = caught.value
    assert isinstance(error, TransportError) and error.may_have_landed and not error.retryable
    assert (error.sender, error.conversation, error.idempotency_key) == (alice, to, "held")
    assert [event.path for event in proxy.events].count("/message/send") == 1  # never sent again
    with _client(wukong) as im:
        deadline = time.monotonic() + 5
        found = im.messages.find_by_key(error.sender, error.conversation, error.idempotency_key)
        while found is None and time.monotonic() < deadline:  # stored a moment after it landed
            time.sleep(0.05)
            found = im.messages.find_by_key(error.sender, error.conversation, error.idempotency_key)
        assert found is not None
        assert sum(1 for m in im.messages.iter_history(to, viewer=alice)) == 1
        # sending again with the key now finds it instead of storing a copy
        again = im.messages.send(alice, to, "late", idempotency_key="held")
        assert str(again.ref) == str(found.ref)
        assert sum(1 for m in im.messages.iter_history(to, viewer=alice)) == 1


def test_a_tencent_send_whose_every_attempt_may_have_landed_says_so(tencent: Served) -> None:
    """Tencent deduplicates the executor's retries; when they all time out the outcome is unknown there too,
    and said with the same error, key included."""
    alice, bob, _ = _names()
    tencent.users([alice, bob])
    to = Conversation.user(bob)
    plan = FaultPlan({Fault.HOLD_BEFORE: 1.0}, paths=("/v4/openim/sendmsg",), hold_before=TIMEOUT + 0.5)
    with FaultProxy(tencent.url, plan) as proxy, _client(tencent, proxy.url) as im:
        with pytest.raises(MessageMayHaveLandedError) as caught:
            im.messages.send(alice, to, "late", idempotency_key="t-held")
        assert proxy.settle() == 0
    assert caught.value.idempotency_key == "t-held" and caught.value.attempts == RETRY.max_attempts
    with _client(tencent) as im:
        found = im.messages.find_by_key(alice, to, "t-held")
        assert found is not None
        assert sum(1 for m in im.messages.iter_history(to, viewer=alice)) == 1  # three attempts, one message
