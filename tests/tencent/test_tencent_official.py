"""Every endpoint imbridge uses, checked against the official documentation's examples.

For each command: the request imbridge sends (path, query parameters, body field names and JSON types)
is compared with the request examples of the fixture, and the official response example is parsed into
the normalized result. Each fixture names its source page (``source.url``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from tencent_support import TEST_APP, TEST_KEY, Sent, make_client, official, ok

from imbridge import Conversation, Face, Text
from imbridge.errors import InvalidRequestError, NotFoundError, PermissionDeniedError, RateLimitError
from imbridge.models import Custom, Role
from imbridge.providers.tencent.mapping import c2c_ref, group_ref
from imbridge.providers.tencent.usersig import decode_usersig, verify_usersig
from imbridge.testing import FakeClock

#: Fields the field tables document but no request example of that page shows.
DOCUMENTED_EXTRAS = {
    "group_msg_get_simple": {"WithRecalledMsg"},
    # sendmsg's field table: "SendMsgControl | Array | No | ... NoUnread ... NoLastMsg ..." (no example shows it)
    "sendmsg": {"SendMsgControl"},
    # batchsendmsg's field table: "MsgLifeTime | Integer | No | ... set this field to 0, the message will only be
    # sent to the recipient online and not retained offline" (no example shows it)
    "batchsendmsg": {"MsgLifeTime"},
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def check_request(sent: Sent, command: str, *, required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    fixture = official(command)
    assert fixture["source"]["url"].startswith("https://www.tencentcloud.com/document/product/1047/")
    assert sent.path == "/" + fixture["path"]
    sample = dict(parse_qsl(urlsplit(fixture["sample_request_url"]).query))
    assert set(sent.params) == set(sample)
    assert sent.params["contenttype"] == sample["contenttype"] == "json"
    assert sent.params["sdkappid"] == str(TEST_APP) and sent.params["identifier"] == "administrator"
    assert 0 <= int(sent.params["random"]) <= 0xFFFFFFFF
    issued = decode_usersig(sent.params["usersig"])["TLS.time"]
    verify_usersig(sent.params["usersig"], TEST_APP, TEST_KEY, now=issued, identifier="administrator")
    examples = [e["body"] for e in fixture["request_examples"]]
    known = set().union(*(e.keys() for e in examples)) | DOCUMENTED_EXTRAS.get(command, set())
    assert isinstance(sent.body, dict) and sent.body, "the body is a non-empty JSON object"
    assert set(sent.body) <= known, f"fields not in the official examples: {set(sent.body) - known}"
    assert required <= set(sent.body)
    for key, value in sent.body.items():
        shown = [example[key] for example in examples if key in example]
        for official_value in shown:
            assert _json_type(value) == _json_type(official_value), key
        if isinstance(value, list) and value and isinstance(value[0], dict):
            item_keys = {k for v in shown for i in v if isinstance(i, dict) for k in i}
            for item in value:
                assert set(item) <= item_keys, (key, set(item) - item_keys)


def answers(*responses: tuple[str, int]) -> Any:
    """Respond to each command with its official response example number ``i`` (in call order per command)."""
    plan: dict[str, list[int]] = {}
    for command, index in responses:
        plan.setdefault(command, []).append(index)
    calls: Counter[str] = Counter()

    def respond(sent: Sent) -> Any:
        indexes = plan[sent.command]
        index = indexes[min(calls[sent.command], len(indexes) - 1)]
        calls[sent.command] += 1
        return official(sent.command)["response_examples"][index]["body"]

    return respond


# -- accounts and profiles -------------------------------------------------------------------------


def test_multiaccount_import() -> None:
    im, server = make_client(answers(("multiaccount_import", 0)))
    result = im.users.register(["test1", "test2", "test3", "test4", "test5"])
    check_request(server.sent[0], "multiaccount_import", required={"Accounts"})
    assert server.sent[0].body == official("multiaccount_import")["request_examples"][0]["body"]
    assert result.succeeded == ["test1", "test2", "test5"]
    assert [item.target for item in result.failed] == ["test3", "test4"]


def test_register_chunks_by_100() -> None:
    im, server = make_client(lambda s: ok(FailAccounts=[]))
    users = [f"u{i}" for i in range(250)]
    assert im.users.register(users).ok
    assert [len(s.body["Accounts"]) for s in server.sent] == [100, 100, 50]


def test_portrait_get() -> None:
    im, server = make_client(answers(("portrait_get", 0)), profile_custom_keys=["Test"])
    (profile,) = im.users.get_profiles(["id1"])
    check_request(server.sent[0], "portrait_get", required={"To_Account", "TagList"})
    assert "Tag_Profile_Custom_Test" in server.sent[0].body["TagList"]
    assert profile.user_id == "id1" and profile.nickname == "NickNameTest1"


def test_portrait_get_multi_with_a_failed_account() -> None:
    im, _ = make_client(answers(("portrait_get", 1)), profile_custom_keys=["Test"])
    (profile,) = im.users.get_profiles(["id1"])
    assert profile.signature == "I'm Test1" and profile.custom == {"Test": "Custom Data1"}
    im2, server2 = make_client(answers(("portrait_get", 3)))
    with pytest.raises(Exception) as caught:
        im2.users.get_profiles(["id1", "id2", "id3", "id4"])
    assert getattr(caught.value, "native_code", None) == 40006 and caught.value.retryable  # type: ignore[attr-defined]
    assert len(server2.sent) == 3  # retried: 40006 is an internal error


def test_portrait_set() -> None:
    im, server = make_client(answers(("portrait_set", 0)))
    with pytest.raises(InvalidRequestError) as caught:  # the page's only response example is error 40001
        im.users.set_profile("id", nickname="MyNickName")
    assert caught.value.native_code == 40001
    check_request(server.sent[0], "portrait_set", required={"From_Account", "ProfileItem"})
    assert server.sent[0].body == official("portrait_set")["request_examples"][0]["body"]


# -- one-to-one messages ---------------------------------------------------------------------------


def test_sendmsg() -> None:
    push = official("sendmsg")["request_examples"][2]["body"]["OfflinePushInfo"]
    im, server = make_client(answers(("sendmsg", 0)))
    sent = im.messages.send(
        "lumotuwe1", Conversation.user("lumotuwe2"), "hi, beauty",
        options={"CloudCustomData": "your cloud custom data", "OfflinePushInfo": push, "MsgLifeTime": 3600},
    )  # fmt: skip
    check_request(server.sent[0], "sendmsg", required={"From_Account", "To_Account", "MsgRandom", "MsgBody"})
    body = server.sent[0].body
    example = official("sendmsg")["request_examples"][2]["body"]
    for key in ("From_Account", "To_Account", "MsgBody", "CloudCustomData", "OfflinePushInfo", "MsgLifeTime"):
        assert body[key] == example[key], key
    assert sent.ref.key == "89541_2574206_1572870301"
    assert sent.time == datetime.fromtimestamp(1572870301, UTC)
    assert sent.ref.extra == {"From_Account": "lumotuwe1", "To_Account": "lumotuwe2"}


def test_sendmsg_failure_example() -> None:
    im, _ = make_client(answers(("sendmsg", 1)))
    with pytest.raises(InvalidRequestError) as caught:
        im.messages.send("a", Conversation.user("b"), "x")
    assert caught.value.native_code == 90001


def test_batchsendmsg_partial_failure_per_recipient() -> None:
    im, server = make_client(answers(("batchsendmsg", 1)))
    result = im.messages.send_batch(
        "dave", ["bonnie", "rong"], "hi, beauty", options={"CloudCustomData": "your cloud custom data"}
    )
    check_request(server.sent[0], "batchsendmsg", required={"From_Account", "To_Account", "MsgRandom", "MsgBody"})
    assert result.succeeded == ["bonnie"]
    (failed,) = result.failed
    assert failed.target == "rong" and failed.native_code == 70107 and isinstance(failed.error, NotFoundError)
    ok_item = next(i for i in result.items if i.ok)
    assert ok_item.ref is not None and ok_item.ref.key == "4852_28135_1579678877"


def test_batchsendmsg_none_reached_and_all_reached() -> None:
    im, _ = make_client(answers(("batchsendmsg", 2)))
    result = im.messages.send_batch("dave", ["bonnie", "rong"], "hi")
    assert not result.succeeded and all(i.native_code == 90012 for i in result.items)
    im2, _ = make_client(answers(("batchsendmsg", 0)))
    assert im2.messages.send_batch("dave", ["bonnie", "rong"], "hi").ok


def test_admin_getroammsg_pages_with_lastmsgkey() -> None:
    clock = FakeClock(datetime.fromtimestamp(1584673200, UTC))
    im, server = make_client(answers(("admin_getroammsg", 0), ("admin_getroammsg", 1)), clock=clock)
    page = im.messages.history(Conversation.user("user1"), viewer="user2", limit=100)
    first, second = server.sent
    check_request(first, "admin_getroammsg", required={"Operator_Account", "Peer_Account", "MaxCnt", "MinTime"})
    check_request(second, "admin_getroammsg", required={"LastMsgKey"})
    continued = official("admin_getroammsg")["request_examples"][1]["body"]
    assert second.body["LastMsgKey"] == continued["LastMsgKey"]
    assert second.body["MaxTime"] == continued["MaxTime"]
    assert first.body["MaxTime"] == 1584673200
    assert [m.elements[0].text for m in page.items] == ["msg 2", "msg 1", "msg 14", "msg 13"]  # type: ignore[union-attr]
    assert page.next_cursor is None
    assert page.items[0].metadata == {"CloudCustomData": "your cloud custom data"}
    assert page.items[1].ref.key == "549396494_2578554_1584669680"


def test_admin_msgwithdraw() -> None:
    im, server = make_client(answers(("admin_msgwithdraw", 0)))
    im.messages.revoke(c2c_ref("vinson", "dramon", "31906_833502_1572869830"))
    check_request(server.sent[0], "admin_msgwithdraw", required={"From_Account", "To_Account", "MsgKey"})
    assert server.sent[0].body == official("admin_msgwithdraw")["request_examples"][0]["body"]


# -- groups ----------------------------------------------------------------------------------------


def test_send_group_msg_request_and_drop_reason() -> None:
    im, server = make_client(answers(("send_group_msg", 0)))
    with pytest.raises(RateLimitError) as caught:  # the page's response example carries MsgDropReason
        im.messages.send(
            "leckie", Conversation.group("@TGS#2C5SZEAEF"), [Text("red packet"), Face(index=6, data="abc\x00\x01")]
        )
    assert caught.value.native_code == "MsgFreqCtrl" and "MsgFreqCtrl" in str(caught.value)
    check_request(server.sent[0], "send_group_msg", required={"GroupId", "Random", "MsgBody", "From_Account"})
    example = official("send_group_msg")["request_examples"][1]["body"]
    assert {k: v for k, v in server.sent[0].body.items() if k != "Random"} == {
        k: v for k, v in example.items() if k != "Random"
    }
    assert len({s.body["Random"] for s in server.sent}) == 1 and len(server.sent) == 3


def test_send_group_msg_success() -> None:
    body = dict(official("send_group_msg")["response_examples"][0]["body"], MsgDropReason="")
    im, _ = make_client(lambda s: body)
    sent = im.messages.send("leckie", Conversation.group("@TGS#2C5SZEAEF"), "red packet")
    assert sent.seq == 1 and sent.ref.key == "1" and sent.ref.conversation.id == "@TGS#2C5SZEAEF"


def test_group_msg_get_simple() -> None:
    # The group's NextMsgSeq, in the official get_group_info example's shape, puts the newest message at 7803321:
    # the first window is then exactly the doc's "Pulling by seq" request, and its answer the doc's response.
    # The reader, peter, is a Member in the official get_role_in_group example: only members read a group.
    info = official("get_group_info")["response_examples"][0]["body"]
    info = {**info, "GroupInfo": [{**info["GroupInfo"][0], "GroupId": "@TGS#15ERQPAER", "NextMsgSeq": 7803322}]}
    simple = official("group_msg_get_simple")["response_examples"][0]["body"]
    roles = official("get_role_in_group")["response_examples"][0]["body"]
    answer = {"get_group_info": info, "get_role_in_group": roles}
    im, server = make_client(lambda sent: answer.get(sent.command, simple))
    page = im.messages.history(Conversation.group("@TGS#15ERQPAER"), viewer="peter", limit=2)
    check_request(server.sent[0], "get_role_in_group", required={"GroupId", "User_Account"})
    check_request(server.sent[1], "get_group_info", required={"GroupIdList", "ResponseFilter"})
    assert server.sent[1].body["ResponseFilter"] == {"GroupBaseInfoFilter": ["NextMsgSeq"]}
    check_request(server.sent[2], "group_msg_get_simple", required={"GroupId", "ReqMsgNumber", "ReqMsgSeq"})
    by_seq = official("group_msg_get_simple")["request_examples"][1]["body"]
    assert {k: v for k, v in server.sent[2].body.items() if k != "WithRecalledMsg"} == by_seq
    assert [m.seq for m in page.items] == [7803321, 7803320]
    # IsFinished 1 says the window came back whole, not that seq 7803319 and older are gone.
    assert page.next_cursor is not None
    first = page.items[0]
    assert first.sender == "144115197276518801"
    assert isinstance(first.elements[0], Custom) and first.elements[0].description == "MIF"
    assert isinstance(first.elements[1], Face) and first.elements[1].index == 15
    assert first.ref.seq == 7803321


def test_group_msg_recall() -> None:
    im, server = make_client(answers(("group_msg_recall", 0)))
    im.messages.revoke(group_ref("@TGS#2J4SZEAEL", "x", 101))
    check_request(server.sent[0], "group_msg_recall", required={"GroupId", "MsgSeqList"})
    with pytest.raises(NotFoundError) as caught:
        im.messages.revoke(group_ref("@TGS#2J4SZEAEL", "x", 100))
    assert caught.value.native_code == 10030


def test_create_group_then_get_group_info() -> None:
    im, server = make_client(answers(("create_group", 0), ("get_group_info", 0)))
    group = im.groups.create(name="TestGroup", owner="leckie")
    create, info = server.sent
    check_request(create, "create_group", required={"Owner_Account", "Type", "Name"})
    assert create.body == official("create_group")["request_examples"][0]["body"]
    check_request(info, "get_group_info", required={"GroupIdList"})
    assert info.body["GroupIdList"] == ["@TGS#2J4SZEAEL"]
    assert group.id == "@TGS#2J4SZEAEL" and group.name == "MyFirstGroup" and group.owner == "leckie"
    assert group.mute_all is True and group.member_count == 2
    assert group.created_at == datetime.fromtimestamp(1426976500, UTC)


def test_create_group_with_members_and_admins() -> None:
    im, server = make_client(answers(("create_group", 2), ("get_group_info", 0)))
    im.groups.create(name="TestGroup", owner="leckie", members=["peter"], admins=["bob"], group_id="MyFirstGroup")
    check_request(server.sent[0], "create_group", required={"MemberList", "GroupId"})
    assert server.sent[0].body["MemberList"] == [
        {"Member_Account": "bob", "Role": "Admin"},
        {"Member_Account": "peter"},
    ]


def test_modify_group_base_info_and_mute_all() -> None:
    im, server = make_client(answers(("modify_group_base_info", 0), ("get_group_info", 0)))
    im.groups.update(
        "@TGS#1NVTZEAE4", name="NewName", introduction="NewIntroduction", notification="NewNotification",
        face_url="http://this.is.new.face.url",
    )  # fmt: skip
    check_request(server.sent[0], "modify_group_base_info", required={"GroupId", "Name"})
    example = official("modify_group_base_info")["request_examples"][0]["body"]
    assert all(example[k] == v for k, v in server.sent[0].body.items())
    im.groups.mute_all("@TGS#1NVTZEAE4", True)
    im.groups.mute_all("@TGS#1NVTZEAE4", False)
    on, off = server.sent[-2:]
    check_request(on, "modify_group_base_info", required={"MuteAllMember"})
    assert on.body == {"GroupId": "@TGS#1NVTZEAE4", "MuteAllMember": "On"}
    assert off.body["MuteAllMember"] == "Off"


def test_destroy_group() -> None:
    im, server = make_client(answers(("destroy_group", 0)))
    im.groups.dismiss("@TGS#2J4SZEAEL")
    check_request(server.sent[0], "destroy_group", required={"GroupId"})
    assert server.sent[0].body == official("destroy_group")["request_examples"][0]["body"]


def test_add_group_member_and_admin_role() -> None:
    im, server = make_client(answers(("add_group_member", 0), ("modify_group_member_info", 0)))
    result = im.groups.add_members("@TGS#2J4SZEAEL", ["tommy", "jared"])
    check_request(server.sent[0], "add_group_member", required={"GroupId", "MemberList"})
    assert server.sent[0].body == official("add_group_member")["request_examples"][0]["body"]
    assert result.ok and result.succeeded == ["tommy", "jared"]
    result = im.groups.add_members("@TGS#2J4SZEAEL", ["tommy", "jared"], role=Role.ADMIN)
    admin_calls = [s for s in server.sent if s.command == "modify_group_member_info"]
    check_request(admin_calls[0], "modify_group_member_info", required={"GroupId", "Member_Account", "Role"})
    assert [s.body["Member_Account"] for s in admin_calls] == ["tommy", "jared"]
    assert all(s.body["Role"] == "Admin" for s in admin_calls)


def test_add_group_member_results() -> None:
    reply = ok(MemberList=[{"Member_Account": "a", "Result": 0}, {"Member_Account": "b", "Result": 2},
                           {"Member_Account": "c", "Result": 3}])  # fmt: skip
    im, _ = make_client(lambda s: reply)
    result = im.groups.add_members("g", ["a", "b", "c", "d"])
    assert result.succeeded == ["b"] and result.items[1].detail.startswith("already a member")
    # Result 3, "Pending approval by the invitee or admin": pending, neither added nor failed (issue 17)
    assert result.pending == ["c"] and result.items[2].pending and result.items[2].error is None
    assert [i.target for i in result.failed] == ["a", "d"] and not result.ok


def test_get_group_member_info() -> None:
    im, server = make_client(answers(("get_group_member_info", 1)))
    members = im.groups.members("@TGS#1NVTZEAE4")
    check_request(server.sent[0], "get_group_member_info", required={"GroupId", "Limit", "Offset"})
    assert [(m.user_id, m.role) for m in members] == [("bob", Role.OWNER), ("peter", Role.MEMBER)]
    assert members[0].muted_until is None  # 1431069882 (2015) is past for the 2024 fake clock
    assert members[0].joined_at == datetime.fromtimestamp(1425976500, UTC)


def test_delete_group_member_reports_non_members_and_owner() -> None:
    im, server = make_client(answers(("get_group_member_info", 1), ("delete_group_member", 0)))
    result = im.groups.remove_members("@TGS#2J4SZEAEL", ["peter", "tommy", "bob"])
    delete = next(s for s in server.sent if s.command == "delete_group_member")
    check_request(delete, "delete_group_member", required={"GroupId", "MemberToDel_Account"})
    assert delete.body == {"GroupId": "@TGS#2J4SZEAEL", "MemberToDel_Account": ["peter"]}
    assert result.succeeded == ["peter"]
    errors = {item.target: type(item.error) for item in result.failed}
    assert errors == {"tommy": NotFoundError, "bob": PermissionDeniedError}


def test_forbid_send_msg_mute_and_unmute() -> None:
    im, server = make_client(answers(("get_role_in_group", 0), ("forbid_send_msg", 0)))
    im.groups.mute("@TGS#2C5SZEAEF", ["peter", "leckie"], duration=timedelta(seconds=60))
    im.groups.unmute("@TGS#2C5SZEAEF", ["peter", "leckie"])
    examples = official("forbid_send_msg")["request_examples"]
    assert [sent.command for sent in server.sent] == ["get_role_in_group", "forbid_send_msg"] * 2
    check_request(server.sent[1], "forbid_send_msg", required={"GroupId", "Members_Account", "MuteTime"})
    assert server.sent[1].body == examples[0]["body"]
    assert server.sent[3].body == examples[1]["body"]


def test_get_role_in_group_refuses_muting_a_non_member() -> None:
    """The doc's example answers wesley NotMember: muting (or unmuting) him is a NotFoundError naming him, as
    on every provider, and nothing is muted (forbid_send_msg itself would answer OK)."""
    im, server = make_client(answers(("get_role_in_group", 0), ("forbid_send_msg", 0)))
    for call in (lambda: im.groups.mute("@TGS#2C5SZEAEF", ["leckie", "peter", "wesley"], duration=60),
                 lambda: im.groups.unmute("@TGS#2C5SZEAEF", ["leckie", "peter", "wesley"])):  # fmt: skip
        with pytest.raises(NotFoundError, match="wesley") as info:
            call()
        assert "peter" not in str(info.value)
    assert [sent.command for sent in server.sent] == ["get_role_in_group"] * 2
    check_request(server.sent[0], "get_role_in_group", required={"GroupId", "User_Account"})
    assert server.sent[0].body == official("get_role_in_group")["request_examples"][0]["body"]


def test_get_role_in_group_refuses_a_non_member_reading_group_history() -> None:
    im, server = make_client(answers(("get_role_in_group", 0), ("group_msg_get_simple", 0)))
    with pytest.raises(PermissionDeniedError, match="wesley"):
        im.messages.history(Conversation.group("@TGS#2C5SZEAEF"), viewer="wesley", limit=2)
    assert [sent.command for sent in server.sent] == ["get_role_in_group"]
    assert server.sent[0].body == {"GroupId": "@TGS#2C5SZEAEF", "User_Account": ["wesley"]}


def test_get_group_muted_account() -> None:
    clock = FakeClock(datetime(2016, 3, 1, tzinfo=UTC))  # before the sample's MutedUntil (2016-03-16)
    im, server = make_client(answers(("get_group_muted_account", 0), ("get_group_member_info", 1)), clock=clock)
    muted = im.groups.muted("@TGS#1KGZ2RAEU")
    check_request(server.sent[0], "get_group_muted_account", required={"GroupId"})
    assert server.sent[0].body == official("get_group_muted_account")["request_examples"][0]["body"]
    assert {m.user_id: m.muted_until for m in muted} == {
        "tommy": datetime.fromtimestamp(1458115189, UTC),
        "peter": datetime.fromtimestamp(1458115189, UTC),
    }
    assert next(m for m in muted if m.user_id == "peter").role is Role.MEMBER
    later, _ = make_client(answers(("get_group_muted_account", 0)))  # 2024: those mutes have lifted
    assert later.groups.muted("@TGS#1KGZ2RAEU") == []
