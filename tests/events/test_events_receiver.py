"""The receiver's own rules, on every provider's adapter: deduplication (and its release when a handler
fails), source allowlists, async handlers, the ASGI app and its body limit, settings from the environment."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from events_support import (
    APP,
    PATH_SECRET,
    REQUEST_TIME,
    TOKEN,
    official_body,
    signed_query,
    tencent_receiver,
    wukong_receiver,
)

from imbridge.errors import ConfigurationError, PermissionDeniedError
from imbridge.events import (
    BaseEvent,
    EventReceiver,
    MemoryDedupeStore,
    MessageCreated,
    UserOffline,
    UserOnline,
)
from imbridge.events.sql_dedupe import SQLDedupeStore

NOTIFY = [{"header": {"no_persist": 0, "red_dot": 1, "sync_once": 0}, "setting": 0, "message_id": 2128000000000000001,
           "message_idstr": "2128000000000000001", "client_msg_no": "n-1", "message_seq": 3, "from_uid": "a",
           "channel_id": "b", "channel_type": 1, "expire": 0, "timestamp": 1796189572,
           "payload": "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGkifQ=="}]  # fmt: skip
HOOK = f"/hooks/wukong/{PATH_SECRET}"


def _notify(receiver: EventReceiver, body: object = NOTIFY) -> int:
    return receiver.handle("POST", HOOK, {}, {"event": "msg.notify"}, json.dumps(body)).status


def test_a_redelivered_batch_hands_each_event_on_once() -> None:
    receiver = wukong_receiver()
    seen: list[BaseEvent] = []
    receiver.on(MessageCreated)(seen.append)
    second = dict(NOTIFY[0], message_id=2128000000000000002, message_seq=4)
    assert _notify(receiver) == 200
    # WuKongIM retries a failed batch with the failed messages first and newer ones after (webhook.go:383-396).
    reply = receiver.handle("POST", HOOK, {}, {"event": "msg.notify"}, json.dumps([NOTIFY[0], second]))
    assert reply.status == 200 and reply.duplicates == 1
    assert [e.event_id for e in seen] == ["wukong:msg:2128000000000000001", "wukong:msg:2128000000000000002"]


def test_a_failing_handler_gets_the_retry() -> None:
    receiver = wukong_receiver()
    calls: list[str] = []

    @receiver.on(MessageCreated)
    def flaky(event: MessageCreated) -> None:
        calls.append(event.event_id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    first = receiver.handle("POST", HOOK, {}, {"event": "msg.notify"}, json.dumps(NOTIFY))
    assert first.status == 500 and isinstance(first.error, RuntimeError)  # non-200: WuKongIM retries
    assert _notify(receiver) == 200 and _notify(receiver) == 200
    assert len(calls) == 2  # the failed attempt and the retry; the third delivery is a duplicate


def test_concurrent_deliveries_of_one_event_hand_it_on_once(tmp_path: Path) -> None:
    # Two receivers (two workers) sharing one SQLite store database, eight threads delivering the same batch.
    database = f"sqlite:///{tmp_path / 'claims.db'}"
    receivers = [wukong_receiver(dedupe=SQLDedupeStore(database)) for _ in range(2)]
    assert _race(receivers, 8) == ["wukong:msg:2128000000000000001"]


def test_the_memory_store_is_bounded_and_expires() -> None:
    store = MemoryDedupeStore(max_entries=3)
    assert all(store.claim(f"k{i}", ttl=10, now=0) for i in range(5))
    assert len(store) == 3 and not store.claim("k4", ttl=10, now=1) and store.claim("k0", ttl=10, now=1)
    assert store.claim("k4", ttl=10, now=11)  # expired


def test_source_allowlist() -> None:
    receiver = wukong_receiver(allow_from="10.0.0.0/8, 127.0.0.1")
    body = json.dumps(["alice-1-1-42-1-2"])
    assert receiver.handle("POST", HOOK, {}, {"event": "user.onlinestatus"}, body, client="10.1.2.3").status == 200
    refused = receiver.handle("POST", HOOK, {}, {"event": "user.onlinestatus"}, body, client="192.168.0.9")
    assert refused.status == 403 and isinstance(refused.refusal, PermissionDeniedError)
    assert receiver.handle("POST", HOOK, {}, {"event": "user.onlinestatus"}, body, client=None).status == 403
    with pytest.raises(ConfigurationError):
        wukong_receiver(allow_from="not-an-address")


def test_wukong_path_secret_rules() -> None:
    with pytest.raises(ConfigurationError):
        EventReceiver("wukong")
    with pytest.raises(ConfigurationError):
        EventReceiver("wukong", path_secret="short")
    receiver = wukong_receiver()
    body = json.dumps(["alice-1-1-42-1-2"])
    for path in ("/hooks/wukong/guess", f"/hooks/wukong/{PATH_SECRET[:-1]}", "/", f"/{PATH_SECRET}x"):
        reply = receiver.handle("POST", path, {}, {"event": "user.onlinestatus"}, body)
        assert reply.status == 404 and reply.handled == ()
    assert receiver.handle("GET", HOOK, {}, {"event": "user.onlinestatus"}, body).status == 405
    assert receiver.handle("POST", HOOK + "/", {}, {"event": "user.onlinestatus"}, body).status == 200


def test_online_status_maps_device_flags() -> None:
    reply = wukong_receiver().handle("POST", HOOK, {}, {"event": "user.onlinestatus"},
                                     json.dumps(["u-1-0-1-1-1-1", "u-1-2-1-7-1-2", "w-x-0-0-9-0-0"]))  # fmt: skip
    first, second, third = reply.handled
    assert isinstance(first, UserOnline) and first.user_id == "u-1" and first.device.value == "app"
    assert isinstance(second, UserOnline) and second.device.value == "desktop"
    assert isinstance(third, UserOffline) and third.user_id == "w-x" and third.device.value == "app"


def test_sync_handle_refuses_async_handlers_and_async_handle_awaits_them() -> None:
    receiver = wukong_receiver()
    seen: list[str] = []

    @receiver.on(MessageCreated)
    async def record(event: MessageCreated) -> None:
        await asyncio.sleep(0)
        seen.append(event.event_id)

    reply = receiver.handle("POST", HOOK, {}, {"event": "msg.notify"}, json.dumps(NOTIFY))
    assert reply.status == 500 and isinstance(reply.error, ConfigurationError) and seen == []
    reply = asyncio.run(receiver.handle_async("POST", HOOK, {}, {"event": "msg.notify"}, json.dumps(NOTIFY)))
    assert reply.status == 200 and seen == ["wukong:msg:2128000000000000001"]


async def test_the_asgi_app_serves_and_bounds_the_body() -> None:
    receiver = wukong_receiver()
    seen: list[BaseEvent] = []
    receiver.on()(seen.append)
    transport = httpx.ASGITransport(app=receiver.asgi, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        ok = await client.post(HOOK, params={"event": "msg.notify"}, content=json.dumps(NOTIFY))
        assert ok.status_code == 200 and len(seen) == 1
        huge = await client.post(HOOK, params={"event": "msg.notify"}, content=b"[" + b" " * receiver.max_body_bytes)
        assert huge.status_code == 413 and len(seen) == 1
        forged = await client.post("/hooks/wukong/nope", params={"event": "msg.notify"}, content=json.dumps(NOTIFY))
        assert forged.status_code == 404


def test_from_env_reads_provider_settings_and_receiver_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "tencent")
    monkeypatch.setenv("IMBRIDGE_TENCENT_SDK_APP_ID", str(APP))
    monkeypatch.setenv("IMBRIDGE_TENCENT_CALLBACK_TOKEN", TOKEN)
    monkeypatch.setenv("IMBRIDGE_EVENTS_DEDUPE_STORE", f"sqlite:///{tmp_path / 'd.db'}")
    receiver = EventReceiver.from_env(clock=lambda: REQUEST_TIME)
    assert receiver.provider == "tencent"
    reply = receiver.handle("POST", "/", {}, signed_query("C2C.CallbackAfterSendMsg"),
                            official_body("C2C.CallbackAfterSendMsg"))  # fmt: skip
    assert reply.status == 200 and len(reply.handled) == 1
    monkeypatch.delenv("IMBRIDGE_TENCENT_CALLBACK_TOKEN")
    with pytest.raises(ConfigurationError, match="callback token"):
        EventReceiver.from_env()
    monkeypatch.setenv("IMBRIDGE_EVENTS_INSECURE_SKIP_VERIFICATION", "true")
    with pytest.warns(UserWarning):
        EventReceiver.from_env()
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "wukong")
    monkeypatch.setenv("IMBRIDGE_EVENTS_INSECURE_SKIP_VERIFICATION", "false")
    monkeypatch.setenv("IMBRIDGE_WUKONG_WEBHOOK_SECRET", PATH_SECRET)
    monkeypatch.setenv("IMBRIDGE_EVENTS_ALLOW_FROM", "127.0.0.1")
    wukong = EventReceiver.from_env()
    body = json.dumps(["alice-1-1-42-1-2"])
    assert wukong.handle("POST", HOOK, {}, {"event": "user.onlinestatus"}, body, client="127.0.0.1").status == 200
    assert wukong.handle("POST", HOOK, {}, {"event": "user.onlinestatus"}, body, client="10.0.0.1").status == 403


def test_tencent_retries_and_replays_inside_the_window_are_one_event() -> None:
    receiver = tencent_receiver()
    seen: list[BaseEvent] = []
    receiver.on()(seen.append)
    body = official_body("Group.CallbackAfterSendMsg")
    first = receiver.handle("POST", "/", {}, signed_query("Group.CallbackAfterSendMsg"), body)
    # A retry signed a second later carries the same message: the same event id.
    later = tencent_receiver(now=REQUEST_TIME + 1, dedupe=receiver._dedupe)
    later.on()(seen.append)
    again = later.handle("POST", "/", {}, signed_query("Group.CallbackAfterSendMsg", at=REQUEST_TIME + 1), body)
    assert first.status == again.status == 200 and again.duplicates == 1 and len(seen) == 1


def _race(receivers: list[EventReceiver], deliveries: int) -> list[str]:
    seen: list[str] = []
    lock = threading.Lock()

    def count(event: BaseEvent) -> None:
        with lock:
            seen.append(event.event_id)

    for receiver in receivers:
        receiver.on(MessageCreated)(count)
    barrier = threading.Barrier(deliveries)

    def deliver(index: int) -> None:
        barrier.wait()
        assert _notify(receivers[index % len(receivers)]) == 200

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(deliveries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_workers_on_one_postgresql_database_hand_an_event_on_once(imbridge_postgres: Any) -> None:
    url = imbridge_postgres.fresh_database()
    stores = [SQLDedupeStore(url) for _ in range(3)]  # three workers, each with its own connection pool
    try:
        assert _race([wukong_receiver(dedupe=store) for store in stores], 9) == ["wukong:msg:2128000000000000001"]
        # An expired claim is taken over; a released one is free again.
        assert stores[0].claim("k", ttl=10, now=100) and not stores[1].claim("k", ttl=10, now=105)
        assert stores[2].claim("k", ttl=10, now=111)
        stores[0].release("k")
        assert stores[1].claim("k", ttl=10, now=112)
    finally:
        for store in stores:
            store.close()


def test_the_asgi_query_parser_agrees_with_parse_qsl() -> None:
    from urllib.parse import parse_qsl

    from hypothesis import given
    from hypothesis import strategies as st

    from imbridge.events.asgi import _query

    @given(st.text(alphabet="ab=&%+2F0x", max_size=30))
    def agree(text: str) -> None:
        expected: dict[str, str] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            expected.setdefault(name, value)
        assert _query(text.encode()) == expected

    agree()
