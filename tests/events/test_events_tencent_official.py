"""The Tencent receiver against the official documentation: every modelled command's own example, signed
as the official Sign example is, and the before-send answers against the documented answer examples."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from events_support import APP, REQUEST_TIME, SIGN, TOKEN, official, official_body, signed_query, tencent_receiver

from imbridge.errors import AuthenticationError
from imbridge.events import (
    Allow,
    BaseEvent,
    DeviceKind,
    GroupCreated,
    GroupDismissed,
    GroupUpdated,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    MessageRevoked,
    MessageSending,
    ProfileUpdated,
    Refuse,
    Rewrite,
    UnknownEvent,
    UserOffline,
    UserOnline,
)
from imbridge.models import Conversation, Custom, Gender, MessageRef, Text
from imbridge.providers.tencent import mapping, wire


def receive(command: str, *, platform: str = "RESTAPI", index: int = 0) -> tuple[BaseEvent, ...]:
    receiver = tencent_receiver()
    seen: list[BaseEvent] = []
    receiver.on()(seen.append)
    reply = receiver.handle("POST", "/im/callback", {"content-type": "application/json"},
                            signed_query(command, platform=platform), official_body(command, index))  # fmt: skip
    assert reply.status == 200, reply.refusal
    # The documented reply: {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0} (every page's sample response).
    assert json.loads(reply.body) == official(command)["response_examples"][0]["body"] | {"ErrorInfo": ""}
    assert tuple(seen) == reply.handled
    return reply.handled


def test_the_official_sign_example_is_what_the_receiver_accepts() -> None:
    assert signed_query("State.StateChange")["Sign"] == SIGN  # hashlib over the page's token and time
    stale = tencent_receiver(now=REQUEST_TIME + 61)
    reply = stale.handle("POST", "/", {}, signed_query("State.StateChange"), official_body("State.StateChange"))
    assert reply.status == 401 and isinstance(reply.refusal, AuthenticationError)
    assert reply.refusal.native_code == "stale"
    misprinted = signed_query("State.StateChange", token="xxxyyy")  # the token as the page misprints it
    reply = tencent_receiver().handle("POST", "/", {}, misprinted, official_body("State.StateChange"))
    assert reply.status == 401 and reply.refusal is not None and reply.refusal.native_code == "bad_sign"
    other_app = signed_query("State.StateChange", app=1400000000)
    assert tencent_receiver().handle("POST", "/", {}, other_app, official_body("State.StateChange")).status == 403


def test_c2c_after_send_is_message_created_with_the_send_ref() -> None:
    (event,) = receive("C2C.CallbackAfterSendMsg")
    assert isinstance(event, MessageCreated) and event.provider == "tencent"
    # The ref sendmsg would have returned for this message (MsgKey from the send's answer).
    assert event.ref == mapping.c2c_ref("jared", "Jonh", "48374_2837546_1557481126")
    assert str(event.ref) and MessageRef.parse(str(event.ref)) == event.ref
    assert event.message.sender == "jared" and event.message.conversation == Conversation.user("Jonh")
    assert event.message.elements == [Text("red packet")]
    assert event.occurred_at == datetime.fromtimestamp(1557481126, UTC)
    assert event.raw["UnreadMsgNum"] == 7


def test_group_after_send() -> None:
    (event,) = receive("Group.CallbackAfterSendMsg")
    assert isinstance(event, MessageCreated)
    assert event.ref == mapping.group_ref("@TGS#2J4SZEAEL", "jared", 123) and event.message.seq == 123
    assert event.message.metadata == {"CloudCustomData": "your cloud custom data"}


def test_c2c_recall_names_the_full_ref() -> None:
    (event,) = receive("C2C.CallbackAfterMsgWithDraw")
    assert isinstance(event, MessageRevoked) and event.occurred_at is None  # the page's body has no time
    assert event.ref == mapping.c2c_ref("jared", "Jonh", "48374_2837546_1557481126")
    assert event.refers_to(mapping.c2c_ref("jared", "Jonh", "48374_2837546_1557481126"))
    assert not event.refers_to(mapping.c2c_ref("jared", "Jonh", "1_2_3"))


def test_group_recall_names_group_and_seq_only() -> None:
    (event,) = receive("Group.CallbackAfterRecallMsg")
    assert isinstance(event, MessageRevoked)
    assert (event.key, event.seq, event.sender, event.ref, event.revoked_by) == ("130", 130, None, None, "admin")
    assert event.refers_to(mapping.group_ref("1213456", "anyone", 130))
    assert not event.refers_to(mapping.group_ref("1213456", "anyone", 131))
    assert event.occurred_at == datetime.fromtimestamp(1670574414.123, UTC)


def test_member_join_and_exit_give_one_event_per_member() -> None:
    joined = receive("Group.CallbackAfterNewMemberJoin")
    assert [type(e) for e in joined] == [MemberJoined, MemberJoined]
    assert [(e.group_id, e.user_id, e.how, e.operator) for e in joined if isinstance(e, MemberJoined)] == [
        ("@TGS#2J4SZEAEL", "jared", "Apply", "leckie"), ("@TGS#2J4SZEAEL", "tommy", "Apply", "leckie")]  # fmt: skip
    left = receive("Group.CallbackAfterMemberExit")
    assert [(e.user_id, e.how) for e in left if isinstance(e, MemberLeft)] == [("jared", "Kicked"), ("tommy", "Kicked")]
    assert len({e.event_id for e in (*joined, *left)}) == 4


def test_group_created_dismissed_updated() -> None:
    (created,) = receive("Group.CallbackAfterCreateGroup")
    assert isinstance(created, GroupCreated)
    assert (created.group_id, created.name, created.owner, created.members, created.operator) == (
        "@TGS#2J4SZEAEL", "MyFirstGroup", "leckie", ["bob", "peter"], "group_root")  # fmt: skip
    (dismissed,) = receive("Group.CallbackAfterGroupDestroyed")
    assert isinstance(dismissed, GroupDismissed) and dismissed.group_id == "@TGS#2J4SZEAEL"
    (updated,) = receive("Group.CallbackAfterGroupInfoChanged")
    assert isinstance(updated, GroupUpdated)
    assert updated.changes == {"notification": "NewNotification"} and updated.operator == "leckie"


def test_profile_set_maps_tags_to_profile_fields() -> None:
    (event,) = receive("Profile.CallbackPortraitSet")
    assert isinstance(event, ProfileUpdated) and event.user_id == "id1"
    assert event.changes == {"nickname": "nick1", "gender": "male"} and event.gender is Gender.MALE
    assert event.custom == {"Data": "your custom data"}  # AllowType has no neutral field: it stays in raw
    assert event.occurred_at == datetime.fromtimestamp(1656921052.497, UTC)


def test_state_change_login_and_kicked_devices() -> None:
    events = receive("State.StateChange", platform="Windows")
    online, *kicked = events
    assert isinstance(online, UserOnline) and online.user_id == "testuser316" and online.device is DeviceKind.DESKTOP
    assert [(e.platform, e.device) for e in kicked if isinstance(e, UserOffline)] == [
        ("Windows", DeviceKind.DESKTOP), ("Android", DeviceKind.APP)]  # fmt: skip


def test_an_unmodelled_command_is_an_unknown_event_not_an_error() -> None:
    receiver = tencent_receiver()
    body = json.dumps({"CallbackCommand": "Sns.CallbackFriendAdd", "PairList": []}).encode()
    reply = receiver.handle("POST", "/", {}, signed_query("Sns.CallbackFriendAdd"), body)
    assert reply.status == 200
    (event,) = reply.handled
    assert isinstance(event, UnknownEvent) and event.name == "Sns.CallbackFriendAdd" and event.raw["PairList"] == []
    assert receiver.handle("POST", "/", {}, signed_query("Sns.CallbackFriendAdd"), body).duplicates == 1


# -- before-send: the documented answers ----------------------------------------------------------------


def _answers(command: str) -> dict[str, dict[str, object]]:
    return {example["title"]: example["body"] for example in official(command)["response_examples"]}


@pytest.mark.parametrize("command", ["C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg"])
def test_before_send_allow_refuse_rewrite_answer_as_documented(command: str) -> None:
    answers = list(_answers(command).values())  # allow, forbid (1), drop silently (2), modified
    documented = answers[3]
    documented_elements = [mapping.element_from_wire(wire.MsgElement.model_validate(e))
                           for e in documented["MsgBody"]]  # type: ignore[attr-defined]  # fmt: skip
    assert isinstance(documented_elements[1], Custom)
    receiver = tencent_receiver()
    asked: list[MessageSending] = []
    decisions: list[object] = [Allow(), Refuse("spam", code=1)]
    decisions.append(Rewrite(documented_elements, metadata={"level": 1}))
    decisions.append(Refuse("no links here"))

    @receiver.on_before_send
    def decide(message: MessageSending) -> object:
        asked.append(message)
        return decisions[len(asked) - 1]

    def ask() -> dict[str, object]:
        reply = receiver.handle("POST", "/", {}, signed_query(command), official_body(command))
        assert reply.status == 200 and reply.handled == ()
        return dict(json.loads(reply.body))

    assert ask() == answers[0]  # {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
    assert ask() == answers[1] | {"ErrorInfo": "spam"}  # ErrorCode 1
    rewritten = ask()
    assert set(documented) <= set(rewritten) and rewritten["ErrorCode"] == 0
    # The documented rewrite, given as neutral elements, goes back out as the page's MsgBody (plus the
    # Custom element's empty Ext and Sound fields, which the message-format page lists).
    for ours, theirs in zip(rewritten["MsgBody"], documented["MsgBody"], strict=True):  # type: ignore[call-overload]
        assert ours["MsgType"] == theirs["MsgType"]
        assert ours["MsgContent"].items() >= theirs["MsgContent"].items()
    assert json.loads(str(rewritten["CloudCustomData"])) == {"level": 1}
    # Refuse without a code: the first app code of the page's range, which passes the reason to the sender.
    refused = ask()
    low = 120001 if command.startswith("C2C") else 10100
    assert refused == {"ActionStatus": "OK", "ErrorInfo": "no links here", "ErrorCode": low}
    first = asked[0]
    assert first.sender == "jared" and first.elements == [Text("red packet")]
    kind = "user" if command.startswith("C2C") else "group"
    assert first.conversation.kind.value == kind


def test_before_send_without_a_handler_allows_and_a_failing_handler_lets_tencent_decide() -> None:
    command = "C2C.CallbackBeforeSendMsg"
    receiver = tencent_receiver()
    reply = receiver.handle("POST", "/", {}, signed_query(command), official_body(command))
    assert json.loads(reply.body) == _answers(command)["Sample response when sending messages is allowed"]

    @receiver.on_before_send
    def broken(message: MessageSending) -> Allow:
        raise RuntimeError("policy service down")

    reply = receiver.handle("POST", "/", {}, signed_query(command), official_body(command))
    # Not 200: Tencent then applies the console's timeout policy (documented default: deliver).
    assert reply.status == 500 and isinstance(reply.error, RuntimeError)
    assert TOKEN not in reply.body.decode() and str(APP) not in reply.body.decode()


def test_the_app_handler_written_once_on_the_official_examples() -> None:
    from chat_index import ChatIndex

    receiver = tencent_receiver()
    index = ChatIndex(receiver)
    commands = ("C2C.CallbackAfterSendMsg", "Group.CallbackAfterSendMsg", "C2C.CallbackAfterMsgWithDraw",
                "Group.CallbackAfterNewMemberJoin", "Group.CallbackAfterMemberExit", "State.StateChange")
    for command in commands:
        assert receiver.handle("POST", "/", {}, signed_query(command), official_body(command)).status == 200
    c2c = mapping.c2c_ref("jared", "Jonh", "48374_2837546_1557481126")
    assert index.text_of(c2c) == "red packet" and index.was_revoked(c2c)
    assert index.text_of(mapping.group_ref("@TGS#2J4SZEAEL", "jared", 123)) == "red packet"
    assert index.left["@TGS#2J4SZEAEL"] == {"jared", "tommy"} and index.members["@TGS#2J4SZEAEL"] == set()
    assert index.online["testuser316"] == 1 - 2  # logged in, and two devices kicked off
