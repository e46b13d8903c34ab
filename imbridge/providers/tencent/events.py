"""Tencent IM callbacks as neutral events, and the answers Tencent expects (the inbound adapter).

Requests: ``POST <url>?SdkAppid=&CallbackCommand=&contenttype=json&ClientIP=&OptPlatform=`` plus, with
authentication on, ``&Sign=&RequestTime=`` (overview, https://www.tencentcloud.com/document/product/1047/34354).
Answers: HTTP 200 with ``{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}``; for the before-send
callbacks ``ErrorCode`` 0 (deliver; with ``MsgBody``/``CloudCustomData`` to deliver those instead), 1
(refuse) or an app code in [120001, 130000] (one-to-one, /1047/34364) or [10100, 10200] (group,
/1047/34374) that also passes ``ErrorInfo`` to the sender. Tencent retries nothing before an event and,
by default, nothing after one; non-200 or non-JSON counts as a failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from imbridge._inbound import Limits, forged
from imbridge.capabilities import Support
from imbridge.errors import ConfigurationError, IMBridgeError
from imbridge.events.base import Delivery, EventSupport, InboundRequest, Reply
from imbridge.events.models import (
    Allow,
    Decision,
    DeviceKind,
    Event,
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
    UnknownEvent,
    UserOffline,
    UserOnline,
)
from imbridge.models.conversation import Conversation, ConversationKind
from imbridge.providers.tencent import mapping, webhooks

NAME = mapping.NAME

#: OptPlatform values (overview page; State.StateChange writes "IOS") -> neutral device kinds.
PLATFORMS: dict[str, DeviceKind] = {
    "android": DeviceKind.APP, "ios": DeviceKind.APP, "ipad": DeviceKind.APP,
    "web": DeviceKind.WEB,
    "windows": DeviceKind.DESKTOP, "macos": DeviceKind.DESKTOP, "mac": DeviceKind.DESKTOP,
}  # fmt: skip

#: Group profile fields of Group.CallbackAfterGroupInfoChanged -> imbridge.Group field names.
GROUP_FIELDS = {"Name": "name", "Introduction": "introduction", "Notification": "notification", "FaceUrl": "face_url"}

#: Profile tags -> imbridge.Profile field names (Tag_Profile_Custom_<key> goes to ``custom``).
PROFILE_TAGS = {
    mapping.TAG_NICK: "nickname", mapping.TAG_IMAGE: "avatar_url", mapping.TAG_GENDER: "gender",
    mapping.TAG_SIGNATURE: "signature",
}  # fmt: skip

C2C_REFUSE_CODES = (120001, 130000)
GROUP_REFUSE_CODES = (10100, 10200)

_PAGES = "https://www.tencentcloud.com/document/product/1047/"
SUPPORT: dict[str, EventSupport] = {
    "message.created": EventSupport(
        Support.NATIVE, f"C2C.CallbackAfterSendMsg ({_PAGES}34365), Group.CallbackAfterSendMsg ({_PAGES}34375)"
    ),
    "message.revoked": EventSupport(
        Support.NATIVE,
        f"C2C.CallbackAfterMsgWithDraw ({_PAGES}43466); Group.CallbackAfterRecallMsg ({_PAGES}46979) names the "
        "group and MsgSeq, not the sender (MessageRevoked.ref is None; refers_to() compares what is known)",
    ),
    "member.joined": EventSupport(Support.NATIVE, f"Group.CallbackAfterNewMemberJoin ({_PAGES}34372)"),
    "member.left": EventSupport(Support.NATIVE, f"Group.CallbackAfterMemberExit ({_PAGES}34373)"),
    "group.created": EventSupport(Support.NATIVE, f"Group.CallbackAfterCreateGroup ({_PAGES}34369)"),
    "group.dismissed": EventSupport(Support.NATIVE, f"Group.CallbackAfterGroupDestroyed ({_PAGES}34377)"),
    "group.updated": EventSupport(Support.NATIVE, f"Group.CallbackAfterGroupInfoChanged ({_PAGES}34378)"),
    "user.online": EventSupport(Support.NATIVE, f"State.StateChange Login ({_PAGES}34357)"),
    "user.offline": EventSupport(
        Support.NATIVE, f"State.StateChange Logout/Disconnect, and each KickedDevice ({_PAGES}34357)"
    ),
    "profile.updated": EventSupport(Support.NATIVE, f"Profile.CallbackPortraitSet ({_PAGES}48733)"),
    "message.recipients_offline": EventSupport(Support.UNSUPPORTED, "Tencent has no such callback"),
    "before_send": EventSupport(
        Support.NATIVE,
        f"C2C.CallbackBeforeSendMsg ({_PAGES}34364), Group.CallbackBeforeSendMsg ({_PAGES}34374), answered by "
        "EventReceiver.on_before_send: every sendmsg/send_group_msg, client SDKs' included (batchsendmsg triggers "
        "none); Tencent waits 2 s, then applies the console's timeout policy (default: deliver). A client's "
        "before_send is not applied on Tencent, so that a policy runs once per message",
    ),
}


def device_kind(platform: str | None) -> DeviceKind:
    return PLATFORMS.get((platform or "").lower(), DeviceKind.UNKNOWN)


def _when(event_time: datetime | None, raw: Mapping[str, Any]) -> str:
    """What tells one occurrence from another: the event's millisecond time, else the body's digest."""
    if event_time is not None:
        return str(round(event_time.timestamp() * 1000))
    return "h" + hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _conversation(kind: ConversationKind, ident: str) -> Conversation:
    return Conversation(kind=kind, id=ident)


def to_events(event: webhooks.WebhookEvent, platform: str | None, received_at: datetime) -> list[Event]:
    """The neutral events a parsed callback reports (a member list gives one event per member)."""
    common: dict[str, Any] = {"provider": NAME, "received_at": received_at, "raw": event.raw}
    w = webhooks
    if isinstance(event, w.C2CAfterSendMsg):
        if not event.delivered:
            return [UnknownEvent(**common, event_id=f"tencent:c2c-undelivered:{event.sender}:{event.recipient}:"
                                 f"{event.msg_key}", name=event.command,
                                 detail=f"not delivered (SendMsgResult {event.raw.get('SendMsgResult')})")]  # fmt: skip
        event_id = f"tencent:msg:c2c:{event.sender}:{event.recipient}:{event.msg_key}"
        return [MessageCreated(**common, occurred_at=event.time, message=event.message(), event_id=event_id)]
    if isinstance(event, w.GroupAfterSendMsg):
        return [MessageCreated(**common, occurred_at=event.time, message=event.message(),
                               event_id=f"tencent:msg:group:{event.group_id}:{event.seq}")]  # fmt: skip
    if isinstance(event, w.C2CAfterMsgWithDraw):
        ref = mapping.c2c_ref(event.sender, event.recipient, event.msg_key)
        return [MessageRevoked(
            **common, event_id=f"tencent:revoke:c2c:{event.sender}:{event.recipient}:{event.msg_key}",
            conversation=ref.conversation, key=event.msg_key, sender=event.sender, revoked_by=event.sender, ref=ref,
        )]  # fmt: skip
    if isinstance(event, w.GroupAfterRecallMsg):
        group = _conversation(ConversationKind.GROUP, event.group_id)
        return [
            MessageRevoked(**common, occurred_at=event.event_time, conversation=group, key=str(seq), seq=seq,
                           revoked_by=event.operator, event_id=f"tencent:revoke:group:{event.group_id}:{seq}")
            for seq in event.seqs
        ]  # fmt: skip
    if isinstance(event, w.GroupNewMemberJoin):
        when = _when(event.event_time, event.raw)
        return [
            MemberJoined(**common, occurred_at=event.event_time, group_id=event.group_id, user_id=uid,
                         operator=event.operator, how=event.join_type,
                         event_id=f"tencent:join:{event.group_id}:{uid}:{when}")
            for uid in event.members
        ]  # fmt: skip
    if isinstance(event, w.GroupMemberExit):
        when = _when(event.event_time, event.raw)
        return [
            MemberLeft(**common, occurred_at=event.event_time, group_id=event.group_id, user_id=uid,
                       operator=event.operator, how=event.exit_type,
                       event_id=f"tencent:exit:{event.group_id}:{uid}:{when}")
            for uid in event.members
        ]  # fmt: skip
    if isinstance(event, w.GroupAfterCreateGroup):
        return [GroupCreated(
            **common, occurred_at=event.event_time, group_id=event.group_id, name=event.name, owner=event.owner,
            members=event.members, operator=event.operator,
            event_id=f"tencent:group.created:{event.group_id}:{_when(event.event_time, event.raw)}",
        )]  # fmt: skip
    if isinstance(event, w.GroupAfterGroupDestroyed):
        return [GroupDismissed(
            **common, occurred_at=event.event_time, group_id=event.group_id,
            event_id=f"tencent:group.dismissed:{event.group_id}:{_when(event.event_time, event.raw)}",
        )]  # fmt: skip
    if isinstance(event, w.GroupAfterGroupInfoChanged):
        changes = {GROUP_FIELDS[name]: value for name, value in event.changes.items()}
        return [GroupUpdated(
            **common, occurred_at=event.event_time, group_id=event.group_id, changes=changes, operator=event.operator,
            event_id=f"tencent:group.updated:{event.group_id}:{_when(event.event_time, event.raw)}",
        )]  # fmt: skip
    if isinstance(event, w.PortraitSet):
        return [_profile_updated(event, common)]
    if isinstance(event, w.StateChange):
        return _state_events(event, platform, common)
    if isinstance(event, w.UnknownEvent):
        digest = hashlib.sha256(json.dumps(event.raw, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return [UnknownEvent(**common, event_id=f"tencent:unknown:{event.command}:{digest}", name=event.command)]
    raise AssertionError(f"unhandled callback {event.command}")  # pragma: no cover - before-send handled apart


def _profile_updated(event: webhooks.PortraitSet, common: dict[str, Any]) -> ProfileUpdated:
    changes: dict[str, str] = {}
    custom: dict[str, str] = {}
    for tag, value in event.items.items():
        if tag in PROFILE_TAGS:
            text = str(value)
            if tag == mapping.TAG_GENDER:
                gender = next((g for g, name in mapping.GENDERS.items() if name == text), None)
                text = gender.value if gender is not None else text
            changes[PROFILE_TAGS[tag]] = text
        elif tag.startswith(mapping.CUSTOM_PREFIX):
            custom[tag[len(mapping.CUSTOM_PREFIX) :]] = str(value)
    return ProfileUpdated(
        **common, occurred_at=event.event_time, user_id=event.user_id, changes=changes, custom=custom,
        operator=event.operator, event_id=f"tencent:profile:{event.user_id}:{_when(event.event_time, event.raw)}",
    )  # fmt: skip


def _state_events(event: webhooks.StateChange, platform: str | None, common: dict[str, Any]) -> list[Event]:
    when = _when(event.event_time, event.raw)
    base = f"tencent:state:{event.user_id}:{when}"
    kind = device_kind(platform)
    events: list[Event] = []
    if event.action == "Login":
        events.append(UserOnline(**common, occurred_at=event.event_time, user_id=event.user_id, device=kind,
                                 platform=platform, event_id=f"{base}:login"))  # fmt: skip
    elif event.action in ("Logout", "Disconnect"):
        reason = f"{event.action}: {event.reason}" if event.reason else event.action
        events.append(UserOffline(**common, occurred_at=event.event_time, user_id=event.user_id, device=kind,
                                  platform=platform, reason=reason,
                                  event_id=f"{base}:{event.action.lower()}"))  # fmt: skip
    else:
        events.append(UnknownEvent(**common, occurred_at=event.event_time, name=event.command,
                                   detail=f"Action {event.action[:40]!r}", event_id=f"{base}:other"))  # fmt: skip
    for index, kicked in enumerate(event.kicked_platforms):
        events.append(UserOffline(**common, occurred_at=event.event_time, user_id=event.user_id,
                                  device=device_kind(kicked), platform=kicked, reason="kicked by a new login",
                                  event_id=f"{base}:kicked:{index}:{kicked}"))  # fmt: skip
    return events


def pending_message(
    event: webhooks.C2CBeforeSendMsg | webhooks.GroupBeforeSendMsg, received_at: datetime
) -> MessageSending:
    common: dict[str, Any] = {"provider": NAME, "received_at": received_at, "raw": event.raw}
    if isinstance(event, webhooks.C2CBeforeSendMsg):
        return MessageSending(
            **common, occurred_at=event.time, sender=event.sender,
            conversation=_conversation(ConversationKind.USER, event.recipient), elements=event.elements,
            metadata=event.metadata, event_id=f"tencent:sending:c2c:{event.sender}:{event.recipient}:{event.msg_key}",
        )  # fmt: skip
    return MessageSending(
        **common, occurred_at=event.event_time, sender=event.sender,
        conversation=_conversation(ConversationKind.GROUP, event.group_id), elements=event.elements,
        metadata=event.metadata,
        event_id=f"tencent:sending:group:{event.group_id}:{event.sender}:{event.random}:"
        f"{_when(event.event_time, event.raw)}",
    )  # fmt: skip


def _json(payload: Mapping[str, Any], status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


class TencentInbound:
    """Verifies (``SdkAppid``, ``Sign``, freshness), parses and answers Tencent IM callbacks."""

    provider = NAME
    support = SUPPORT

    def __init__(
        self,
        *,
        sdk_app_id: int,
        token: str | None,
        max_age: float = webhooks.DEFAULT_MAX_AGE,
        insecure_skip_verification: bool = False,
    ) -> None:
        # The rules of WebhookVerifier: an empty token signs anything; no token needs an explicit opt-out.
        if token == "" or (token is not None and not isinstance(token, str)):
            raise ConfigurationError("the Tencent callback token is empty: an empty token signs anything")
        if token is None and not insecure_skip_verification:
            raise ConfigurationError(
                "no Tencent callback token (IMBRIDGE_TENCENT_CALLBACK_TOKEN): set the token configured in the "
                "console, or insecure_skip_verification=True to accept unsigned callbacks from anyone"
            )
        self._sdk_app_id = str(sdk_app_id)
        self._token = token
        self._max_age = max_age

    def verify(self, request: InboundRequest, now: float) -> None:
        if request.method.upper() != "POST":
            raise forged("method", "callbacks are POSTed", provider=NAME, status=405)
        if str(request.query.get("SdkAppid", "")) != self._sdk_app_id:
            raise forged("wrong_app", "webhook is for another SdkAppid", provider=NAME, status=403)
        if self._token is None:
            return
        request_time, sign = request.query.get("RequestTime"), request.query.get("Sign")
        if not request_time or not sign:
            raise forged("unsigned", "webhook is not signed", provider=NAME)
        # Replays inside the window are caught by the receiver's deduplication of what they report.
        webhooks.verify_sign(self._token, request_time, sign, now=now, max_age=self._max_age)

    def parse(self, request: InboundRequest, received_at: datetime, limits: Limits) -> Delivery:
        command = request.query.get("CallbackCommand")
        event = webhooks.parse_event(request.body, command if isinstance(command, str) else None, limits=limits)
        if isinstance(event, webhooks.C2CBeforeSendMsg | webhooks.GroupBeforeSendMsg):
            return Delivery(pending=pending_message(event, received_at))
        return Delivery(events=tuple(to_events(event, request.query.get("OptPlatform"), received_at)))

    def acknowledge(self) -> Reply:
        return Reply(200, webhooks.ack_body())

    def answer(self, pending: MessageSending, decision: Decision) -> Reply:
        if isinstance(decision, Allow):
            return Reply(200, webhooks.ack_body(), decision=decision)
        if isinstance(decision, Refuse):
            one_to_one = pending.conversation.kind is ConversationKind.USER
            low, high = C2C_REFUSE_CODES if one_to_one else GROUP_REFUSE_CODES
            # An out-of-range code would not refuse as meant: the first app code refuses and shows the reason.
            code = decision.code if decision.code == 1 or (decision.code and low <= decision.code <= high) else low
            return _json({"ActionStatus": "OK", "ErrorInfo": decision.reason, "ErrorCode": code})
        payload: dict[str, Any] = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
                   "MsgBody": [mapping.element_to_wire(element) for element in decision.content]}  # fmt: skip
        if decision.metadata is not None:
            payload["CloudCustomData"] = json.dumps(decision.metadata, ensure_ascii=False, separators=(",", ":"))
        return _json(payload)

    def refuse(self, error: IMBridgeError, status: int) -> Reply:
        message = error.message if isinstance(error, IMBridgeError) else "refused"
        return _json({"ActionStatus": "FAIL", "ErrorInfo": message[:200], "ErrorCode": 1}, status)
