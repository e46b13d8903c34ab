"""The WuKongIM emulator: its quirks, imbridge's real provider on it (sync, async, loopback), persistence."""
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from imbridge import AsyncIMClient, Conversation, IMClient, Text
from imbridge.emulators import serve
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from imbridge.providers.wukong.wire import fake_channel_id
from imbridge.retry import RetryPolicy
from imbridge.testing.clock import FakeClock

TOKEN = "emulator-test-token"  # made up for these tests


def payload(text: str) -> str:
    return base64.b64encode(json.dumps({"type": 1, "content": text}).encode()).decode()


def raw_client(emulator: WukongEmulator, token: str | None = TOKEN) -> httpx.Client:
    headers = {"token": token} if token else {}
    return httpx.Client(transport=emulator.transport(), base_url="http://wk.emulator", headers=headers)


def im_client(emulator: WukongEmulator, tmp_path: Path, **settings: Any) -> IMClient:
    return IMClient(
        "wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "imbridge.db"),
        http_client=httpx.Client(transport=emulator.transport()), retry=RetryPolicy(initial_backoff=0),
        clock=FakeClock(), **settings,
    )  # fmt: skip


@pytest.fixture
def emulator() -> WukongEmulator:
    return WukongEmulator(manager_token=TOKEN)


def test_send_answers_before_the_message_is_stored() -> None:
    emulator = WukongEmulator(manager_token=TOKEN, store_delay_requests=2)
    with raw_client(emulator) as http:
        sent = http.post("/message/send", json={"from_uid": "a", "channel_id": "g", "channel_type": 2,
                                                "client_msg_no": "c1", "payload": payload("hi")})  # fmt: skip
        assert sent.status_code == 200
        assert set(sent.json()["data"]) == {"client_msg_no", "message_id"}  # no message_seq
        lookup = {"channel_id": "g", "channel_type": "2", "client_msg_no": "c1"}
        assert http.get("/message/byclientmsgno", params=lookup).json() == {"status": 404}
        found = http.get("/message/byclientmsgno", params=lookup).json()  # the second request after the send
        assert found["message_seq"] == 1
        assert found["message_id"] == sent.json()["data"]["message_id"]


def test_flush_stores_every_accepted_message() -> None:
    emulator = WukongEmulator(store_delay_requests=100)
    with raw_client(emulator, token=None) as http:
        for n in range(3):
            http.post("/message/send", json={"channel_id": "g", "channel_type": 2, "payload": payload(str(n))})
        emulator.flush()
        body = http.post("/channel/messagesync", json={"login_uid": "x", "channel_id": "g", "channel_type": 2,
                                                       "limit": 10}).json()  # fmt: skip
    assert [m["message_seq"] for m in body["messages"]] == [1, 2, 3]
    assert {m["from_uid"] for m in body["messages"]} == {""}  # the system sender reads back as ""


def test_manager_token_is_required_when_configured(emulator: WukongEmulator) -> None:
    with raw_client(emulator, token="wrong") as http:
        refused = http.get("/health")
        assert (refused.status_code, refused.content) == (401, b"")
    with raw_client(emulator) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.options("/message/send").status_code == 204
    open_server = WukongEmulator()
    with raw_client(open_server, token=None) as http:
        assert http.get("/health").status_code == 200


def test_go_json_binding_quirks(emulator: WukongEmulator) -> None:
    with raw_client(emulator) as http:
        # Go matches keys case-insensitively and ignores what follows the first JSON value.
        body = '{"Channel_ID":"g1","channel_type":2,"subscribers":["a"]} trailing'
        assert http.post("/channel", content=body).json() == {"status": 200}
        assert http.get("/cluster/channels/g1/2/subscribers").json() == ["a"]
        bad = http.post("/message/send", json={"channel_id": "g1", "channel_type": 2, "payload": "ab=c"})
        assert bad.json() == {"msg": "illegal base64 data at input byte 2", "status": 400}
        big = http.post("/channel/subscriber_add", json={"channel_id": "g1", "channel_type": 2.5, "subscribers": ["b"]})
        assert big.json()["msg"] == (
            "数据格式有误！: json: cannot unmarshal number 2.5 into Go struct field subscriberAddReq.channel_type "
            "of type uint8"
        )


def test_provider_confirms_sends_by_polling(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=TOKEN, store_delay_requests=3)
    with im_client(emulator, tmp_path) as im:
        im.users.register(["alice", "bob"])
        im.groups.create(name="Team", owner="alice", members=["bob"], group_id="team")
        sent = im.messages.send(sender="alice", to=Conversation.group("team"), content=[Text("one")])
        assert sent.confirmed and sent.seq == 1
        page = im.messages.history(Conversation.group("team"), viewer="bob", limit=10)
        assert [m.elements for m in page.items] == [[Text("one")]]


def test_banned_group_drops_sends_silently_and_the_provider_says_so(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=TOKEN, store_delay_requests=1)
    with im_client(emulator, tmp_path, enforce_policy=False) as im:
        im.users.register(["alice"])
        im.groups.create(name="Quiet", owner="alice", members=[], group_id="quiet")
        im.groups.mute_all("quiet", True)
        with pytest.raises(PermissionDeniedError, match="did not store it"):
            im.messages.send(sender="alice", to=Conversation.group("quiet"), content=[Text("dropped")])
        im.groups.dismiss("quiet")
        with pytest.raises(NotFoundError):
            im.groups.get("quiet")
    with raw_client(emulator) as http:
        sync = http.post("/channel/messagesync", json={"login_uid": "alice", "channel_id": "quiet",
                                                       "channel_type": 2, "limit": 10}).json()  # fmt: skip
        assert sync["messages"] == []


