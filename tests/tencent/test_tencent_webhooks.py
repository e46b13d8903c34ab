"""Webhooks: the official Sign example, freshness, replay protection, typed events, the ack."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from tencent_support import official

from imbridge.errors import AuthenticationError, InvalidRequestError
from imbridge.models import Text
from imbridge.providers.tencent.webhooks import (
    ACK,
    C2CAfterSendMsg,
    GroupAfterSendMsg,
    GroupMemberExit,
    GroupNewMemberJoin,
    StateChange,
    UnknownEvent,
    WebhookVerifier,
    ack_body,
    compute_sign,
    parse_event,
    verify_sign,
)

TOKEN, REQUEST_TIME = "xxxxyyyy", 1669872112
SIGN = "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"


def test_official_sign_example_verifies() -> None:
    fixture = official("webhook_sign")
    assert fixture["sign_as_printed"] == SIGN
    assert compute_sign(TOKEN, REQUEST_TIME) == SIGN
    verify_sign(TOKEN, str(REQUEST_TIME), SIGN, now=REQUEST_TIME + 5)
    verify_sign(TOKEN, REQUEST_TIME, SIGN.upper(), now=REQUEST_TIME)


@pytest.mark.parametrize(
    ("token", "request_time", "sign", "now"),
    [
        ("xxxyyy", REQUEST_TIME, SIGN, REQUEST_TIME),  # the page's misprinted token
        (TOKEN, REQUEST_TIME + 1, SIGN, REQUEST_TIME),  # a changed RequestTime
        (TOKEN, REQUEST_TIME, SIGN[:-1] + "0", REQUEST_TIME),  # a changed Sign
        (TOKEN, REQUEST_TIME, SIGN, REQUEST_TIME + 61),  # stale
        (TOKEN, REQUEST_TIME, SIGN, REQUEST_TIME - 61),  # from the future
        (TOKEN, "not-a-time", SIGN, REQUEST_TIME),
    ],
)
def test_changed_or_stale_signatures_are_refused(token: str, request_time: object, sign: str, now: int) -> None:
    with pytest.raises(AuthenticationError):
        verify_sign(token, request_time, sign, now=now)  # type: ignore[arg-type]


def _query(command: str) -> dict[str, str]:
    return {"SdkAppid": "888888", "CallbackCommand": command, "contenttype": "json", "ClientIP": "1.2.3.4",
            "OptPlatform": "RESTAPI", "Sign": SIGN, "RequestTime": str(REQUEST_TIME)}  # fmt: skip


def test_verifier_checks_app_sign_and_replays() -> None:
    body = json.dumps(official("webhook_C2C.CallbackAfterSendMsg")["request_examples"][0]["body"]).encode()
    verifier = WebhookVerifier(TOKEN, 888888)
    event = verifier.handle(_query("C2C.CallbackAfterSendMsg"), body, now=REQUEST_TIME)
    assert isinstance(event, C2CAfterSendMsg)
    with pytest.raises(AuthenticationError, match="replayed"):
        verifier.handle(_query("C2C.CallbackAfterSendMsg"), body, now=REQUEST_TIME + 1)
    # A different body in the same second is a different callback (the Sign covers only token + time).
    other = body.replace(b"red packet", b"blue packet")
    assert isinstance(verifier.handle(_query("C2C.CallbackAfterSendMsg"), other, now=REQUEST_TIME), C2CAfterSendMsg)
    with pytest.raises(AuthenticationError):
        WebhookVerifier(TOKEN, 1400000000).handle(_query("C2C.CallbackAfterSendMsg"), body, now=REQUEST_TIME)
    with pytest.raises(AuthenticationError):
        WebhookVerifier("another-token", 888888).handle(_query("C2C.CallbackAfterSendMsg"), body, now=REQUEST_TIME)
    unsigned = {k: v for k, v in _query("C2C.CallbackAfterSendMsg").items() if k not in ("Sign", "RequestTime")}
    with pytest.raises(AuthenticationError):
        WebhookVerifier(TOKEN, 888888).handle(unsigned, body, now=REQUEST_TIME)


def test_c2c_after_send() -> None:
    event = parse_event(official("webhook_C2C.CallbackAfterSendMsg")["request_examples"][0]["body"])
    assert isinstance(event, C2CAfterSendMsg)
    assert (event.sender, event.recipient, event.msg_key) == ("jared", "Jonh", "48374_2837546_1557481126")
    assert event.delivered and event.unread == 7 and event.elements == [Text("red packet")]
    assert event.metadata == {"CloudCustomData": "your cloud custom data"}
    message = event.message()
    assert message.ref.key == "48374_2837546_1557481126" and message.time == datetime.fromtimestamp(1557481126, UTC)


def test_group_after_send() -> None:
    event = parse_event(json.dumps(official("webhook_Group.CallbackAfterSendMsg")["request_examples"][0]["body"]))
    assert isinstance(event, GroupAfterSendMsg)
    assert (event.group_id, event.sender, event.seq) == ("@TGS#2J4SZEAEL", "jared", 123)
    assert event.event_time == datetime.fromtimestamp(1670574414.123, UTC)
    assert event.message().ref.seq == 123


def test_member_join_and_exit() -> None:
    join = parse_event(official("webhook_Group.CallbackAfterNewMemberJoin")["request_examples"][0]["body"])
    assert isinstance(join, GroupNewMemberJoin) and join.members == ["jared", "tommy"] and join.join_type == "Apply"
    leave = parse_event(official("webhook_Group.CallbackAfterMemberExit")["request_examples"][0]["body"])
    assert isinstance(leave, GroupMemberExit) and leave.members == ["jared", "tommy"] and leave.exit_type == "Kicked"


def test_state_change() -> None:
    event = parse_event(official("webhook_State.StateChange")["request_examples"][0]["body"])
    assert isinstance(event, StateChange)
    assert (event.user_id, event.action, event.reason) == ("testuser316", "Login", "Register")
    assert event.kicked_platforms == ["Windows", "Android"]
    assert event.event_time == datetime.fromtimestamp(1629883332.497, UTC)


def test_unknown_and_malformed_callbacks() -> None:
    event = parse_event({"CallbackCommand": "Sns.CallbackFriendAdd", "X": 1})
    assert isinstance(event, UnknownEvent) and event.raw["X"] == 1
    with pytest.raises(InvalidRequestError):
        parse_event({"CallbackCommand": "State.StateChange"})
    with pytest.raises(InvalidRequestError):
        parse_event(b"not json")


def test_ack_body_is_the_documented_reply() -> None:
    assert json.loads(ack_body()) == ACK == official("webhook_State.StateChange")["response_examples"][0]["body"]
