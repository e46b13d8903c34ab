"""Coalesced confirmation (issue 19): concurrent async sends to one channel share their confirming reads, with
the guarantees of one send confirmed alone; the sync client keeps its per-send lookups."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge._flow import KEEP_WAITING
from imbridge.emulators._base import EmulatorTransport
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import MessageMayHaveLandedError, PermissionDeniedError
from imbridge.providers.wukong.wire import fake_channel_id
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
    settings.setdefault("retry", RetryPolicy(initial_backoff=0))
    return AsyncIMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                         http_client=httpx.AsyncClient(transport=transport), **settings)  # fmt: skip


async def _send_in_flight(im: AsyncIMClient, to: Conversation, texts: list[str], in_flight: int = 32) -> list[Any]:
    """alice sends each text to ``to``, ``in_flight`` at a time."""
    limit = asyncio.Semaphore(in_flight)

    async def send(text: str) -> Any:
        async with limit:
            return await im.messages.send("alice", to, text)

    return list(await asyncio.gather(*(send(text) for text in texts)))


def _stored(emulator: WukongEmulator, tmp_path: Path, to: Conversation, viewer: str) -> Counter[str]:
    with IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store="", enforce_policy=False,
                  http_client=httpx.Client(transport=emulator.transport())) as reader:  # fmt: skip
        return Counter(m.elements[0].text for m in reader.messages.iter_history(to, viewer))  # type: ignore[union-attr]


async def test_concurrent_sends_share_their_confirmations(emulator: WukongEmulator, tmp_path: Path) -> None:
    transport = Counting(emulator.transport(), lag=0.002)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await _send_in_flight(im, to, [f"m{n}" for n in range(200)])
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
    assert transport.paths["/message/byclientmsgno"] >= 5
    assert transport.paths["/channel/messagesync"] == 5  # each found message, checked once in the history


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


class FailingReads(Counting):
    """Every request to ``failing`` paths fails (HTTP 500; the first ``times`` of them when given); everything else
    reaches the emulator."""

    def __init__(self, inner: EmulatorTransport, failing: set[str], lag: float = 0.0, times: int | None = None) -> None:
        super().__init__(inner, lag)
        self.failing, self.times = failing, times

    def _fails(self, request: httpx.Request) -> bool:
        if request.url.path not in self.failing or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        self.paths[request.url.path] += 1
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500) if self._fails(request) else await super().handle_async_request(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500) if self._fails(request) else super().handle_request(request)


async def test_when_the_shared_reads_fail_each_send_is_confirmed_by_its_own_lookups(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    """The first three history reads fail: the sends waiting on them fall back to their own lookups by key, and
    are confirmed once the history lists what those found; every send is confirmed."""
    transport = FailingReads(emulator.transport(), {"/channel/messagesync"}, lag=0.001, times=3)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await asyncio.gather(*(im.messages.send("alice", to, f"u{n}") for n in range(20)))
    assert transport.times == 0
    assert all(s.confirmed and s.seq is not None for s in sent)
    assert sorted(s.seq for s in sent) == list(range(1, 21))
    assert transport.paths["/message/send"] == 20 and transport.paths["/message/byclientmsgno"] >= 1


async def test_when_the_history_cannot_be_read_a_send_found_by_key_is_sent_unconfirmed(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    """Found by key, but no history read answers: accepted, never failed (it is most likely stored) and never
    called confirmed (no reader has been shown to see it)."""
    transport = FailingReads(emulator.transport(), {"/channel/messagesync"}, lag=0.001)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await asyncio.gather(*(im.messages.send("alice", to, f"u{n}") for n in range(5)))
    assert all(not s.confirmed and s.seq is None for s in sent)
    assert transport.paths["/message/send"] == 5 and transport.paths["/message/byclientmsgno"] >= 5
    assert _stored(emulator, tmp_path, to, "alice") == Counter(f"u{n}" for n in range(5))


async def test_when_every_read_fails_each_send_is_accepted_but_unconfirmed(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    """As with a failed per-send lookup: WuKongIM accepted the sends and no read answered, so none fails (a failure
    would invite a re-send of a message most likely stored); each says it is not confirmed, none is sent twice."""
    transport = FailingReads(emulator.transport(), {"/channel/messagesync", "/message/byclientmsgno"}, lag=0.001)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await asyncio.gather(*(im.messages.send("alice", to, f"u{n}") for n in range(20)))
    assert all(not s.confirmed and s.seq is None for s in sent)
    assert transport.paths["/message/send"] == 20
    assert _stored(emulator, tmp_path, to, "alice") == Counter(f"u{n}" for n in range(20))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_one_failed_lookup_does_not_report_a_dropped_send_as_sent(
    emulator: WukongEmulator, tmp_path: Path, asynchronous: bool
) -> None:
    """A real WuKongIM whose store timed out ("store message failed: context deadline exceeded") accepted sends it
    never stored; one confirming lookup that failed on the way used to end the confirmation, and the send came
    back as sent, unconfirmed: lost (found by the 1,000-send fault run, 2026-12-02). The next lookups answer."""
    failing = {"/message/byclientmsgno", "/channel/messagesync"}
    transport = FailingReads(emulator.transport(), failing, lag=0.001, times=1)
    settings = {"enforce_policy": False}
    with IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                  http_client=httpx.Client(transport=emulator.transport())) as setup:  # fmt: skip
        setup.users.register(["alice", "bob"])
        setup.groups.create(name="Quiet", owner="alice", members=["bob"], group_id="quiet")
        setup.groups.mute_all("quiet", True)  # WuKongIM's ban: accepted, never stored
    retry = RetryPolicy(initial_backoff=0, max_attempts=1)
    if asynchronous:
        async with _async(transport, tmp_path, retry=retry, **settings) as im:
            with pytest.raises(PermissionDeniedError):
                await im.messages.send("bob", Conversation.group("quiet"), "dropped")
    else:
        with (
            IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                     http_client=httpx.Client(transport=transport), retry=retry, **settings) as sync_im,
            pytest.raises(PermissionDeniedError),
        ):  # fmt: skip
            sync_im.messages.send("bob", Conversation.group("quiet"), "dropped")
    assert transport.times == 0  # the failure was met


class RowCounting(Counting):
    """Counting, plus the rows every shared confirmation read returned."""

    def __init__(self, inner: EmulatorTransport, lag: float = 0.0) -> None:
        super().__init__(inner, lag)
        self.rows_read = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path == "/channel/messagesync":
            self.rows_read += len(json.loads(await response.aread()).get("messages") or [])
        return response


async def test_each_stored_message_is_read_about_once(emulator: WukongEmulator, tmp_path: Path) -> None:
    """A send comes back one round trip after it left, with the floor it left with; the reads meanwhile have often
    shown its message. It is confirmed from what they showed, or reads from above it: the rows of the previous
    round trip are not read again (before, 64 sends in flight read 2.6 rows per send on a real WuKongIM)."""
    transport = RowCounting(emulator.transport(), lag=0.002)
    to = Conversation.user("bob")
    async with _async(transport, tmp_path) as im:
        await im.users.register(["alice", "bob"])
        sent = await _send_in_flight(im, to, [f"r{n}" for n in range(300)])
    assert all(s.confirmed for s in sent)
    assert sorted(s.seq for s in sent) == list(range(1, 301))
    assert transport.rows_read <= 300 * 1.25, (transport.rows_read, transport.paths)


# -- the reads' rules, on rows shaped as a real WuKongIM v2.2.5 answers POST /channel/messagesync ------------------


def _row(seq: int, message_id: int, key: str) -> dict[str, Any]:
    # The shape of a row from the real server (curl against v2.2.5-20260422, 2026-12-02); ids made up.
    return {"header": {"no_persist": 0, "red_dot": 0, "sync_once": 0}, "setting": 0, "message_id": message_id,
            "message_idstr": str(message_id), "client_msg_no": key, "message_seq": seq, "from_uid": "alice",
            "channel_id": "bob", "channel_type": 1, "expire": 0, "timestamp": 1796221700 + seq,
            "payload": "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGkifQ=="}  # fmt: skip


@pytest.fixture
def provider(tmp_path: Path) -> Any:
    im = AsyncIMClient("wukong", base_url="http://wk.invalid", store="")
    return im._executor.provider


def _waiting(key: str, message_id: int, floor: int | None) -> Any:
    from imbridge.providers.wukong.messages import _Waiting

    return _Waiting(key, message_id, floor)


def test_a_read_without_gaps_moves_the_floor_of_what_it_did_not_show(provider: Any) -> None:
    to, channel = Conversation.user("bob"), ("wukong", 1, "alice@bob")
    shown, missing = _waiting("k11", 111, 10), _waiting("k13", 113, 10)
    request, split = provider._confirmations("alice", to, channel, [shown, missing])
    assert request.json["start_message_seq"] == 11 and request.json["pull_mode"] == 1
    answers = split({"messages": [_row(11, 111, "k11"), _row(12, 112, "k12")]})
    assert answers[0].message_seq == 11 and answers[0].timestamp == 1796221711
    assert answers[1] is KEEP_WAITING and missing.floor == 12  # not among 11..12: it will be stored above 12
    # A send that left with floor 10 and comes back now: 11..12 were shown; its message (112) is confirmed from
    # them without another read, and the next read for an unseen one starts above 12.
    late, later = _waiting("k12", 112, 10), _waiting("k14", 114, 10)
    request, split = provider._confirmations("alice", to, channel, [late, later])
    assert request.json["start_message_seq"] == 13
    answers = split({"messages": [_row(13, 113, "k13"), _row(14, 114, "k14")]})
    assert answers[0].message_seq == 12 and answers[1].message_seq == 14
    request, split = provider._confirmations("alice", to, channel, [_waiting("k13", 113, 10)])
    assert request is None and split(None)[0].message_seq == 13  # everything shown: no request at all


def test_a_read_with_a_gap_proves_nothing_about_what_it_did_not_show(provider: Any) -> None:
    to, channel = Conversation.user("bob"), ("wukong", 1, "alice@bob")
    missing = _waiting("k12", 112, 10)
    _, split = provider._confirmations("alice", to, channel, [missing])
    assert split({"messages": [_row(11, 111, "k11"), _row(13, 113, "k13")]}) == [KEEP_WAITING]
    assert missing.floor == 10  # seq 12 was not shown: the message may be stored there
    request, _ = provider._confirmations("alice", to, channel, [missing])
    assert request is not None and request.json["start_message_seq"] == 11


def test_a_full_window_of_the_newest_proves_nothing_either(provider: Any) -> None:
    from imbridge.providers.wukong.messages import CONFIRM_WINDOW_SLACK

    to, channel = Conversation.user("bob"), ("wukong", 1, "alice@bob")
    missing = _waiting("k1", 1, None)  # no floor: the channel's newest messages are read
    request, split = provider._confirmations("alice", to, channel, [missing])
    limit = request.json["limit"]
    assert request.json["pull_mode"] == 0 and limit == 4 + CONFIRM_WINDOW_SLACK
    full = [_row(seq, 1000 + seq, f"o{seq}") for seq in range(100, 100 + limit)]
    assert split({"messages": full}) == [KEEP_WAITING]
    assert missing.floor is None  # it may be older than the window: never read past it
    assert provider._recent == {}


def test_the_window_of_shown_rows_is_bounded_and_stays_gapless() -> None:
    from imbridge.providers.wukong.messages import RECENT_ROWS, _Recent

    recent = _Recent()
    recent.add(1, 600, [(seq, f"k{seq}", seq, 0) for seq in range(1, 601)])
    recent.add(601, 1500, [(seq, f"k{seq}", seq, 0) for seq in range(601, 1501)])
    assert len(recent.rows) == RECENT_ROWS and (recent.low, recent.high) == (1500 - RECENT_ROWS + 1, 1500)
    assert set(recent.rows) == set(range(recent.low, recent.high + 1))
    recent.add(2000, 2001, [(2000, "k2000", 2000, 0), (2001, "k2001", 2001, 0)])  # not adjacent: starts again
    assert (recent.low, recent.high) == (2000, 2001) and set(recent.rows) == {2000, 2001}


# -- found by key, listed by the history -------------------------------------------------------------------------


def _sync(transport: httpx.BaseTransport, tmp_path: Path, **settings: Any) -> IMClient:
    return IMClient("wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                    http_client=httpx.Client(transport=transport), **settings)  # fmt: skip


@pytest.mark.parametrize(
    ("asynchronous", "batch", "sends"), [(False, 1, 2), (True, 1, 2), (True, 19, 24)],
    ids=["sync", "async", "async-batch-of-19"],
)
async def test_a_message_found_by_key_that_the_history_never_lists_is_not_reported_sent(
    emulator: WukongEmulator, tmp_path: Path, asynchronous: bool, batch: int, sends: int
) -> None:
    """A real v2.2.5 whose channel store stalled answered GET /message/byclientmsgno for the messages of the stuck
    proposal (seqs N+1...) while its history stayed at N for good (the 1,000-send fault runs, 2026-12-02: one such
    send in each of four runs was reported sent, and no reader ever saw it; 19 at once with 64 in flight). Each
    send after the stall is an error."""
    to = Conversation.user("bob")
    with _sync(emulator.transport(), tmp_path) as setup:
        setup.users.register(["alice", "bob"])
        before = [setup.messages.send("alice", to, f"b{n}") for n in range(3)]
    assert [s.seq for s in before] == [1, 2, 3]
    emulator.stall_channel(1, fake_channel_id("alice", "bob"), batch=batch)
    texts = [f"after{n}" for n in range(sends)]
    if asynchronous:
        async with _async(Counting(emulator.transport(), lag=0.001), tmp_path) as im:
            outcomes = await asyncio.gather(*(im.messages.send("alice", to, t) for t in texts), return_exceptions=True)
    else:
        with _sync(emulator.transport(), tmp_path) as sync_im:
            outcomes = []
            for text in texts:
                try:
                    outcomes.append(sync_im.messages.send("alice", to, text))
                except MessageMayHaveLandedError as error:
                    outcomes.append(error)
    assert all(isinstance(outcome, MessageMayHaveLandedError) for outcome in outcomes), outcomes
    assert sum("did not list it" in str(outcome) for outcome in outcomes) == batch, outcomes  # the stuck ones
    assert _stored(emulator, tmp_path, to, "alice") == Counter(f"b{n}" for n in range(3))


class LateListing(Counting):
    """The first ``times`` one-row history reads (``limit`` 1: the listing check) answer as a real v2.2.5 did for 2
    of 300 sends, 2026-12-02: found by key, not listed yet. Then the emulator answers."""

    def __init__(self, inner: EmulatorTransport, times: int) -> None:
        super().__init__(inner)
        self.times = times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/channel/messagesync" and self.times and json.loads(request.content)["limit"] == 1:
            self.times -= 1
            self.paths["unlisted"] += 1
            body = json.loads(request.content)
            return httpx.Response(200, json={"start_message_seq": body["start_message_seq"], "end_message_seq": 0,
                                             "more": 0, "messages": []})  # fmt: skip
        return super().handle_request(request)


def test_a_message_found_by_key_before_the_history_lists_it_is_confirmed_once_listed(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    transport = LateListing(emulator.transport(), times=2)
    with _sync(transport, tmp_path) as im:
        im.users.register(["alice", "bob"])
        sent = im.messages.send("alice", Conversation.user("bob"), "late")
    assert sent.confirmed and sent.seq == 1
    assert transport.paths["unlisted"] == 2 and transport.times == 0
    assert transport.paths["/channel/messagesync"] == 1  # the third listing check, the first the emulator answered


# -- the real server's answers for a stalled channel (tests/fixtures/wukong/stall) --------------------------------

STALL = json.loads((Path(__file__).parents[1] / "fixtures/wukong/stall/stalled_channel.json").read_text())


class StalledChannel(httpx.BaseTransport):
    """Answers as the real v2.2.5 did for the stalled channel (the recorded exchanges, matched on the key looked up or
    the seq read from). ``/message/send`` answers with the stuck message's id in the envelope every recorded send
    answer has; before it, the key is not found (nothing was stored under it yet) unless ``stuck_before``: the stuck
    message is already there, as for an app sending again after the error."""

    def __init__(self, stuck_before: bool) -> None:
        self.paths: list[str] = []
        self.sent, self.stuck_before = False, stuck_before

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path == "/message/send":
            self.sent = True
            stuck = next(json.loads(e["answer"]) for e in STALL["exchanges"] if e["path"] == "/message/byclientmsgno")
            data = {"message_id": stuck["message_id"], "client_msg_no": stuck["client_msg_no"]}
            return httpx.Response(200, json={"status": 200, "data": data})
        for exchange in STALL["exchanges"]:
            if exchange["path"] != request.url.path:
                continue
            if request.url.path == "/message/byclientmsgno":
                if exchange["query"]["client_msg_no"] != request.url.params["client_msg_no"]:
                    continue
                if not self.sent and not self.stuck_before:
                    return httpx.Response(200, json={"status": 404})
            elif json.loads(request.content)["start_message_seq"] != exchange["body"]["start_message_seq"]:
                continue
            return httpx.Response(exchange["status"], content=exchange["answer"].encode())
        raise AssertionError(f"no recorded answer for {request.method} {request.url}")


@pytest.mark.parametrize("resend", [False, True], ids=["send", "send-again-with-the-key"])
def test_the_real_stalled_channels_answers_make_a_send_may_have_landed(resend: bool) -> None:
    """send: the key is looked up first (a caller's key), not found, sent, found by key at seq 620, and the history
    does not list it: MessageMayHaveLandedError. send again with the key (what an app does after that error): the
    lookup before sending finds the stuck message, the history still does not list it, and nothing is sent."""
    transport = StalledChannel(stuck_before=resend)
    with (
        IMClient("wukong", base_url="http://wk.replay", manager_token=TOKEN, store="", enforce_policy=False,
                 http_client=httpx.Client(transport=transport), retry=RetryPolicy(max_attempts=1)) as im,
        pytest.raises(MessageMayHaveLandedError, match="at seq 620, but the channel's history did not list it"),
    ):  # fmt: skip
        im.messages.send(STALL["sender"], Conversation.user(STALL["recipient"]), "x",
                         idempotency_key=STALL["stuck_key"])  # fmt: skip
    assert transport.paths.count("/message/send") == (0 if resend else 1)
    assert transport.paths.count("/channel/messagesync") >= 2  # the listing check, repeated before giving up


class AnswerLost(Counting):
    """Every /message/send reaches the emulator, and its answer is replaced by a 502: an unknown outcome."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = super().handle_request(request)
        return httpx.Response(502) if request.url.path == "/message/send" else answer


def test_a_send_whose_answer_was_lost_and_that_stuck_in_a_stalled_channel_says_so(
    emulator: WukongEmulator, tmp_path: Path
) -> None:
    """The recovery lookups after an unknown outcome find the stuck message by key; the history never lists it.
    The error is the listing's (not "its lookup failed too"), and the send is not made again."""
    emulator.stall_channel(1, fake_channel_id("alice", "bob"))
    transport = AnswerLost(emulator.transport())
    with _sync(transport, tmp_path, retry=RetryPolicy(initial_backoff=0, max_attempts=1)) as im:
        im.users.register(["alice", "bob"])
        with pytest.raises(MessageMayHaveLandedError, match="at seq 1, but the channel's history did not") as raised:
            im.messages.send("alice", Conversation.user("bob"), "lost answer")
    assert "lookup failed" not in str(raised.value)  # a lookup that answered is not a failed one
    assert transport.paths["/message/send"] == 1