def test_person_chat_lives_under_the_fake_id(emulator: WukongEmulator, tmp_path: Path) -> None:
    with im_client(emulator, tmp_path) as im:
        im.users.register(["pa", "pb"])
        im.messages.send(sender="pa", to=Conversation.user("pb"), content=[Text("hello")])
    with raw_client(emulator) as http:
        params = {"channel_id": fake_channel_id("pa", "pb"), "channel_type": "1", "client_msg_no": ""}
        sync = http.post("/channel/messagesync", json={"login_uid": "pb", "channel_id": "pa", "channel_type": 1,
                                                       "limit": 5}).json()  # fmt: skip
        params["client_msg_no"] = sync["messages"][0]["client_msg_no"]
        assert http.get("/message/byclientmsgno", params=params).json()["channel_id"] == "pb"  # the recipient
        params["channel_id"] = "pb"
        assert http.get("/message/byclientmsgno", params=params).json() == {"status": 404}


def test_wrong_token_surfaces_as_authentication_error(emulator: WukongEmulator, tmp_path: Path) -> None:
    client = IMClient(
        "wukong", base_url="http://wk.emulator", manager_token="not-it", store=str(tmp_path / "x.db"),
        http_client=httpx.Client(transport=emulator.transport()), retry=RetryPolicy(initial_backoff=0),
    )  # fmt: skip
    with client, pytest.raises(AuthenticationError) as caught:  # the whole call, never a per-user item (issue 13.9)
        client.users.register(["alice"])
    assert caught.value.http_status == 401


async def test_async_client_through_the_in_process_transport(emulator: WukongEmulator, tmp_path: Path) -> None:
    async with AsyncIMClient(
        "wukong", base_url="http://wk.emulator", manager_token=TOKEN, store=str(tmp_path / "a.db"),
        http_client=httpx.AsyncClient(transport=emulator.transport()), clock=FakeClock(),
    ) as im:  # fmt: skip
        await im.users.register(["alice", "bob"])
        await im.groups.create(name="Async", owner="alice", members=["bob"], group_id="async")
        sent = await im.messages.send(sender="bob", to=Conversation.group("async"), content=[Text("hey")])
        assert sent.seq == 1
        members = await im.groups.members("async")
        assert {m.user_id for m in members} == {"alice", "bob"}


async def test_async_client_default_driver_on_loopback(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=TOKEN, store_delay_requests=1)
    with serve(emulator) as server:
        async with AsyncIMClient("wukong", base_url=server.url, manager_token=TOKEN,
                                 store=str(tmp_path / "l.db")) as im:  # fmt: skip
            await im.users.register(["alice", "bob"])
            sent = await im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text("x")])
            assert sent.confirmed
        answer = httpx.get(server.url + "/no/such/route", headers={"token": TOKEN})
        assert (answer.status_code, answer.text, answer.headers["content-type"].split(";")[0]) == (
            404, "404 page not found", "text/plain")  # fmt: skip


def test_state_survives_a_restart_on_a_file_store(tmp_path: Path) -> None:
    path = str(tmp_path / "server.db")
    first = WukongEmulator(store=path)
    with raw_client(first, token=None) as http:
        sent = http.post("/message/send", json={"channel_id": "g", "channel_type": 2, "payload": payload("1")})
        http.post("/channel/info", json={"channel_id": "g", "channel_type": 2, "ban": 1})
    first.close()
    second = WukongEmulator(store=path)
    with raw_client(second, token=None) as http:
        assert http.get("/channel/max_message_seq", params={"channel_id": "g", "channel_type": "2"}).json() == {
            "message_seq": 1}  # fmt: skip
        info = http.get("/cluster/channels", params={"channel_id": "g", "channel_type": "2"}).json()["data"][0]
        assert info["ban"] == 1
        http.post("/channel/info", json={"channel_id": "g", "channel_type": 2})
        again = http.post("/message/send", json={"channel_id": "g", "channel_type": 2, "payload": payload("2")})
        assert again.json()["data"]["message_id"] > sent.json()["data"]["message_id"]
    second.close()


def test_seed_small_fills_users_groups_and_history(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=TOKEN)
    counts = emulator.seed("small")
    assert counts["users"] == 20 and counts["groups"] == 4 and counts["messages"] >= 40
    with raw_client(emulator) as http:
        members = http.get("/cluster/channels/group01/2/subscribers").json()
        denied = http.get("/cluster/channels/group01/2/denylist").json()
        assert 5 <= len(members) <= 8 and len(denied) == 1 and denied[0] in members
        assert http.get("/cluster/users", params={"uid": "user001"}).json()["data"][0]["uid"] == "user001"
    with im_client(emulator, tmp_path) as im:
        page = im.messages.history(Conversation.group("group01"), viewer=members[0], limit=100)
        assert page.items and all(isinstance(m.elements[0], Text) for m in page.items)
    with pytest.raises(ValueError):
        emulator.seed("huge")
    assert WukongEmulator().seed("small") == counts  # deterministic per rng_seed
    demo = WukongEmulator().seed("demo")
    assert demo["users"] == 200 and demo["groups"] == 20 and demo["messages"] > 1000


def test_for_client_takes_wukong_settings_keys() -> None:
    emulator = WukongEmulator.for_client({"base_url": "http://x", "manager_token": SecretStr("s3"), "store": "y.db"})
    assert emulator.manager_token == "s3" and emulator.store.path == ":memory:"
    assert emulator.store_delay_requests == 1
    assert WukongEmulator.for_client({}).manager_token is None
