"""Conversations, unread counts and message lookup on Tencent, against the official documentation's examples.

Every request imbridge sends for these operations is compared with the official request examples of its
command (``check_request``), and the official response examples are served back and read into the neutral
result. Fixtures: ``tests/fixtures/tencent/official/`` (see its PROVENANCE.md); where a test has to name the
sample ids of one page in another page's answer it says so.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import test_tencent_official as official_checks
from tencent_support import Sent, make_client, official, ok
from test_tencent_official import check_request

from imbridge import ConflictError, Conversation, InvalidRequestError, NotFoundError, Text
from imbridge.models import MessageRef
from imbridge.providers.tencent.mapping import c2c_ref, group_ref
from imbridge.testing import FakeClock

#: The fixture of each command (recentcontact's commands share their last path segment with others).
FIXTURE_OF = {
    "recentcontact/get_list": "recentcontact_get_list",
    "recentcontact/delete": "recentcontact_delete",
    "openim/get_c2c_unread_msg_num": "get_c2c_unread_msg_num",
    "openim/admin_set_msg_read": "admin_set_msg_read",
    "openim/admin_getroammsg": "admin_getroammsg",
    "group_open_http_svc/set_unread_msg_num": "set_unread_msg_num",
    "group_open_http_svc/get_joined_group_list": "get_joined_group_list",
    "group_open_http_svc/group_msg_get_simple": "group_msg_get_simple",
}


def _key(sent: Sent) -> str:
    return sent.path.split("/v4/", 1)[1]


def sample(fixture: str, index: int = 0) -> dict[str, Any]:
    return copy.deepcopy(official(fixture)["response_examples"][index]["body"])


def serve(**bodies: dict[str, Any]) -> Any:
    """Answer each command with the body given for its fixture name (the official sample by default)."""

    def respond(sent: Sent) -> Any:
        fixture = FIXTURE_OF[_key(sent)]
        return bodies[fixture] if fixture in bodies else sample(fixture)

    return respond


@pytest.fixture(autouse=True)
def _documented_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    # MsgReadTime is in admin_set_msg_read's field table ("String, No"), in none of its examples.
    monkeypatch.setitem(official_checks.DOCUMENTED_EXTRAS, "admin_set_msg_read", {"MsgReadTime"})


def _sent(server: Any, fixture: str) -> list[Sent]:
    return [s for s in server.sent if FIXTURE_OF[_key(s)] == fixture]


# -- list -------------------------------------------------------------------------------------------


def test_list_reads_the_official_answer() -> None:
    """The page's own answer: two pinned conversations first, MsgTime as the update time, CompleteFlag 1."""
    im, server = make_client(serve())
    page = im.conversations.list("id1")
    check_request(server.sent[0], "recentcontact_get_list",
                  required={"From_Account", "TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex",
                            "AssistFlags"})  # fmt: skip
    assert server.sent[0].body == official("recentcontact_get_list")["request_examples"][0]["body"]
    assert [(str(s.conversation), s.pinned) for s in page.items] == [
        ("user:id2", True), ("group:id3", True), ("user:id4", False), ("group:id5", False),
    ]  # fmt: skip
    assert [s.updated for s in page.items] == [
        datetime.fromtimestamp(t, UTC) for t in (1630997627, 1630997628, 1630997630, 1630997650)
    ]
    assert page.next_cursor is None and all(s.user == "id1" for s in page.items)
    # The counts and last messages were asked for with each command's documented fields.
    (unread,) = _sent(server, "get_c2c_unread_msg_num")
    check_request(unread, "get_c2c_unread_msg_num", required={"To_Account", "Peer_Account"})
    assert unread.body == {"To_Account": "id1", "Peer_Account": ["id2", "id4"]}
    (joined,) = _sent(server, "get_joined_group_list")
    check_request(joined, "get_joined_group_list", required={"Member_Account", "ResponseFilter"})
    for roam in _sent(server, "admin_getroammsg"):
        check_request(roam, "admin_getroammsg", required={"Operator_Account", "Peer_Account", "MaxCnt"})
    for simple in _sent(server, "group_msg_get_simple"):
        check_request(simple, "group_msg_get_simple", required={"GroupId", "ReqMsgNumber"})
    assert sorted(s.body.get("Peer_Account", s.body.get("GroupId")) for s in server.sent[3:]) == [
        "id2", "id3", "id4", "id5",
    ]  # fmt: skip


