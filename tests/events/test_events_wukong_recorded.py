"""The WuKongIM receiver against what a real v2.2.5 server POSTed (tests/fixtures/wukong/webhooks/, see
PROVENANCE.md there): imbridge's sends and revoke, an app's convention notices, messages the official JS SDK
sent over WebSocket (not through imbridge), connections coming and going, and a retried delivery."""

from __future__ import annotations

import base64
import json
from typing import Any

from chat_index import ChatIndex
from events_support import PATH_SECRET, WUKONG_FIXTURES, wukong_receiver

from imbridge.events import (
    DeviceKind,
    EventReceiver,
    InboundRequest,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    MessageRevoked,
    RecipientsOffline,
    Reply,
    UserOffline,
    UserOnline,
)
from imbridge.models import Conversation, MessageRef, Text

RECORDING: dict[str, Any] = json.loads((WUKONG_FIXTURES / "recording.json").read_text(encoding="utf-8"))
SENT, USERS = RECORDING["sent"], RECORDING["users"]


def requests() -> list[InboundRequest]:
    return [
        InboundRequest(method=item["method"], path=item["path"].replace("<WEBHOOK_SECRET>", PATH_SECRET),
                       headers={"content-type": item["content_type"]}, query=item["query"],
                       body=item["body"].encode(), client="127.0.0.1")
        for item in RECORDING["requests"]
    ]


def replay(receiver: EventReceiver) -> list[Reply]:
    return [receiver.deliver(request) for request in requests()]


def test_the_recording_is_of_the_real_server() -> None:
    assert RECORDING["server"] == {"version": "v2.2.5-20260422", "commit": "a888f89533d0e7d1b2030e06504ca97f1ad891d4"}
    assert {item["query"]["event"] for item in RECORDING["requests"]} == {"msg.notify", "msg.offline",
                                                                          "user.onlinestatus"}  # fmt: skip
    assert all("<WEBHOOK_SECRET>" in item["path"] for item in RECORDING["requests"])


def test_an_app_handler_sees_imbridge_sends_with_their_refs() -> None:
    receiver = wukong_receiver()
    index = ChatIndex(receiver)
    replies = replay(receiver)
    assert all(reply.status == 200 for reply in replies)
    one, group = MessageRef.parse(SENT["imbridge_c2c"]), MessageRef.parse(SENT["imbridge_group"])
    assert index.text_of(one) == "hello from imbridge" and index.created_count[str(one)] == 1
    assert index.text_of(group) == "hello group, from imbridge" and index.created_count[str(group)] == 1
    doomed = MessageRef.parse(SENT["imbridge_group_revoked"])
    assert index.was_revoked(one) and index.was_revoked(doomed) and not index.was_revoked(group)
    person, in_group = index.revoked
    assert person.ref == one and person.revoked_by == USERS["alice"]
    assert in_group.ref == doomed and in_group.revoked_by == USERS["bob"]


def test_messages_sent_by_the_official_js_sdk_arrive_as_message_created() -> None:
    receiver = wukong_receiver()
    created: list[MessageCreated] = []
    receiver.on(MessageCreated)(created.append)
    replay(receiver)
    by_key = {event.ref.key: event for event in created}
    for name, conversation in (("jssdk_c2c", Conversation.user(USERS["carol"])),
                               ("jssdk_group", Conversation.group(USERS["group"]))):  # fmt: skip
        ack = SENT[name]
        event = by_key[ack["message_id"]]  # the message id the SDK's SENDACK carried
        assert event.ref.seq == ack["message_seq"] and event.ref.extra == {"client_msg_no": ack["client_msg_no"]}
        assert event.message.sender == USERS["bob"] and event.message.conversation == conversation
        assert event.message.elements == [Text(ack["text"])]


def test_convention_notices_are_member_events() -> None:
    receiver = wukong_receiver()
    seen: list[Any] = []
    receiver.on(MemberJoined, MemberLeft)(seen.append)
    replay(receiver)
    joined, left = seen
    assert isinstance(joined, MemberJoined) and isinstance(left, MemberLeft)
    assert (joined.group_id, joined.user_id, joined.operator) == (USERS["group"], USERS["dave"], USERS["alice"])
    assert (left.group_id, left.user_id) == (USERS["group"], USERS["dave"])
    assert joined.event_id == f"wukong:notice:{SENT['notice_1002']}:{USERS['dave']}"


def test_connections_are_presence_events() -> None:
    receiver = wukong_receiver()
    seen: list[Any] = []
    receiver.on(UserOnline, UserOffline)(seen.append)
    replay(receiver)
    carol = [(type(e).__name__, e.device) for e in seen if e.user_id == USERS["carol"]]
    assert carol == [("UserOnline", DeviceKind.WEB), ("UserOffline", DeviceKind.WEB)]  # the SDK's device flag 1
    assert sum(isinstance(e, UserOnline) for e in seen if e.user_id == USERS["bob"]) == 2  # two send.mjs runs


def test_offline_recipients() -> None:
    receiver = wukong_receiver()
    seen: list[RecipientsOffline] = []
    receiver.on(RecipientsOffline)(seen.append)
    replay(receiver)
    group_send = next(e for e in seen if e.message.ref == MessageRef.parse(SENT["imbridge_group"]))
    assert sorted(group_send.recipients) == sorted([USERS["alice"], USERS["carol"]])  # the sender is filtered out
    js_group = next(e for e in seen if e.message.ref.key == SENT["jssdk_group"]["message_id"])
    assert js_group.recipients == [USERS["alice"]]  # carol was connected (master device), bob sent it


