"""The Tencent emulator's issue 17 commands, each answering as its official page says (the page is named in
the emulator's docstring of the handler), driven through imbridge's Tencent provider or raw v4 calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_tencent_emulator import make

from imbridge import Conversation, Delivery, DeviceKind, IMClient, PresenceState
from imbridge.emulators.tencent import MUTE_PERMANENT, TencentEmulator
from imbridge.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from imbridge.testing import FakeClock

KEY = "emulator-test-key-not-a-secret"
APP = 1400000001


@pytest.fixture
def emulator() -> Iterator[TencentEmulator]:
    emu = TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=FakeClock())
    yield emu
    emu.close()


@pytest.fixture
def im(emulator: TencentEmulator) -> Iterator[IMClient]:
    client = make(emulator, clock=emulator.clock)  # type: ignore[arg-type]
    yield client
    client.close()


def _raw(im: IMClient, service: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = im.provider.call(service, command, body)
    return reply


def test_presence_and_kick(im: IMClient, emulator: TencentEmulator) -> None:
    im.users.register(["alice", "bob"])
    emulator.connect("alice", "Web")
    emulator.connect("alice", "iPhone", "PushOnline")
    alice, bob = im.users.presence(["alice", "bob"])
    assert alice.state is PresenceState.ONLINE and alice.device_kinds() == {DeviceKind.WEB}
    assert alice.device_kinds(PresenceState.BACKGROUND) == {DeviceKind.APP}
    assert bob.state is PresenceState.OFFLINE
    im.users.kick("alice")  # every device of the account
    assert im.users.presence(["alice"])[0].state is PresenceState.OFFLINE
    with pytest.raises(NotFoundError):
        im.users.presence(["ghost"])  # every account unknown: the whole request fails with 70107


def test_account_check_and_delete(im: IMClient, emulator: TencentEmulator) -> None:
    im.users.register(["alice", "bob"])
    im.groups.create("G", owner="alice", members=["bob"], group_id="g1")
    result = im.users.delete(["bob", "ghost"])
    assert result.succeeded == ["bob"] and result.failed[0].native_code == 70107
    assert im.users.exists(["alice", "bob"]) == {"alice": True, "bob": False}
    assert [m.user_id for m in im.groups.members("g1")] == ["alice"]


def test_roles_owner_and_name_cards(im: IMClient) -> None:
    im.users.register(["own", "adm", "mem", "out"])
    im.groups.create("G", owner="own", members=["mem"], admins=["adm"], group_id="g1")
    im.groups.set_role("g1", "mem", "admin")
    im.groups.set_name_card("g1", "mem", "Mem")
    im.groups.transfer_owner("g1", "adm")
    members = {m.user_id: (m.role.value, m.name_card) for m in im.groups.members("g1")}
    assert members == {"own": ("member", None), "adm": ("owner", None), "mem": ("admin", "Mem")}
    assert im.groups.get("g1").owner == "adm"
    with pytest.raises(InvalidRequestError):
        im.groups.set_role("g1", "adm", "member")  # the owner's role: 10004
    with pytest.raises(PermissionDeniedError):
        im.groups.transfer_owner("g1", "out")  # not a member


def test_joined_and_list(im: IMClient) -> None:
    im.users.register(["own", "mem"])
    for gid in ("g1", "g2", "g3"):
        im.groups.create(gid.upper(), owner="own", members=["mem"] if gid != "g3" else [], group_id=gid)
    joined = {j.group.id: (j.role.value, j.group.name) for j in im.groups.joined("mem")}
    assert joined == {"g1": ("member", "G1"), "g2": ("member", "G2")}
    first = im.groups.list(limit=2)
    second = im.groups.list(limit=2, cursor=first.next_cursor)
    assert [g.id for g in first.items + second.items] == ["g1", "g2", "g3"] and second.next_cursor is None


def test_join_policy_and_full_group(im: IMClient) -> None:
    im.users.register(["own", "a", "b", "c"])
    group = im.groups.create("G", owner="own", members=["a"], group_id="g1", join_option="closed", max_members=3)
    assert (group.join_option.value if group.join_option else None, group.max_members) == ("closed", 3)
    with pytest.raises(PermissionDeniedError):  # 10014: the group is full
        im.groups.add_members("g1", ["b", "c"])
    assert im.groups.add_members("g1", ["b"]).ok
    with pytest.raises(InvalidRequestError):
        im.groups.update("g1", max_members=2)  # below the members it has


def test_permanent_mute_reads_back_as_the_documented_value(im: IMClient) -> None:
    im.users.register(["own", "mem"])
    im.groups.create("G", owner="own", members=["mem"], group_id="g1")
    im.groups.mute("g1", ["mem"], None)
    raw = _raw(im, "group_open_http_svc", "get_group_muted_account", {"GroupId": "g1"})
    assert raw["MutedAccountList"] == [{"Member_Account": "mem", "MutedUntil": MUTE_PERMANENT}]
    [muted] = im.groups.muted("g1")
    assert muted.muted and muted.muted_until is None
    with pytest.raises(PermissionDeniedError):
        im.messages.send("mem", Conversation.group("g1"), "hello?")


def test_online_only_messages_are_not_stored(im: IMClient) -> None:
    im.users.register(["a", "b"])
    im.groups.create("G", owner="a", members=["b"], group_id="g1")
    im.messages.send("a", Conversation.user("b"), "ping", delivery=Delivery(online_only=True))
    im.messages.send("a", Conversation.group("g1"), "typing", delivery=Delivery(online_only=True))
    im.messages.send("a", Conversation.group("g1"), "quiet", delivery=Delivery(unread=False))
    assert im.messages.history(Conversation.user("b"), viewer="a").items == []
    [kept] = im.messages.history(Conversation.group("g1"), viewer="b").items
    assert kept.elements[0].text == "quiet"  # type: ignore[union-attr]
    with pytest.raises(InvalidRequestError):  # SendMsgControl cannot be used with OnlineOnlyFlag 1
        _raw(im, "group_open_http_svc", "send_group_msg",
             {"GroupId": "g1", "Random": 1, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}}],
              "OnlineOnlyFlag": 1, "SendMsgControl": ["NoUnread"]})  # fmt: skip


def test_system_notifications_are_recorded_not_stored(im: IMClient, emulator: TencentEmulator) -> None:
    im.users.register(["own", "a", "b"])
    im.groups.create("G", owner="own", members=["a", "b"], group_id="g1")
    im.groups.notify("g1", "to all")
    im.groups.notify("g1", "to a", to=["a"])
    (group_everyone, everyone, text), to_a = emulator.notifications
    assert (group_everyone, sorted(everyone), text) == ("g1", ["a", "b", "own"], "to all")
    assert to_a == ("g1", ["a"], "to a")
    assert im.messages.history(Conversation.group("g1"), viewer="a").items == []