def test_list_continues_with_the_answers_four_cursors() -> None:
    """CompleteFlag 0: the next request carries TimeStamp, StartIndex, TopTimeStamp and TopStartIndex as
    answered (the page's sample values)."""
    first = sample("recentcontact_get_list")
    first["CompleteFlag"] = 0
    last = sample("recentcontact_get_list")
    last["SessionItem"] = [{"Type": 1, "To_Account": "id6", "MsgTime": 1630990000, "TopFlag": 0}]
    pages = iter([first, last])

    def respond(sent: Sent) -> Any:
        return next(pages) if _key(sent) == "recentcontact/get_list" else serve()(sent)

    im, server = make_client(respond)
    page = im.conversations.list("id1", limit=4)
    assert len(page.items) == 4 and page.next_cursor is not None
    page = im.conversations.list("id1", limit=4, cursor=page.next_cursor)
    assert [str(s.conversation) for s in page.items] == ["user:id6"] and page.next_cursor is None
    second = [s for s in server.sent if _key(s) == "recentcontact/get_list"][1]
    check_request(second, "recentcontact_get_list")
    assert {k: second.body[k] for k in ("TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex")} == {
        "TimeStamp": 1631012800, "StartIndex": 0, "TopTimeStamp": 1631012800, "TopStartIndex": 0,
    }  # fmt: skip


def test_list_splits_a_server_page_between_calls() -> None:
    """A limit below the server's page: the rest of that page comes next, asked with the same cursors."""
    im, server = make_client(serve())
    first = im.conversations.list("id1", limit=3)
    rest = im.conversations.list("id1", limit=3, cursor=first.next_cursor)
    assert [str(s.conversation) for s in first.items + rest.items] == ["user:id2", "group:id3", "user:id4",
                                                                       "group:id5"]  # fmt: skip
    assert rest.next_cursor is None
    asked = [s.body for s in server.sent if _key(s) == "recentcontact/get_list"]
    assert asked[0] == asked[1] == official("recentcontact_get_list")["request_examples"][0]["body"]


def test_unread_from_the_official_counts() -> None:
    """get_c2c_unread_msg_num's sample (12 each for dramon2 and teacher) becomes each conversation's count.
    The recentcontact answer is built with those sample ids (the unread page's), in the list page's shape."""
    contacts = sample("recentcontact_get_list")
    contacts["SessionItem"] = [
        {"Type": 1, "To_Account": "dramon2", "MsgTime": 1630997650, "TopFlag": 0},
        {"Type": 1, "To_Account": "teacher", "MsgTime": 1630997640, "TopFlag": 0},
    ]
    im, server = make_client(serve(recentcontact_get_list=contacts, get_c2c_unread_msg_num=sample(
        "get_c2c_unread_msg_num", 1)))  # fmt: skip
    page = im.conversations.list("dramon1")
    assert [(str(s.conversation), s.unread) for s in page.items] == [("user:dramon2", 12), ("user:teacher", 12)]
    (asked,) = _sent(server, "get_c2c_unread_msg_num")
    assert asked.body == official("get_c2c_unread_msg_num")["request_examples"][1]["body"]
    # The newest messages (the roaming page's sample, Complete 0) are neither dramon1's nor all there:
    # Tencent's own count stands, and the newest of them is the last message.
    first = page.items[0].last_message
    assert first is not None and first.elements == [Text("msg 2")] and first.sender == "user2"


