"""Issue 17 on the WuKongIM provider, against imbridge's WuKongIM emulator (whose answers for these routes are
compared with the real v2.2.5 server's in ``tests/emulators/wukong_differential.py``): presence and kicks with
simulated connections, the header flags of delivery options and how each is confirmed, notifications, mutes
without an end, the store-kept administration."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import (
    Conversation,
    Delivery,
    DeviceKind,
    IMClient,
    NotFoundError,
    PresenceState,
    ServiceUnavailableError,
    TransportError,
    UnsupportedOperationError,
)
from imbridge.emulators.wukong import WukongEmulator
from imbridge.providers.wukong import wire
from imbridge.retry import RetryPolicy

TOKEN = "admin-test-manager-token"  # the emulator's, not a real server's


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path and r.content]

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@pytest.fixture
def emulator() -> Iterator[WukongEmulator]:
    server = WukongEmulator(manager_token=TOKEN, store_delay_requests=1)
    yield server
    server.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def im(emulator: WukongEmulator, recorder: Recorder, tmp_path: Path) -> Iterator[IMClient]:
    http = httpx.Client(transport=emulator.transport(), event_hooks={"request": [recorder]})
    client = IMClient("wukong", base_url="http://wukong.test", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                      http_client=http, retry=RetryPolicy(max_attempts=1))  # fmt: skip
    yield client
    client.close()
    http.close()


def _team(im: IMClient) -> str:
    im.users.register(["own", "adm", "mem"])
    im.groups.create("Team", owner="own", members=["mem"], admins=["adm"], group_id="g1")
    return "g1"


# -- presence and kicks ----------------------------------------------------------------------------


def test_presence_reports_each_connection_with_its_device_kind(im: IMClient, emulator: WukongEmulator) -> None:
    im.users.register(["alice", "bob"])
    im.users.login_credentials("alice", ttl=60)  # a token for settings.device_flag 0 (app)
    im.provider.call("POST", "/user/token", {"uid": "alice", "token": "web-token", "device_flag": 1,
                                            "device_level": 1})  # fmt: skip
    emulator.connect("alice", 0)
    emulator.connect("alice", 1)
    alice, bob = im.users.presence(["alice", "bob"])
    assert alice.state is PresenceState.ONLINE and alice.device_kinds() == {DeviceKind.APP, DeviceKind.WEB}
    assert sorted(d.platform for d in alice.devices) == ["APP", "WEB"]
    assert bob.state is PresenceState.OFFLINE and bob.devices == []


def test_kick_one_device_then_every_device(im: IMClient, emulator: WukongEmulator, recorder: Recorder) -> None:
    im.users.register(["alice"])
    im.provider.call("POST", "/user/token", {"uid": "alice", "token": "w", "device_flag": 1, "device_level": 1})
    im.provider.call("POST", "/user/token", {"uid": "alice", "token": "a", "device_flag": 0, "device_level": 1})
    web, app = emulator.connect("alice", 1), emulator.connect("alice", 0)
    im.users.kick("alice", device="web")
    assert recorder.bodies("/user/device_quit")[-1] == {"uid": "alice", "device_flag": 1}  # WEB
    assert emulator.kicked == {web: wire.REASON_CONNECT_KICK}
    assert im.users.presence(["alice"])[0].device_kinds() == {DeviceKind.APP}
    with pytest.raises(ValueError):
        emulator.connect("alice", 1)  # its token was blanked: that device cannot log in again with it
    im.users.kick("alice")
    assert recorder.bodies("/user/device_quit")[-1] == {"uid": "alice", "device_flag": -1}
    assert app in emulator.kicked and im.users.presence(["alice"])[0].state is PresenceState.OFFLINE


def test_kick_and_presence_of_unknown_users_send_nothing_to_quit(im: IMClient, recorder: Recorder) -> None:
    with pytest.raises(NotFoundError):
        im.users.kick("nobody")
    with pytest.raises(NotFoundError):
        im.users.presence(["nobody"])
    assert "/user/device_quit" not in recorder.paths() and "/user/onlinestatus" not in recorder.paths()


def test_exists_uses_the_server_for_users_the_store_does_not_know(im: IMClient, recorder: Recorder) -> None:
    im.provider.call("POST", "/user/token", {"uid": "outside", "token": "t", "device_flag": 0, "device_level": 0})
    assert im.users.exists(["outside", "nobody"]) == {"outside": True, "nobody": False}
    assert [r.url.params["uid"] for r in recorder.requests if r.url.path == "/cluster/users"] == ["outside", "nobody"]


def test_delete_is_refused_before_any_request(im: IMClient, recorder: Recorder) -> None:
    with pytest.raises(UnsupportedOperationError):
        im.users.delete(["alice"])
    assert recorder.requests == []


# -- delivery: header flags and confirmation --------------------------------------------------------


def test_online_only_send_is_not_confirmed_by_looking_it_up(im: IMClient, recorder: Recorder) -> None:
    group = _team(im)
    recorder.requests.clear()
    sent = im.messages.send("own", Conversation.group(group), "typing", delivery=Delivery(online_only=True))
    assert not sent.confirmed and sent.seq is None and sent.raw["persisted"] is False
    [body] = recorder.bodies("/message/send")
    assert body["header"] == {"no_persist": 1, "red_dot": 0}
    assert "/message/byclientmsgno" not in recorder.paths()


def test_no_persist_passed_through_options_is_not_looked_up_either(im: IMClient, recorder: Recorder) -> None:
    """The issue's bug: no_persist in options made the default confirmation fail with MAY HAVE LANDED."""
    group = _team(im)
    recorder.requests.clear()
    sent = im.messages.send("own", Conversation.group(group), "x", options={"header": {"no_persist": 1}})
    assert not sent.confirmed and "/message/byclientmsgno" not in recorder.paths()


