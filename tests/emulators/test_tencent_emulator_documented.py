"""The Tencent emulator's answers for issue 14, each as the official page quoted in the emulator defines it:
group_msg_get_simple IsFinished 0/1/2 with a byte budget, get_group_member_info paging caps in both styles,
get_group_info ResponseFilter, documented limits with their codes, and the C2C dedupe key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from test_tencent_emulator import ADMIN, APP, KEY, direct, make

from imbridge import Conversation, IMClient
from imbridge.emulators.tencent import TencentEmulator
from imbridge.testing import FakeClock

SIMPLE = "group_open_http_svc/group_msg_get_simple"
MEMBERS = "group_open_http_svc/get_group_member_info"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[TencentEmulator]:
    emu = TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=clock, community_groups=True)
    yield emu
    emu.close()


@pytest.fixture
def im(emulator: TencentEmulator, clock: FakeClock) -> Iterator[IMClient]:
    client = make(emulator, clock=clock)
    yield client
    client.close()


def _group(im: IMClient, messages: int, text: str = "hi") -> None:
    im.users.register(["own", "mem"])
    im.groups.create("Team", owner="own", members=["mem"], group_id="team")
    for i in range(messages):
        im.messages.send("mem", Conversation.group("team"), f"{i} {text}")


def test_is_finished_1_is_about_the_window_not_the_group(im: IMClient, emulator: TencentEmulator) -> None:
    _group(im, 30)
    answer = direct(emulator, SIMPLE, {"GroupId": "team", "ReqMsgSeq": 30, "ReqMsgNumber": 2})
    assert [m["MsgSeq"] for m in answer["RspMsgList"]] == [30, 29] and answer["IsFinished"] == 1


def test_a_long_window_is_cut_and_says_0(im: IMClient, emulator: TencentEmulator) -> None:
    _group(im, 20, "long " * 200)
    emulator.history_answer_bytes = 3_000
    answer = direct(emulator, SIMPLE, {"GroupId": "team", "ReqMsgNumber": 20, "WithRecalledMsg": 1})
    seqs = [m["MsgSeq"] for m in answer["RspMsgList"]]
    assert answer["IsFinished"] == 0 and seqs == list(range(20, 20 - len(seqs), -1)) and 0 < len(seqs) < 20
    rest = direct(emulator, SIMPLE, {"GroupId": "team", "ReqMsgSeq": min(seqs) - 1, "ReqMsgNumber": 20 - len(seqs)})
    assert rest["RspMsgList"][0]["MsgSeq"] == min(seqs) - 1
    # The provider reads every message through the cut windows.
    history = list(im.messages.iter_history(Conversation.group("team"), "own", page_size=7))
    assert [m.seq for m in history] == list(range(20, 0, -1))


def test_more_than_20_asked_is_cut_and_all_expired_says_2(im: IMClient, emulator: TencentEmulator,
                                                         clock: FakeClock) -> None:  # fmt: skip
    _group(im, 25)
    clock.advance(timedelta(days=8))  # past the 7-day retention
    answer = direct(emulator, SIMPLE, {"GroupId": "team", "ReqMsgNumber": 25})
    assert len(answer["RspMsgList"]) == 20 and answer["IsFinished"] == 2
    assert {(m["IsPlaceMsg"], len(m["MsgBody"])) for m in answer["RspMsgList"]} == {(1, 0)}
    assert im.messages.history(Conversation.group("team"), "own", limit=50).items == []


def test_member_paging_caps_and_styles(im: IMClient, emulator: TencentEmulator, clock: FakeClock) -> None:
    users = [f"u{i:03d}" for i in range(260)]
    im.users.register(users)
    im.groups.create("Big", owner="u000", members=users[1:], group_id="big")
    assert direct(emulator, MEMBERS, {"GroupId": "big", "Limit": 201})["ErrorCode"] == 10004
    assert direct(emulator, MEMBERS, {"GroupId": "big", "Limit": 50, "Next": ""})["ErrorCode"] == 10004
    page = direct(emulator, MEMBERS, {"GroupId": "big", "Limit": 200, "Offset": 200})
    assert page["MemberNum"] == 260 and len(page["MemberList"]) == 60 and "Next" not in page
    with make(emulator, clock=clock, group_type="Community") as clubs:
        community = clubs.groups.create("Club", owner="u000", members=users[1:99]).id
    assert community.startswith("@TGS#_")
    im.groups.add_members(community, users[99:])
    assert direct(emulator, MEMBERS, {"GroupId": community, "Limit": 101, "Next": ""})["ErrorCode"] == 10004
    assert direct(emulator, MEMBERS, {"GroupId": community, "Limit": 50, "Offset": 0})["ErrorCode"] == 10004
    first = direct(emulator, MEMBERS, {"GroupId": community, "Limit": 100, "Next": ""})
    assert len(first["MemberList"]) == 100 and first["Next"]
    assert [m.user_id for m in im.groups.members(community)] == users
    assert len(im.groups.members("big")) == 260


def test_response_filter_returns_only_what_it_names(im: IMClient, emulator: TencentEmulator) -> None:
    _group(im, 3)
    info = "group_open_http_svc/get_group_info"
    named = direct(emulator, info, {"GroupIdList": ["team"], "ResponseFilter": {"GroupBaseInfoFilter": ["Name"]}})
    assert set(named["GroupInfo"][0]) == {"GroupId", "ErrorCode", "ErrorInfo", "Name"}
    members = direct(emulator, info, {"GroupIdList": ["team"], "ResponseFilter": {"MemberInfoFilter": ["Role"]}})
    (item,) = members["GroupInfo"]
    assert "Name" not in item and {frozenset(m) for m in item["MemberList"]} == {frozenset({"Member_Account", "Role"})}
    whole = direct(emulator, info, {"GroupIdList": ["team"]})["GroupInfo"][0]
    assert whole["NextMsgSeq"] == 4 and whole["MemberList"] and whole["Name"] == "Team"
    group = im.groups.get("team")
    assert (group.name, group.owner, group.member_count) == ("Team", "own", 2)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Type": "Public", "Name": "n" * 31}, 10004),
        ({"Type": "Public", "Name": "ok", "Introduction": "i" * 241}, 10004),
        ({"Type": "Public", "Name": "ok", "Notification": "é" * 151}, 10004),
        ({"Type": "Public", "Name": "ok", "FaceUrl": "f" * 101}, 10004),
        ({"Type": "Public", "Name": "ok", "GroupId": "g" * 49}, 10015),
        ({"Type": "Public", "Name": "ok", "GroupId": "g" * 48}, 0),
    ],
)  # fmt: skip
def test_documented_limits_get_their_codes(emulator: TencentEmulator, body: dict[str, Any], code: int) -> None:
    assert direct(emulator, "group_open_http_svc/create_group", body)["ErrorCode"] == code


def test_c2c_dedupe_key_has_no_recipient(im: IMClient, emulator: TencentEmulator, clock: FakeClock) -> None:
    im.users.register(["alice", "bob", "carol"])
    message = {"From_Account": "alice", "MsgSeq": 7, "MsgRandom": 9,
               "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "same"}}]}  # fmt: skip
    first = direct(emulator, "openim/sendmsg", {**message, "To_Account": "bob"})
    copy = direct(emulator, "openim/sendmsg", {**message, "To_Account": "carol"})
    assert copy["ErrorCode"] == 0 and copy["MsgKey"] == first["MsgKey"]
    assert im.messages.history(Conversation.user("alice"), "carol", limit=5).items == []
    clock.advance(timedelta(seconds=121))
    direct(emulator, "openim/sendmsg", {**message, "To_Account": "carol"})
    assert len(im.messages.history(Conversation.user("alice"), "carol", limit=5).items) == 1
    assert ADMIN  # the admin sends these raw requests