def test_a_cut_roaming_answer_is_continued_as_the_page_says() -> None:
    """The page's first answer (Complete 0, LastMsgTime/LastMsgKey) is continued with MaxTime = LastMsgTime and
    LastMsgKey, its "continued pulling request"; the second answer (Complete 1) completes the newest messages."""
    contacts = sample("recentcontact_get_list")
    contacts["SessionItem"] = [{"Type": 1, "To_Account": "user1", "MsgTime": 1584669689, "TopFlag": 0}]
    counts = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
              "C2CUnreadMsgNumList": [{"Peer_Account": "user1", "C2CUnreadMsgNum": 12}]}  # fmt: skip
    pages = iter([sample("admin_getroammsg", 0), sample("admin_getroammsg", 1)])

    def respond(sent: Sent) -> Any:
        return next(pages) if _key(sent) == "openim/admin_getroammsg" else serve(
            recentcontact_get_list=contacts, get_c2c_unread_msg_num=counts)(sent)  # fmt: skip

    im, server = make_client(respond)
    (summary,) = im.conversations.list("user2").items
    first, second = _sent(server, "admin_getroammsg")
    continued = official("admin_getroammsg")["request_examples"][1]["body"]
    check_request(second, "admin_getroammsg")
    assert first.body["MaxCnt"] == 13 and second.body["MaxCnt"] == 11  # 12 unread + 1, less the 2 received
    assert {k: second.body[k] for k in ("MaxTime", "LastMsgKey")} == {
        k: continued[k] for k in ("MaxTime", "LastMsgKey")
    }
    # user2 wrote "msg 2" at 1584669689, the newest message: nothing from user1 came after it.
    assert (summary.unread, summary.raw["CountedUnread"]) == (0, 12)


def test_group_unread_and_muted_from_joined_groups() -> None:
    """The ALL IN ONE sample: NextMsgSeq 2, the member's MsgSeq 1 (read up to 1): nothing unread;
    MsgFlag AcceptAndNotify: not muted."""
    contacts = sample("recentcontact_get_list")
    contacts["SessionItem"] = [{"Type": 2, "GroupId": "@TGS#16UMONKGG", "MsgTime": 1630997650, "TopFlag": 0}]
    im, server = make_client(serve(recentcontact_get_list=contacts, get_joined_group_list=sample(
        "get_joined_group_list", 4)))  # fmt: skip
    (summary,) = im.conversations.list("leckie").items
    assert summary.unread == 0 and summary.muted is False and summary.pinned is False
    (asked,) = _sent(server, "get_joined_group_list")
    assert asked.body["ResponseFilter"]["SelfInfoFilter"] == ["MsgSeq", "MsgFlag"]
    assert asked.body["ResponseFilter"]["GroupBaseInfoFilter"] == ["NextMsgSeq"]


def test_group_unread_follows_a_reply_within_the_newest_messages() -> None:
    """group_msg_get_simple's sample (seq 7803321 by one member, 7803320 by 144115198339527735) as the newest
    messages of a group that member has read up to 7803318 of NextMsgSeq 7803322 (the joined-list answer is
    built with the sample's ids): Tencent's count is 3, but the member wrote 7803320, so only 7803321 is unread."""
    member = "144115198339527735"
    contacts = sample("recentcontact_get_list")
    contacts["SessionItem"] = [{"Type": 2, "GroupId": "@TGS#15ERQPAER", "MsgTime": 1458721802, "TopFlag": 0}]
    joined = sample("get_joined_group_list", 4)
    joined["GroupIdList"] = [{"GroupId": "@TGS#15ERQPAER", "NextMsgSeq": 7803322,
                              "SelfInfo": {"MsgSeq": 7803318, "MsgFlag": "AcceptNotNotify"}}]  # fmt: skip
    im, server = make_client(serve(recentcontact_get_list=contacts, get_joined_group_list=joined))
    (summary,) = im.conversations.list(member).items
    assert (summary.unread, summary.raw["CountedUnread"], summary.muted) == (1, 3, True)
    assert summary.last_message is not None and summary.last_message.seq == 7803321
    (asked,) = _sent(server, "group_msg_get_simple")
    check_request(asked, "group_msg_get_simple")
    assert {k: asked.body[k] for k in ("ReqMsgSeq", "ReqMsgNumber")} == {"ReqMsgSeq": 7803321, "ReqMsgNumber": 4}