def test_a_not_persisted_send_with_an_unknown_outcome_is_not_resent(emulator: WukongEmulator, tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/message/send":
            raise httpx.ReadError("connection reset after the request was written", request=request)
        return emulator.transport().handle_request(request)

    http = httpx.Client(transport=httpx.MockTransport(flaky))
    client = IMClient("wukong", base_url="http://w", manager_token=TOKEN, store=str(tmp_path / "s.db"),
                      http_client=http, retry=RetryPolicy(max_attempts=3, initial_backoff=0.0))  # fmt: skip
    client.users.register(["a", "b"])
    with pytest.raises((TransportError, ServiceUnavailableError), match="MAY HAVE LANDED"):
        client.messages.send("a", Conversation.user("b"), "ping", delivery=Delivery(online_only=True))
    assert calls.count("/message/send") == 1 and "/message/byclientmsgno" not in calls
    client.close()
    http.close()


def test_command_message_is_confirmed_in_the_command_twin(
    im: IMClient, recorder: Recorder, emulator: WukongEmulator
) -> None:
    im.users.register(["a", "b"])
    recorder.requests.clear()
    sent = im.messages.send("a", Conversation.user("b"), "refresh", delivery=Delivery(persist=False, online_only=False))
    assert sent.confirmed and sent.seq == 1
    assert recorder.bodies("/message/send")[0]["header"] == {"sync_once": 1, "red_dot": 0}
    lookups = [r.url.params["channel_id"] for r in recorder.requests if r.url.path == "/message/byclientmsgno"]
    assert lookups and all(c == wire.fake_channel_id("a", "b") + wire.CMD_SUFFIX for c in lookups)
    assert im.messages.history(Conversation.user("b"), viewer="a").items == []


def test_not_unread_is_red_dot_zero_and_no_conversation_update_is_refused(im: IMClient, recorder: Recorder) -> None:
    group = _team(im)
    recorder.requests.clear()
    sent = im.messages.send("own", Conversation.group(group), "quiet", delivery=Delivery(unread=False))
    assert sent.confirmed and recorder.bodies("/message/send")[0]["header"] == {"red_dot": 0}
    recorder.requests.clear()
    with pytest.raises(UnsupportedOperationError):
        im.messages.send("own", Conversation.group(group), "x", delivery=Delivery(update_conversation=False))
    assert recorder.requests == []


def test_batch_delivery_header(im: IMClient, recorder: Recorder) -> None:
    im.users.register(["a", "b", "c"])
    recorder.requests.clear()
    result = im.messages.send_batch("a", ["b", "c"], "bulk", delivery=Delivery(online_only=True))
    assert result.ok and recorder.bodies("/message/sendbatch")[0]["header"] == {"no_persist": 1, "red_dot": 0}


# -- notifications, mutes, administration -----------------------------------------------------------


def _payload(body: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(body["payload"]))
    return decoded


def test_notify_is_an_online_command_from_the_system_account(im: IMClient, recorder: Recorder) -> None:
    group = _team(im)
    recorder.requests.clear()
    im.groups.notify(group, "maintenance at 22:00")
    im.groups.notify(group, "on duty", to=["adm"])
    everyone, some = recorder.bodies("/message/send")
    assert everyone["header"] == {"no_persist": 1, "red_dot": 0} and "from_uid" not in everyone
    assert (everyone["channel_id"], everyone["channel_type"]) == (group, wire.GROUP)
    assert _payload(everyone) == {"type": 99, "cmd": "groupSystemNotification",
                                  "param": {"group_id": group, "content": "maintenance at 22:00"}}  # fmt: skip
    assert some["header"] == {"no_persist": 1, "sync_once": 1, "red_dot": 0} and some["subscribers"] == ["adm"]
    assert "channel_id" not in some
    with pytest.raises(NotFoundError):
        im.groups.notify(group, "hi", to=["stranger"])


def test_mute_forever_leaves_no_expiry_to_lift(im: IMClient, recorder: Recorder) -> None:
    group = _team(im)
    im.groups.mute(group, ["mem"], duration=60)
    im.groups.mute(group, ["mem"], duration=None)  # replaces the timed mute
    [muted] = im.groups.muted(group)
    assert muted.muted and muted.muted_until is None
    assert recorder.bodies("/channel/blacklist_add")[-1]["uids"] == ["mem"]
    assert "mem" in im.provider.call("GET", f"/cluster/channels/{group}/2/denylist")


def test_roles_owner_name_cards_and_join_policy_live_in_the_store(im: IMClient, recorder: Recorder) -> None:
    group = _team(im)
    before = len(recorder.requests)
    im.groups.set_role(group, "mem", "admin")
    im.groups.transfer_owner(group, "adm")
    im.groups.set_name_card(group, "mem", "Mem")
    written = {r.url.path for r in recorder.requests[before:] if r.method == "POST"}
    assert written == set()  # WuKongIM has none of these: nothing is written to it, only reads
    members = {m.user_id: (m.role.value, m.name_card) for m in im.groups.members(group)}
    assert members == {"own": ("member", None), "adm": ("owner", None), "mem": ("admin", "Mem")}
    with pytest.raises(NotFoundError):
        im.groups.set_role(group, "stranger", "admin")


def test_list_pages_by_creation_time(im: IMClient, emulator: WukongEmulator, recorder: Recorder) -> None:
    im.users.register(["own"])
    for name in ("g1", "g2", "g3"):
        im.groups.create(name, owner="own", group_id=name)
    im.groups.dismiss("g2")  # still listed by WuKongIM (disband 1): skipped
    first = im.groups.list(limit=2)
    assert [g.id for g in first.items] == ["g3"] and first.next_cursor is not None
    second = im.groups.list(limit=2, cursor=first.next_cursor)
    assert [g.id for g in second.items] == ["g1"] and second.next_cursor is None
    queries = [dict(r.url.params) for r in recorder.requests if r.url.path == "/cluster/channels"][-2:]
    assert "offset_created_at" not in queries[0] and int(queries[1]["offset_created_at"]) > 0
