"""The Tencent emulator's conversation commands, raw: recentcontact paging with both cursor pairs and pinned
conversations, deletion, unread counts and read positions (each rule is cited in the emulator's code)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_tencent_emulator import APP, KEY, make, raw

from imbridge import Conversation, IMClient
from imbridge.emulators.tencent import TencentEmulator
from imbridge.errors import ProviderError
from imbridge.testing import FakeClock

FIRST_PAGE = {"TimeStamp": 0, "StartIndex": 0, "TopTimeStamp": 0, "TopStartIndex": 0}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[TencentEmulator]:
    emu = TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=clock, recent_contacts_page=2)
    yield emu
    emu.close()


@pytest.fixture
def im(emulator: TencentEmulator, clock: FakeClock) -> Iterator[IMClient]:
    client = make(emulator, clock=clock)
    client.users.register(["me", "p1", "p2", "p3", "p4", "p5"])
    yield client
    client.close()


def _send(im: IMClient, clock: FakeClock, sender: str, to: str, text: str = "x", seconds: float = 1.0) -> None:
    im.messages.send(sender, Conversation.user(to), text)
    clock.advance(seconds)


def _pages(im: IMClient, user: str, flags: int) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"From_Account": user, **FIRST_PAGE, "AssistFlags": flags}
    pages = []
    for _ in range(10):
        reply = raw(im, "recentcontact/get_list", body)
        pages.append(reply)
        if reply["CompleteFlag"] == 1:
            return pages
        body.update({k: reply[k] for k in ("TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex")})
    raise AssertionError("never complete")


def _names(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item.get("To_Account") or item["GroupId"], item["TopFlag"]) for item in page["SessionItem"]]


def test_general_conversations_page_by_time_and_index(im: IMClient, clock: FakeClock) -> None:
    for peer in ("p1", "p2", "p3", "p4", "p5"):
        _send(im, clock, peer, "me")
    pages = _pages(im, "me", 7)
    assert [_names(p) for p in pages] == [[("p5", 0), ("p4", 0)], [("p3", 0), ("p2", 0)], [("p1", 0)]]
    assert pages[0]["TimeStamp"] == pages[0]["SessionItem"][-1]["MsgTime"] and pages[0]["StartIndex"] == 1


def test_a_second_shared_by_conversations_is_split_by_start_index(im: IMClient, clock: FakeClock) -> None:
    for peer in ("p1", "p2", "p3"):
        _send(im, clock, peer, "me", seconds=0.1)  # all three in one second
    pages = _pages(im, "me", 7)
    assert [name for p in pages for name, _ in _names(p)] == ["p3", "p2", "p1"]
    assert pages[0]["StartIndex"] == 2  # two of that second's conversations were returned


def test_pinned_first_and_paged_with_their_own_cursor(
    im: IMClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    for peer in ("p1", "p2", "p3", "p4"):
        _send(im, clock, peer, "me")
    emulator.pin("me", "p1")
    emulator.pin("me", "p2")
    emulator.pin("me", "p3")
    # Bit 2 set: the pinned ones come first, paged by TopTimeStamp/TopStartIndex.
    paged = _pages(im, "me", 7)
    assert [_names(p) for p in paged] == [[("p3", 1), ("p2", 1)], [("p1", 1), ("p4", 0)]]
    assert paged[0]["TopStartIndex"] == 1 and paged[0]["StartIndex"] == 0
    # Bit 2 clear: every pinned one on the first page, even beyond the page size.
    unpaged = _pages(im, "me", 1)
    assert _names(unpaged[0]) == [("p3", 1), ("p2", 1), ("p1", 1)]
    # Bit 0 clear: no pinned conversations at all.
    assert [name for p in _pages(im, "me", 0) for name in _names(p)] == [
        ("p4", 0), ("p3", 0), ("p2", 0), ("p1", 0),
    ]  # fmt: skip


def test_deleted_contact_hides_until_a_newer_message(im: IMClient, clock: FakeClock) -> None:
    _send(im, clock, "p1", "me")
    _send(im, clock, "p2", "me")
    raw(im, "recentcontact/delete", {"From_Account": "me", "Type": 1, "To_Account": "p1", "ClearRamble": 0})
    assert [name for p in _pages(im, "me", 7) for name, _ in _names(p)] == ["p2"]
    _send(im, clock, "p1", "me")
    assert [name for p in _pages(im, "me", 7) for name, _ in _names(p)] == ["p1", "p2"]
    with pytest.raises(ProviderError) as caught:  # 50002: Type is 1 or 2
        raw(im, "recentcontact/delete", {"From_Account": "me", "Type": 3})
    assert caught.value.native_code == 50002
    with pytest.raises(ProviderError) as caught:  # 50001: not imported
        raw(im, "recentcontact/get_list", {"From_Account": "ghost", **FIRST_PAGE, "AssistFlags": 7})
    assert caught.value.native_code == 50001


def test_c2c_unread_counts_and_read_time(im: IMClient, clock: FakeClock) -> None:
    for _ in range(3):
        _send(im, clock, "p1", "me")
    _send(im, clock, "me", "p1")  # own messages are not "unread messages of To_Account"
    _send(im, clock, "p2", "me")
    counts = raw(im, "openim/get_c2c_unread_msg_num", {"To_Account": "me", "Peer_Account": ["p1", "p2", "nobody"]})
    assert counts["C2CUnreadMsgNumList"] == [{"Peer_Account": "p1", "C2CUnreadMsgNum": 3},
                                             {"Peer_Account": "p2", "C2CUnreadMsgNum": 1}]  # fmt: skip
    assert counts["ErrorList"] == [{"Peer_Account": "nobody", "ErrorCode": 70107}]
    assert raw(im, "openim/get_c2c_unread_msg_num", {"To_Account": "me"})["AllC2CUnreadMsgNum"] == 4
    history = im.messages.history(Conversation.user("p1"), viewer="me", limit=10).items
    second_newest = sorted(m.time for m in history if m.sender == "p1")[1]
    raw(im, "openim/admin_set_msg_read",
        {"Report_Account": "me", "Peer_Account": "p1", "MsgReadTime": str(int(second_newest.timestamp()))})  # fmt: skip
    counts = raw(im, "openim/get_c2c_unread_msg_num", {"To_Account": "me", "Peer_Account": ["p1"]})
    assert counts["C2CUnreadMsgNumList"][0]["C2CUnreadMsgNum"] == 2  # messages *before* that second are read
    raw(im, "openim/admin_set_msg_read", {"Report_Account": "me", "Peer_Account": "p1"})
    counts = raw(im, "openim/get_c2c_unread_msg_num", {"To_Account": "me", "Peer_Account": ["p1"]})
    assert counts["C2CUnreadMsgNumList"][0]["C2CUnreadMsgNum"] == 0
    with pytest.raises(ProviderError) as caught:
        raw(im, "openim/get_c2c_unread_msg_num", {"To_Account": "me", "Peer_Account": [f"p{i}" for i in range(11)]})
    assert caught.value.native_code == 90001


def test_group_read_position_from_joining_and_set_unread(im: IMClient, clock: FakeClock) -> None:
    group = im.groups.create("G", owner="p1", members=["p2"])
    for text in ("a", "b"):
        im.messages.send("p1", Conversation.group(group.id), text)
        clock.advance(1)
    im.groups.add_members(group.id, ["me"])
    clock.advance(1)
    im.messages.send("p1", Conversation.group(group.id), "c")
    joined = raw(im, "group_open_http_svc/get_joined_group_list", {
        "Member_Account": "me", "ResponseFilter": {"GroupBaseInfoFilter": ["NextMsgSeq"],
                                                  "SelfInfoFilter": ["MsgSeq", "Role"]}})  # fmt: skip
    assert joined["TotalCount"] == 1
    own = {"MsgSeq": 2, "Role": "Member"}  # read up to the two messages before joining
    assert joined["GroupIdList"] == [{"GroupId": group.id, "NextMsgSeq": 4, "SelfInfo": own}]
    raw(im, "group_open_http_svc/set_unread_msg_num", {"GroupId": group.id, "Member_Account": "me", "UnreadMsgNum": 9})
    joined = raw(im, "group_open_http_svc/get_joined_group_list",
                 {"Member_Account": "me", "ResponseFilter": {"SelfInfoFilter": ["MsgSeq"]}})  # fmt: skip
    assert joined["GroupIdList"][0]["SelfInfo"] == {"MsgSeq": 0}  # more than the group holds: all of it
    assert raw(im, "group_open_http_svc/get_joined_group_list", {"Member_Account": "me"})["GroupIdList"] == [
        {"GroupId": group.id}
    ]
    with pytest.raises(ProviderError) as caught:
        raw(im, "group_open_http_svc/set_unread_msg_num",
            {"GroupId": group.id, "Member_Account": "p5", "UnreadMsgNum": 1})  # fmt: skip
    assert caught.value.native_code == 10007
