"""Coalesced confirmation (issue 19): concurrent async sends to one channel share their confirming reads, with
the guarantees of one send confirmed alone; the sync client keeps its per-send lookups."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge.emulators._base import EmulatorTransport
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import PermissionDeniedError
from imbridge.retry import RetryPolicy

TOKEN = "coalesce-test-token"  # made up for these tests


class Counting(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """The emulator, counting requests per path; ``lag`` seconds per request (a round trip), so that
    concurrent flows overlap as they do over a network."""

    def __init__(self, inner: EmulatorTransport, lag: float = 0.0) -> None:
        self.inner, self.lag, self.paths = inner, lag, Counter[str]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        if self.lag:
            await asyncio.sleep(self.lag)
        return await self.inner.handle_async_request(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        return self.inner.handle_request(request)


@pytest.fixture
def emulator() -> Any:
    # Sends are stored one request late, as the real server stores them a moment after answering.
    emulator = WukongEmulator(manager_token=TOKEN, store_delay_requests=1)
    yield emulator
    emulator.close()


def _async(transport: Counting, tmp_path: Path, **settings: Any) -> AsyncIMClient:
    return AsyncIMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                         http_client=httpx.AsyncClient(transport=transport), retry=RetryPolicy(initial_backoff=0),
                         **settings)  # fmt: skip


def _stored(emulator: WukongEmulator, tmp_path: Path, to: Conversation, viewer: str) -> Counter[str]:
    with IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store="", enforce_policy=False,
                  http_client=httpx.Client(transport=emulator.transport())) as reader:  # fmt: skip
        return Counter(m.elements[0].text for m in reader.messages.iter_history(to, viewer))  # type: ignore[union-attr]


async def test_concurrent_sends_share_their_confirmations(emulator: WukongEmulator, tmp_path: Path) -> None:
    transport = Counting(emulator.transport(), lag=0.002)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        limit = asyncio.Semaphore(32)

        async def send(number: int) -> Any:
            async with limit:
                return await im.messages.send("alice", to, f"m{number}")

        sent = await asyncio.gather(*(send(n) for n in range(200)))
    assert all(s.confirmed and s.seq is not None for s in sent)
    assert sorted(s.seq for s in sent) == list(range(1, 201))  # each confirmed as its own stored message
    assert _stored(emulator, tmp_path, to, "alice") == Counter(f"m{n}" for n in range(200))
    confirming = transport.paths["/channel/messagesync"] + transport.paths["/message/byclientmsgno"]
    assert transport.paths["/message/send"] == 200
    assert confirming < 200 / 4, transport.paths  # shared: far fewer reads than sends (one each at least, alone)


def test_the_sync_client_confirms_each_send_by_its_key(emulator: WukongEmulator, tmp_path: Path) -> None:
    transport = Counting(emulator.transport())
    with IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                  http_client=httpx.Client(transport=transport)) as im:  # fmt: skip
        im.users.register(["alice", "bob"])
        sent = [im.messages.send("alice", Conversation.user("bob"), f"m{n}") for n in range(5)]
    assert all(s.confirmed for s in sent)
    assert transport.paths["/channel/messagesync"] == 0
    assert transport.paths["/message/byclientmsgno"] >= 5


async def test_another_senders_message_under_the_same_key_confirms_nothing(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    transport = Counting(emulator.transport(), lag=0.001)
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        await im.groups.create(name="Keys", owner="alice", members=["bob"], group_id="keys")
        group = Conversation.group("keys")
        first = await im.messages.send("bob", group, "bob's", idempotency_key="same")
        results = await asyncio.gather(
            im.messages.send("alice", group, "alice's", idempotency_key="same"),
            *(im.messages.send("bob", group, f"x{n}") for n in range(10)),
        )
    alice = results[0]
    assert alice.confirmed and alice.ref.key != first.ref.key and alice.seq != first.seq
    assert alice.raw["message_id"] == int(alice.ref.key)


async def test_a_silently_dropped_send_is_still_an_error(emulator: WukongEmulator, tmp_path: Path) -> None:
    """WuKongIM accepts a send to a banned group and drops it: the shared confirmation never sees it, the exact
    lookup does not find it, and the group's flags say why."""
    transport = Counting(emulator.transport(), lag=0.001)
    async with _async(transport, tmp_path, enforce_policy=False) as im:
        await im.users.register(["alice", "bob"])
        await im.groups.create(name="Quiet", owner="alice", members=["bob"], group_id="quiet")
        await im.groups.mute_all("quiet", True)
        outcomes = await asyncio.gather(
            *(im.messages.send("bob", Conversation.group("quiet"), f"d{n}") for n in range(4)), return_exceptions=True
        )
    assert all(isinstance(outcome, PermissionDeniedError) for outcome in outcomes), outcomes


class FailingSync(Counting):
    """Every shared confirmation read fails (HTTP 500); everything else reaches the emulator."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/channel/messagesync":
            self.paths[request.url.path] += 1
            return httpx.Response(500)
        return await super().handle_async_request(request)


async def test_a_failed_shared_read_leaves_each_send_accepted_but_unconfirmed(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    """As with a failed per-send lookup: WuKongIM accepted the sends, so none fails (a failure would invite a
    re-send of a message most likely stored); each says it is not confirmed, and none is sent twice."""
    transport = FailingSync(emulator.transport(), lag=0.001)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await asyncio.gather(*(im.messages.send("alice", to, f"u{n}") for n in range(20)))
    assert all(not s.confirmed and s.seq is None for s in sent)
    assert transport.paths["/message/send"] == 20 and transport.paths["/channel/messagesync"] < 20 * 3
    assert _stored(emulator, tmp_path, to, "alice") == Counter(f"u{n}" for n in range(20))
