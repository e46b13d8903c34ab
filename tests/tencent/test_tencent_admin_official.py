"""Issue 17 on Tencent, against the official documentation's own examples.

Each request imbridge sends is compared with the request examples of its command's fixture (path, query,
field names and JSON types, via ``check_request``), and the official response examples are parsed into the
normalized results. Where a fixture's example is the exact request, the body is compared whole.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tencent_support import Sent, fail, make_client, official, ok
from test_tencent_official import answers, check_request

from imbridge import (
    Conversation,
    Delivery,
    DeviceKind,
    JoinOption,
    NotFoundError,
    PermissionDeniedError,
    PresenceState,
    Role,
    UnsupportedOperationError,
)
from imbridge.errors import InvalidRequestError
from imbridge.testing import FakeClock


def _example(command: str, index: int = 0, kind: str = "request_examples") -> dict[str, Any]:
    body: dict[str, Any] = official(command)[kind][index]["body"]
    return body


# -- presence and sessions, accounts -----------------------------------------------------------------


def test_query_online_status_against_the_official_examples() -> None:
    # The mirrored page's detailed answer: id1 Online on IPhone (PushOnline) and Web (Online), id2 Offline,
    # id4 in ErrorList (70107) — asked for id1, id2 only, so it is the detail example read as is.
    detailed = _example("query_online_status", 1, "response_examples")
    im, server = make_client(lambda s: detailed)
    [first, second] = im.users.presence(["id1", "id2"])
    check_request(server.sent[0], "query_online_status", required={"To_Account", "IsNeedDetail"})
    assert server.sent[0].body == {"To_Account": ["id1", "id2"], "IsNeedDetail": 1}
    assert first.state is PresenceState.ONLINE and first.online
    assert [(d.kind, d.platform, d.state) for d in first.devices] == [
        (DeviceKind.APP, "IPhone", PresenceState.BACKGROUND),
        (DeviceKind.WEB, "Web", PresenceState.ONLINE),
    ]
    assert first.device_kinds() == {DeviceKind.WEB}
    assert second.state is PresenceState.OFFLINE and second.devices == []


def test_query_online_status_states_and_unknown_accounts() -> None:
    # The mirrored summary example (State: Offline, Online, PushOnline; id4 unknown) and the current page's
    # (Status, https://cloud.tencent.com/document/product/269/2566): the same reading from both spellings.
    for body in (_example("query_online_status", 0, "response_examples"),
                 official("query_online_status")["current_page"]["current_examples"][0]["body"]):  # fmt: skip
        im, _ = make_client(lambda s, body=body: body)
        states = [p.state for p in im.users.presence(["id1", "id2", "id3"])]
        assert states == [PresenceState.OFFLINE, PresenceState.ONLINE, PresenceState.BACKGROUND]
        with pytest.raises(NotFoundError, match="id4"):
            im.users.presence(["id1", "id2", "id3", "id4"])


def test_query_online_status_in_chunks_of_500() -> None:
    im, server = make_client(lambda s: ok(QueryResult=[{"To_Account": u, "Status": "Offline"}
                                                       for u in s.body["To_Account"]]))  # fmt: skip
    users = [f"u{i}" for i in range(501)]
    assert len(im.users.presence(users)) == 501
    assert [len(s.body["To_Account"]) for s in server.sent] == [500, 1]


def test_kick_against_the_official_example() -> None:
    im, server = make_client(answers(("kick", 0)))
    im.users.kick("test")
    check_request(server.sent[0], "kick", required={"UserID"})
    assert server.sent[0].body == _example("kick")
    with pytest.raises(UnsupportedOperationError):
        im.users.kick("test", device="web")  # Tencent's kick covers every device: refused before any request
    assert len(server.sent) == 1
    im, _ = make_client(lambda s: fail(70107, "Err_TLS_PT_Open_Login_Account_Not_Exist"))
    with pytest.raises(NotFoundError):
        im.users.kick("nobody")


def test_account_check_against_the_official_example() -> None:
    im, server = make_client(answers(("account_check", 0)))
    assert im.users.exists(["UserID_1", "UserID_2"]) == {"UserID_1": True, "UserID_2": False}
    check_request(server.sent[0], "account_check", required={"CheckItem"})
    assert server.sent[0].body == _example("account_check")


def test_account_delete_against_the_official_example() -> None:
    im, server = make_client(answers(("account_delete", 0)))
    result = im.users.delete(["UserID_1", "UserID_2"])
    check_request(server.sent[0], "account_delete", required={"DeleteItem"})
    assert server.sent[0].body == _example("account_delete")
    assert result.succeeded == ["UserID_1"]
    [failed] = result.failed
    assert failed.target == "UserID_2" and isinstance(failed.error, NotFoundError) and failed.native_code == 70107
    im, _ = make_client(lambda s: fail(71000, "account deletion is for the Trial edition"))
    with pytest.raises(PermissionDeniedError):
        im.users.delete(["UserID_1"])


# -- member administration -----------------------------------------------------------------------------


def test_set_role_against_the_official_examples() -> None:
    im, server = make_client(answers(("modify_group_member_info", 0)))
    im.groups.set_role("@TGS#2CLUZEAEJ", "bob", "admin")
    im.groups.set_role("@TGS#2CLUZEAEJ", "bob", Role.MEMBER)
    for sent in server.sent:
        check_request(sent, "modify_group_member_info", required={"GroupId", "Member_Account", "Role"})
    # The doc's "Set an admin" and "Cancel an admin" examples, exactly.
    assert [s.body for s in server.sent] == [_example("modify_group_member_info", 0),
                                             _example("modify_group_member_info", 1)]  # fmt: skip


def test_name_card_against_the_official_example() -> None:
    im, server = make_client(answers(("modify_group_member_info", 0)))
    im.groups.set_name_card("@TGS#2CLUZEAEJ", "bob", "bob")
    check_request(server.sent[0], "modify_group_member_info", required={"NameCard"})
    assert server.sent[0].body == _example("modify_group_member_info", 3)
    with pytest.raises(InvalidRequestError, match="50 bytes"):
        im.groups.set_name_card("@TGS#2CLUZEAEJ", "bob", "名" * 17)  # 51 UTF-8 bytes
    assert len(server.sent) == 1


def test_change_group_owner_against_the_official_example() -> None:
    im, server = make_client(answers(("change_group_owner", 0)))
    im.groups.transfer_owner("@TGS#1NVTZEAE4", "peter")
    check_request(server.sent[0], "change_group_owner", required={"GroupId", "NewOwner_Account"})
    assert server.sent[0].body == _example("change_group_owner")


def test_get_joined_group_list_against_the_official_examples() -> None:
    im, server = make_client(answers(("get_joined_group_list", 4)))  # the ALL IN ONE answer
    [joined] = im.groups.joined("leckie")
    check_request(server.sent[0], "get_joined_group_list", required={"Member_Account", "Limit", "Offset"})
    filters = server.sent[0].body["ResponseFilter"]
    all_in_one = _example("get_joined_group_list", 5)["ResponseFilter"]
    assert set(filters["GroupBaseInfoFilter"]) <= set(all_in_one["GroupBaseInfoFilter"])
    assert set(filters["SelfInfoFilter"]) <= set(all_in_one["SelfInfoFilter"])
    assert (joined.group.id, joined.group.name, joined.role) == ("@TGS#16UMONKGG", "d", Role.MEMBER)
    assert joined.joined_at == datetime.fromtimestamp(1588148506, UTC)
    assert (joined.group.join_option, joined.group.max_members) == (JoinOption.CLOSED, 200)


def test_get_joined_group_list_pages_by_offset() -> None:
    pages = {0: ok(TotalCount=3, GroupIdList=[{"GroupId": "g1"}, {"GroupId": "g2"}]),
             2: ok(TotalCount=3, GroupIdList=[{"GroupId": "g3"}])}  # fmt: skip
    im, server = make_client(lambda s: pages[s.body["Offset"]])
    assert [j.group.id for j in im.groups.joined("leckie")] == ["g1", "g2", "g3"]
    assert [s.body["Offset"] for s in server.sent] == [0, 2]


def test_get_appid_group_list_then_group_info() -> None:
    def respond(sent: Sent) -> Any:
        if sent.command == "get_appid_group_list":
            return _example("get_appid_group_list", 0, "response_examples")
        return ok(GroupInfo=[{"GroupId": gid, "ErrorCode": 0, "Name": gid[-4:]} for gid in sent.body["GroupIdList"]])

    im, server = make_client(respond)
    page = im.groups.list(limit=1000)
    check_request(server.sent[0], "get_appid_group_list")
    assert server.sent[0].body == _example("get_appid_group_list", 1)  # the doc's {"Limit": 1000, "Next": 0}
    assert [g.id for g in page.items] == ["@TGS#2J4SZEAEL", "@TGS#2C5SZEAEF"]
    assert page.next_cursor is not None  # the doc's answer carries Next 4454685361
    im.groups.list(limit=1000, cursor=page.next_cursor)
    assert server.sent[-2].body == {"Limit": 1000, "Next": 4454685361}


def test_join_policy_against_the_official_examples() -> None:
    def respond(sent: Sent) -> Any:
        if sent.command == "get_group_info":
            return official("get_group_info")["response_examples"][0]["body"]
        return official(sent.command)["response_examples"][0]["body"]

    im, server = make_client(respond)
    group = im.groups.update("@TGS#1NVTZEAE4", join_option="approval", max_members=500)
    modify = next(s for s in server.sent if s.command == "modify_group_base_info")
    check_request(modify, "modify_group_base_info", required={"ApplyJoinOption", "MaxMemberNum"})
    # The doc's example writes MaxMemberNum 500 and ApplyJoinOption NeedPermission, as imbridge does here.
    example = _example("modify_group_base_info", 0)
    assert (modify.body["MaxMemberNum"], modify.body["ApplyJoinOption"]) == (example["MaxMemberNum"],
                                                                             example["ApplyJoinOption"])  # fmt: skip
    info = next(s for s in server.sent if s.command == "get_group_info")
    assert {"ApplyJoinOption", "MaxMemberNum"} <= set(info.body["ResponseFilter"]["GroupBaseInfoFilter"])
    # The official get_group_info answer: MaxMemberNum 50, ApplyJoinOption FreeAccess.
    assert (group.join_option, group.max_members) == (JoinOption.FREE, 50)


def test_create_group_with_join_policy() -> None:
    im, server = make_client(answers(("create_group", 0), ("get_group_info", 0)))
    im.groups.create("TestGroup", owner="leckie", join_option="free", max_members=500)
    create = server.sent[0]
    check_request(create, "create_group", required={"ApplyJoinOption", "MaxMemberCount"})
    assert (create.body["ApplyJoinOption"], create.body["MaxMemberCount"]) == ("FreeAccess", 500)


def test_add_group_member_leaves_an_existing_members_role() -> None:
    im, server = make_client(lambda s: ok(MemberList=[{"Member_Account": "tommy", "Result": 2}]))
    result = im.groups.add_members("@TGS#2J4SZEAEL", ["tommy"], role="admin")
    assert result.ok and [s.command for s in server.sent] == ["add_group_member"]  # no modify_group_member_info


def test_add_group_member_full_group_refused() -> None:
    im, _ = make_client(lambda s: fail(10014, "group is full"))
    with pytest.raises(PermissionDeniedError):
        im.groups.add_members("@TGS#2J4SZEAEL", ["tommy"])


# -- mutes without an end ------------------------------------------------------------------------------


def test_forbid_send_msg_forever_and_reading_it_back() -> None:
    im, server = make_client(answers(("get_role_in_group", 0), ("forbid_send_msg", 0)))  # members first
    im.groups.mute("@TGS#2C5SZEAEF", ["peter", "leckie"], duration=None)
    check_request(server.sent[1], "forbid_send_msg", required={"GroupId", "Members_Account", "MuteTime"})
    # MuteTime 4294967295: "Permanent muting" (/1047/34951)
    assert server.sent[1].body == {**_example("forbid_send_msg", 0), "MuteTime": 4_294_967_295}
    muted_answer = _example("get_group_muted_account", 0, "response_examples")
    forever = {**muted_answer, "MutedAccountList": [{"Member_Account": "tommy", "MutedUntil": 4_294_967_295},
                                                    {"Member_Account": "peter", "MutedUntil": 1458115189}]}  # fmt: skip
    members = official("get_group_member_info")["response_examples"][0]["body"]
    im, _ = make_client(lambda s: forever if s.command == "get_group_muted_account" else members,
                        clock=FakeClock(datetime(2016, 3, 16, 0, 0, tzinfo=UTC)))  # fmt: skip
    by_user = {m.user_id: m for m in im.groups.muted("@TGS#2FZNNRAEU")}
    assert by_user["tommy"].muted and by_user["tommy"].muted_until is None
    assert by_user["peter"].muted_until == datetime.fromtimestamp(1458115189, UTC)


def test_timed_mute_stays_below_the_permanent_value() -> None:
    im, server = make_client(answers(("get_role_in_group", 0), ("forbid_send_msg", 0)))
    im.groups.mute("@TGS#2C5SZEAEF", ["peter"], duration=timedelta(days=365 * 100))
    assert server.sent[1].body["MuteTime"] == 100 * 365 * 86400 < 4_294_967_295


# -- delivery options and system notifications ------------------------------------------------------


def _sent_answer(sent: Sent) -> Any:
    body = dict(official(sent.command)["response_examples"][0]["body"])
    body.pop("MsgDropReason", None)  # the doc's group answer shows a frequency-control drop: not this case
    return body


def test_online_only_and_send_control_against_the_official_examples() -> None:
    im, server = make_client(_sent_answer)
    group = Conversation.group("@TGS#2C5SZEAEF")
    im.messages.send("leckie", group, "typing", delivery=Delivery(online_only=True))
    im.messages.send("leckie", group, "quiet", delivery=Delivery(unread=False, update_conversation=False))
    im.messages.send("leckie", Conversation.user("lumotuwe"), "ping", delivery=Delivery(online_only=True))
    im.messages.send("leckie", Conversation.user("lumotuwe"), "hush", delivery={"unread": False})
    im.messages.send_batch("leckie", ["xiaoming"], "bulk", delivery=Delivery(online_only=True))
    online_group, quiet_group, online_c2c, quiet_c2c, batch = server.sent
    check_request(online_group, "send_group_msg", required={"OnlineOnlyFlag"})
    assert online_group.body["OnlineOnlyFlag"] == 1 and "SendMsgControl" not in online_group.body
    check_request(quiet_group, "send_group_msg", required={"SendMsgControl"})
    assert quiet_group.body["SendMsgControl"] == ["NoUnread", "NoLastMsg"]
    check_request(online_c2c, "sendmsg", required={"MsgLifeTime"})
    assert online_c2c.body["MsgLifeTime"] == 0
    check_request(quiet_c2c, "sendmsg", required={"SendMsgControl"})
    assert quiet_c2c.body["SendMsgControl"] == ["NoUnread"]
    check_request(batch, "batchsendmsg", required={"MsgLifeTime"})
    assert batch.body["MsgLifeTime"] == 0


def test_command_delivery_refused_before_any_request() -> None:
    im, server = make_client(lambda s: ok())
    with pytest.raises(UnsupportedOperationError):
        im.messages.send("a", Conversation.user("b"), "x", delivery=Delivery(persist=False, online_only=False))
    with pytest.raises(InvalidRequestError):
        im.messages.send("a", Conversation.user("b"), "x", delivery={"unread": False},
                         options={"SendMsgControl": ["NoLastMsg"]})  # fmt: skip
    assert server.sent == []


def test_group_system_notification_against_the_official_examples() -> None:
    im, server = make_client(answers(("send_group_system_notification", 0)))
    im.groups.notify("@TGS#2C5SZEAEF", "Hello World")
    im.groups.notify("@TGS#2C5SZEAEF", "Hello World", to=["peter", "leckie"])
    for sent in server.sent:
        check_request(sent, "send_group_system_notification", required={"GroupId", "Content"})
    assert [s.body for s in server.sent] == [_example("send_group_system_notification", 0),
                                             _example("send_group_system_notification", 1)]  # fmt: skip
    many = [f"m{i}" for i in range(51)]
    im.groups.notify("@TGS#2C5SZEAEF", "hi", to=many)  # the current page's cap: 50 recipients per request
    assert [len(s.body["ToMembers_Account"]) for s in server.sent[2:]] == [50, 1]