# -- read positions -----------------------------------------------------------------------------------


def test_mark_read_requests() -> None:
    im, server = make_client(serve())
    im.conversations.mark_read("dramon1", Conversation.user("dramon2"))
    check_request(server.sent[0], "admin_set_msg_read", required={"Report_Account", "Peer_Account"})
    assert server.sent[0].body == official("admin_set_msg_read")["request_examples"][0]["body"]
    im.conversations.mark_read("bob", Conversation.group("@TGS#2CLUZEAEJ"))
    check_request(server.sent[1], "set_unread_msg_num", required={"GroupId", "Member_Account", "UnreadMsgNum"})
    assert server.sent[1].body == {"GroupId": "@TGS#2CLUZEAEJ", "Member_Account": "bob", "UnreadMsgNum": 0}


def test_set_group_unread_is_the_official_request() -> None:
    im, server = make_client(serve())
    im.conversations.set_unread("bob", Conversation.group("@TGS#2CLUZEAEJ"), 5)
    check_request(server.sent[0], "set_unread_msg_num")
    assert server.sent[0].body == official("set_unread_msg_num")["request_examples"][0]["body"]


def test_delete_marks_read_then_deletes() -> None:
    im, server = make_client(serve())
    im.conversations.delete("id1", Conversation.user("id2"))
    im.conversations.delete("id1", Conversation.group("id2"))
    commands = [_key(s) for s in server.sent]
    assert commands == ["openim/admin_set_msg_read", "recentcontact/delete",
                        "group_open_http_svc/set_unread_msg_num", "recentcontact/delete"]  # fmt: skip
    one, group = server.sent[1], server.sent[3]
    for sent in (one, group):
        check_request(sent, "recentcontact_delete", required={"From_Account", "Type", "ClearRamble"})
    examples = [e["body"] for e in official("recentcontact_delete")["request_examples"]]
    # The official examples with ClearRamble 1; imbridge keeps the history (0).
    assert one.body == {**examples[0], "ClearRamble": 0} and group.body == {**examples[1], "ClearRamble": 0}


def test_c2c_set_unread_reads_then_marks_before_the_right_second() -> None:
    """Lowering one-to-one unread from 12 to 1: admin_set_msg_read with MsgReadTime = the second of the newest
    message from the peer (messages before it become read)."""
    roam = sample("admin_getroammsg", 2)  # one message from user1 at 1584669680
    roam["MsgList"].append({**roam["MsgList"][0], "MsgTimeStamp": 1584669600, "MsgKey": "1_2_1584669600"})
    counts = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
              "C2CUnreadMsgNumList": [{"Peer_Account": "user1", "C2CUnreadMsgNum": 2}]}  # fmt: skip
    im, server = make_client(serve(get_c2c_unread_msg_num=counts, admin_getroammsg=roam))
    im.conversations.set_unread("user2", Conversation.user("user1"), 1)
    read = _sent(server, "admin_set_msg_read")[-1]
    check_request(read, "admin_set_msg_read")
    assert read.body == {"Report_Account": "user2", "Peer_Account": "user1", "MsgReadTime": "1584669680"}
    with pytest.raises(ConflictError, match="cannot be raised"):
        im.conversations.set_unread("user2", Conversation.user("user1"), 3)


def test_c2c_set_unread_refuses_a_split_second() -> None:
    roam = sample("admin_getroammsg", 2)
    roam["MsgList"].append({**roam["MsgList"][0], "MsgKey": "1_2_1584669680"})  # the same second
    counts = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
              "C2CUnreadMsgNumList": [{"Peer_Account": "user1", "C2CUnreadMsgNum": 2}]}  # fmt: skip
    im, server = make_client(serve(get_c2c_unread_msg_num=counts, admin_getroammsg=roam))
    with pytest.raises(ConflictError, match="share a second"):
        im.conversations.set_unread("user2", Conversation.user("user1"), 1)
    assert not _sent(server, "admin_set_msg_read")  # nothing changed


# -- message lookup -------------------------------------------------------------------------------------