def test_the_retried_delivery_is_handed_on_once() -> None:
    retried = MessageRef.parse(SENT["retried"])
    # As recorded: the recording's receiver failed the first delivery (500) and WuKongIM retried it 1 s later.
    for failing in (True, False):
        receiver = wukong_receiver()
        calls: list[str] = []

        @receiver.on(MessageCreated)
        def handle(event: MessageCreated, failing: bool = failing, calls: list[str] = calls) -> None:
            if event.ref == retried:
                calls.append(event.event_id)
                if failing and len(calls) == 1:
                    raise RuntimeError("down")

        replies = replay(receiver)
        if failing:  # the failure is answered 500 and the retry handled: the app completes it once
            assert len(calls) == 2 and [r.status for r in replies].count(500) == 1
        else:  # handled the first time; the retry is a duplicate
            assert len(calls) == 1 and sum(r.duplicates for r in replies) == 1


def test_revoke_notices_are_not_new_messages() -> None:
    receiver = wukong_receiver()
    created: list[MessageCreated] = []
    revoked: list[MessageRevoked] = []
    receiver.on(MessageCreated)(created.append)
    receiver.on(MessageRevoked)(revoked.append)
    replay(receiver)
    notices = [
        str(message["message_id"])
        for item in RECORDING["requests"] if item["query"]["event"] == "msg.notify"
        for message in json.loads(item["body"])
        if json.loads(base64.b64decode(message["payload"])).get("type") == 1006
    ]  # fmt: skip
    assert len(notices) == 2 and len(revoked) == 2
    assert not set(notices) & {event.ref.key for event in created}


def test_revoke_notices_come_from_the_command_twin_and_name_their_conversation() -> None:
    # As the real server reports imbridge's notices (stored with sync_once in <channel>____cmd): msg.notify
    # renders the twin's id (a person twin by MessageResp.From's rule, here the revoker's own id with the
    # suffix), keeps sync_once; the adapter still names the revoked message's conversation.
    notices = {
        json.loads(base64.b64decode(message["payload"]))["message_id"]: message
        for item in RECORDING["requests"] if item["query"]["event"] == "msg.notify"
        for message in json.loads(item["body"])
        if json.loads(base64.b64decode(message["payload"])).get("type") == 1006
    }  # fmt: skip
    receiver = wukong_receiver()
    revoked: list[MessageRevoked] = []
    receiver.on(MessageRevoked)(revoked.append)
    replay(receiver)
    for name in ("imbridge_revoked", "imbridge_group_revoked"):
        ref = MessageRef.parse(SENT[name])
        notice = notices[ref.key]
        assert notice["header"] == {"no_persist": 0, "red_dot": 0, "sync_once": 1}
        assert notice["channel_id"].endswith("____cmd") and notice["from_uid"] == ref.sender
        (event,) = [e for e in revoked if e.key == ref.key]
        assert event.conversation == ref.conversation and event.ref == ref
    person = notices[MessageRef.parse(SENT["imbridge_revoked"]).key]
    assert person["channel_id"] in (f"{USERS['alice']}____cmd", f"{USERS['bob']}____cmd")
    group = notices[MessageRef.parse(SENT["imbridge_group_revoked"]).key]
    assert group["channel_id"] == f"{USERS['group']}____cmd"


def test_events_built_without_revalidation_equal_the_validating_constructors() -> None:
    receiver = wukong_receiver()
    created: list[MessageCreated] = []
    receiver.on(MessageCreated)(created.append)
    replay(receiver)
    assert created
    for event in created:
        m = event.message
        conversation = Conversation.model_validate(m.conversation.model_dump())
        ref = MessageRef(provider=m.ref.provider, conversation=conversation, sender=m.ref.sender, key=m.ref.key,
                         seq=m.ref.seq, extra=dict(m.ref.extra))  # fmt: skip
        again = MessageCreated(
            provider=event.provider, event_id=event.event_id, occurred_at=event.occurred_at,
            received_at=event.received_at, raw=event.raw,
            message=type(m)(ref=ref, sender=m.sender, conversation=conversation, elements=list(m.elements),
                            time=m.time, seq=m.seq, metadata=m.metadata, provider=m.provider, raw=m.raw),
        )  # fmt: skip
        assert again == event and again.model_dump_json() == event.model_dump_json()
        assert str(again.ref) == str(event.ref) and MessageRef.parse(str(event.ref)) == event.ref
        assert again.model_fields_set == event.model_fields_set



def test_a_revoke_notice_offered_for_offline_push_is_no_new_message() -> None:
    receiver = wukong_receiver()
    offline: list[RecipientsOffline] = []
    receiver.on(RecipientsOffline)(offline.append)
    replay(receiver)
    offered = [
        item for item in RECORDING["requests"] if item["query"]["event"] == "msg.offline"
        and json.loads(base64.b64decode(json.loads(item["body"])["payload"])).get("type") == 1006
    ]  # fmt: skip
    assert offered, "the recording has no revoke notice offered for offline push"
    assert offline, "the recording's ordinary messages are offered for offline push too"
    assert {event.message.ref.extra["client_msg_no"] for event in offline}.isdisjoint(
        {json.loads(item["body"])["client_msg_no"] for item in offered}
    )