def test_get_c2c_message_from_the_roaming_sample() -> None:
    im, server = make_client(serve(admin_getroammsg=sample("admin_getroammsg", 0)))
    ref = c2c_ref("user1", "user2", "549396494_2578554_1584669680")
    message = im.messages.get(ref)
    assert message.elements == [Text("msg 1")] and message.sender == "user1" and not message.revoked
    check_request(server.sent[0], "admin_getroammsg")
    assert {k: server.sent[0].body[k] for k in ("Operator_Account", "Peer_Account", "MinTime", "MaxTime")} == {
        "Operator_Account": "user1", "Peer_Account": "user2", "MinTime": 1584669680, "MaxTime": 1584669680,
    }  # fmt: skip


def test_get_recalled_c2c_message() -> None:
    roam = sample("admin_getroammsg", 2)
    roam["MsgList"][0]["MsgFlagBits"] = 8  # "8: recalled message" (the field table)
    im, _ = make_client(serve(admin_getroammsg=roam))
    message = im.messages.get(c2c_ref("user1", "user2", "549396494_2578554_1584669680"))
    assert message.revoked and message.elements == []


def test_get_group_message_from_the_sample() -> None:
    im, server = make_client(serve())
    message = im.messages.get(group_ref("@TGS#15ERQPAER", "144115198339527735", 7803320))
    assert message.seq == 7803320 and message.elements[1] == Text("Report")
    check_request(server.sent[0], "group_msg_get_simple")
    assert server.sent[0].body == {"GroupId": "@TGS#15ERQPAER", "ReqMsgNumber": 1, "ReqMsgSeq": 7803320,
                                   "WithRecalledMsg": 1}  # fmt: skip


def test_get_many_looks_a_missing_c2c_message_up_from_both_sides() -> None:
    im, server = make_client(serve(admin_getroammsg=sample("admin_getroammsg", 2)))
    missing = c2c_ref("user1", "user2", "1_1_1584669680")
    found = im.messages.get_many([c2c_ref("user1", "user2", "549396494_2578554_1584669680"), missing])
    assert found[0] is not None and found[1] is None
    operators = [s.body["Operator_Account"] for s in _sent(server, "admin_getroammsg")]
    assert operators == ["user1", "user1", "user2"]  # the sender's view, then the recipient's for the miss
    with pytest.raises(NotFoundError):
        im.messages.get(missing)


def test_foreign_and_corrupt_cursors_refused_before_any_request() -> None:
    im, server = make_client(serve(), clock=FakeClock())
    with pytest.raises(InvalidRequestError):  # a Tencent history cursor ({"d":"backward","p":"tencent","t":1})
        im.conversations.list("id1", cursor="eyJkIjoiYmFja3dhcmQiLCJwIjoidGVuY2VudCIsInQiOjF9")
    with pytest.raises(InvalidRequestError):
        im.messages.get(MessageRef(provider="tencent", conversation=Conversation.group("g"), sender="a", key="x"))
    assert server.sent == []


def test_every_official_example_of_these_commands_parses() -> None:
    """Each response example of the new commands reads into its wire model (errors are answered as errors)."""
    from imbridge.providers.tencent import wire

    models = {
        "recentcontact_get_list": wire.RecentContactListResponse, "recentcontact_delete": wire.WireResponse,
        "get_c2c_unread_msg_num": wire.C2CUnreadResponse, "admin_set_msg_read": wire.WireResponse,
        "set_unread_msg_num": wire.WireResponse, "get_joined_group_list": wire.JoinedGroupListResponse,
    }  # fmt: skip
    for fixture, model in models.items():
        for example in official(fixture)["response_examples"]:
            parsed = model.model_validate(example["body"])
            assert parsed.ErrorCode == 0 and parsed.ActionStatus == "OK", (fixture, example["title"])
    counts = wire.C2CUnreadResponse.model_validate(sample("get_c2c_unread_msg_num", 0))
    assert counts.AllC2CUnreadMsgNum == 12 and counts.C2CUnreadMsgNumList == []
    assert ok() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
