"""WuKongIM v2.2.5 webhooks as neutral events, and the answer WuKongIM expects (the inbound adapter).

WuKongIM POSTs ``{webhook.httpAddr}?event=<name>`` with a JSON body and treats any status but 200 as a
failure (``internal/webhook/webhook.go:620-637`` at tag v2.2.5-20260422): ``msg.notify`` batches are
retried up to ``msgNotifyEventRetryMaxCount`` times (default 5) and then dropped (``webhook.go:527-546``),
``user.onlinestatus`` likewise (``webhook.go:594-609``), ``msg.offline`` is sent once (``webhook.go:201-226``).

**WuKongIM signs nothing.** This adapter accepts a request only when the last segment of its path is the
receiver's secret (compared in constant time): configure ``webhook.httpAddr`` as
``http://<receiver>/<anything>/<secret>``. The receiver can also allowlist the WuKongIM nodes' addresses.

Mapping: every stored message of ``msg.notify`` is a :class:`MessageCreated` with the same reference an
imbridge send returned, except payloads of WuKongIM's own convention (``docs/design/protocol.md``) for
notices: a revoke (type 1006, how imbridge revokes) is a :class:`MessageRevoked`; group notices 1001
(created), 1002 (members added), 1003 (member removed) and 1005 (profile changed) are group events.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from imbridge._inbound import Limits, forged, seconds
from imbridge.capabilities import Support
from imbridge.errors import ConfigurationError, IMBridgeError
from imbridge.events.base import Delivery, EventSupport, InboundRequest, Reply
from imbridge.events.models import (
    Decision,
    DeviceKind,
    Event,
    GroupCreated,
    GroupUpdated,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    MessageRevoked,
    MessageSending,
    RecipientsOffline,
    UnknownEvent,
    UserOffline,
    UserOnline,
    build,
)
from imbridge.models import Message, MessageRef
from imbridge.models._build import prevalidated
from imbridge.models.conversation import Conversation, ConversationKind
from imbridge.providers.wukong import mapping, webhooks, wire

NAME = mapping.NAME

MIN_SECRET_LENGTH = 16
"""The shortest path secret accepted (it is the only thing that authenticates a WuKongIM webhook)."""

#: WuKongIM device flags (WuKongIMGoProto DeviceFlag: APP 0, WEB 1, PC 2) -> neutral device kinds.
DEVICE_FLAGS = {0: DeviceKind.APP, 1: DeviceKind.WEB, 2: DeviceKind.DESKTOP}

NOTICE_GROUP_CREATED = 1001
NOTICE_MEMBERS_ADDED = 1002
NOTICE_MEMBERS_REMOVED = 1003
NOTICE_GROUP_UPDATED = 1005
NOTICE_KICKED = 1010

_SOURCE = "internal/webhook/webhook.go at v2.2.5-20260422"
SUPPORT: dict[str, EventSupport] = {
    "message.created": EventSupport(
        Support.NATIVE,
        f"msg.notify: every stored message (REST, imbridge or client SDK), batched, retried ({_SOURCE}:305-560)",
    ),
    "message.revoked": EventSupport(
        Support.EMULATED,
        "from the revoke notice (payload type 1006) that imbridge's revoke stores, or any client following "
        "WuKongIM's payload convention; WuKongIM itself has no revoke",
    ),
    "member.joined": EventSupport(
        Support.PARTIAL,
        "only from group-notice messages of WuKongIM's payload convention (type 1002) that the app or its "
        "clients send; WuKongIM reports no subscriber change by webhook, and imbridge sends no notice",
    ),
    "member.left": EventSupport(
        Support.PARTIAL, "only from convention notices (type 1003); WuKongIM reports no subscriber change"
    ),
    "group.created": EventSupport(
        Support.PARTIAL, "only from convention notices (type 1001); WuKongIM reports no channel change"
    ),
    "group.dismissed": EventSupport(
        Support.UNSUPPORTED, "WuKongIM reports no channel change, and its convention has no dismiss notice"
    ),
    "group.updated": EventSupport(
        Support.PARTIAL, "only from convention notices (type 1005), whose new values are in the notice's text only"
    ),
    "user.online": EventSupport(Support.NATIVE, f"user.onlinestatus, per connection ({_SOURCE}:180-198, 563-618)"),
    "user.offline": EventSupport(Support.NATIVE, f"user.onlinestatus, per connection ({_SOURCE}:180-198, 563-618)"),
    "profile.updated": EventSupport(Support.UNSUPPORTED, "WuKongIM keeps no profiles (imbridge's store does)"),
    "message.recipients_offline": EventSupport(
        Support.NATIVE, f"msg.offline: recipients with no master device online, sent once ({_SOURCE}:228-289)"
    ),
    "before_send": EventSupport(
        Support.EMULATED,
        "WuKongIM v2.2.5 has no before-send hook: IMClient(before_send=policy) applies the policy to each "
        "messages.send made through that client, before any request (send_batch is not asked, as Tencent's "
        "batchsendmsg is not); messages client SDKs send reach WuKongIM directly and are not covered",
    ),
}


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


_KINDS = {wire.PERSON: ConversationKind.USER, wire.GROUP: ConversationKind.GROUP}


def _conversation(message: webhooks.WebhookMessage) -> Conversation | None:
    # MessageResp.From renders a person channel as the recipient (internal/types/message.go:81-92).
    kind = _KINDS.get(message.channel_type)
    return None if kind is None else build(Conversation, kind=kind, id=message.channel_id)


_CREATED_FIELDS = {"provider", "event_id", "occurred_at", "received_at", "raw", "message"}
_REF_FIELDS = {"provider", "conversation", "sender", "key", "seq", "extra"}
_MESSAGE_FIELDS = {"ref", "sender", "conversation", "elements", "time", "seq", "metadata", "provider", "raw"}
_CONVERSATION_FIELDS = {"kind", "id"}


def message_of(
    message: webhooks.WebhookMessage, payload: dict[str, Any] | None, raw: dict[str, Any], time: datetime
) -> Message | None:
    """The neutral message (its ref as an imbridge send of it returned), or None for other channel types.

    Built from the wire model's checked fields without validating them again, every field named in
    declaration order (as the send path builds its results): this runs for every message of every batch.
    ``tests/events/test_events_wukong_recorded.py`` builds the same through the validating constructors."""
    kind = _KINDS.get(message.channel_type)
    if kind is None:
        return None
    conversation = prevalidated(Conversation, {"kind": kind, "id": message.channel_id}, _CONVERSATION_FIELDS)
    sender, seq = message.sender, message.message_seq or None
    ref = prevalidated(MessageRef, {
        "provider": NAME, "conversation": conversation, "sender": sender, "key": str(message.message_id),
        "seq": seq, "extra": {"client_msg_no": message.client_msg_no},
    }, _REF_FIELDS)  # fmt: skip
    return prevalidated(Message, {
        "ref": ref, "sender": sender, "conversation": conversation,
        "elements": mapping.payload_to_elements(payload, message.payload), "time": time, "seq": seq,
        "revoked": False, "metadata": mapping.payload_metadata(payload), "provider": NAME, "raw": raw,
    }, _MESSAGE_FIELDS)  # fmt: skip


def _uids(payload: dict[str, Any]) -> list[str]:
    extra = payload.get("extra")
    if not isinstance(extra, list):
        return []
    return [item["uid"] for item in extra if isinstance(item, dict) and isinstance(item.get("uid"), str)]


def _notice_events(
    message: webhooks.WebhookMessage, payload: dict[str, Any], common: dict[str, Any]
) -> list[Event] | None:
    """The group events a convention notice reports (None when the payload is not one)."""
    kind = payload.get("type")
    if message.channel_type != wire.GROUP or kind not in (
        NOTICE_GROUP_CREATED, NOTICE_MEMBERS_ADDED, NOTICE_MEMBERS_REMOVED, NOTICE_GROUP_UPDATED,
    ):  # fmt: skip
        return None
    group_id, uids = message.channel_id, _uids(payload)
    base = f"wukong:notice:{message.message_id}"
    operator = uids[0] if uids else None
    if kind == NOTICE_GROUP_CREATED:
        creator = payload.get("creator") if isinstance(payload.get("creator"), str) else operator
        return [GroupCreated(**common, event_id=base, group_id=group_id, owner=creator, operator=creator,
                             members=uids)]  # fmt: skip
    if kind == NOTICE_GROUP_UPDATED:
        return [GroupUpdated(**common, event_id=base, group_id=group_id, operator=operator)]
    event_class = MemberJoined if kind == NOTICE_MEMBERS_ADDED else MemberLeft
    how = "invited" if kind == NOTICE_MEMBERS_ADDED else "removed"
    return [
        event_class(**common, event_id=f"{base}:{uid}", group_id=group_id, user_id=uid, operator=operator, how=how)
        for uid in uids[1:]
    ]


def _notice_conversation(message: webhooks.WebhookMessage, details: object) -> Conversation | None:
    """The conversation a revoke notice is about.

    The notice sits in the command twin (``sync_once``), whose id the server renders less usefully: a group's
    as ``<group>____cmd``, a person channel's as ``<peer>____cmd`` or, when the sender's id comes last in the
    stored ``a@b____cmd``, as ``<sender>____cmd`` (``MessageResp.From``, internal/types/message.go:68-77), as
    the real server POSTed them (tests/fixtures/wukong/webhooks/recording.json: ``<sender>____cmd`` and
    ``<group>____cmd``, ``sync_once: 1``). imbridge's notice names the conversation; that name is taken only
    where it agrees with the channel."""
    kind = _KINDS.get(message.channel_type)
    if kind is None:
        return None
    shown = message.channel_id.removesuffix(wire.CMD_SUFFIX)
    if isinstance(details, dict) and details.get("channel_type") == message.channel_type:
        named = details.get("channel_id")
        agrees = named == shown or (kind is ConversationKind.USER and shown == message.sender)
        if isinstance(named, str) and named and agrees:
            return build(Conversation, kind=kind, id=named)
    return build(Conversation, kind=kind, id=shown)


def _revoked(message: webhooks.WebhookMessage, payload: dict[str, Any], target: str, common: dict[str, Any]) -> Event:
    own = payload.get(mapping.IMBRIDGE_KEY)
    details = own.get("revoke") if isinstance(own, dict) else None
    conversation = _notice_conversation(message, details)
    if conversation is None:
        return UnknownEvent(**common, event_id=f"wukong:msg:{message.message_id}", name=webhooks.MSG_NOTIFY,
                            detail=f"revoke notice on channel type {message.channel_type}")  # fmt: skip
    ref = None
    seq: int | None = None
    sender: str | None = None
    if isinstance(details, dict):
        # imbridge's revoke stores the notice as the original sender, with the target's seq and client_msg_no.
        raw_seq, client_msg_no = details.get("message_seq"), details.get("client_msg_no")
        seq = raw_seq if isinstance(raw_seq, int) and not isinstance(raw_seq, bool) and raw_seq > 0 else None
        sender = message.sender
        if isinstance(client_msg_no, str):
            ref = MessageRef(provider=NAME, conversation=conversation, sender=sender, key=target, seq=seq,
                             extra={"client_msg_no": client_msg_no})  # fmt: skip
    return MessageRevoked(
        **common, event_id=f"wukong:revoke:{target}", conversation=conversation, key=target, seq=seq,
        sender=sender, revoked_by=message.sender, ref=ref,
    )  # fmt: skip


def notify_events(event: webhooks.MessageNotifyEvent, received_at: datetime) -> list[Event]:
    events: list[Event] = []
    for message, raw in zip(event.messages, event.raw, strict=True):
        payload = mapping.decode_payload(message.payload)
        time = seconds(message.timestamp, "timestamp", provider=NAME)
        common: dict[str, Any] = {"provider": NAME, "received_at": received_at, "raw": raw, "occurred_at": time}
        target = mapping.revoked_target(payload)
        if payload is not None and target is not None:
            events.append(_revoked(message, payload, target, common))
            continue
        notices = _notice_events(message, payload, common) if payload is not None else None
        if notices is not None:
            events.extend(notices)
            continue
        built = message_of(message, payload, raw, time)
        if built is None:
            detail = f"channel type {message.channel_type}"
            events.append(UnknownEvent(**common, event_id=f"wukong:msg:{message.message_id}",
                                       name=webhooks.MSG_NOTIFY, detail=detail))  # fmt: skip
            continue
        events.append(prevalidated(MessageCreated, {
            "provider": NAME, "event_id": f"wukong:msg:{message.message_id}", "occurred_at": time,
            "received_at": received_at, "raw": raw, "kind": "message.created", "message": built,
        }, _CREATED_FIELDS))  # fmt: skip
    return events


def _online_events(event: webhooks.OnlineStatusEvent, received_at: datetime) -> list[Event]:
    events: list[Event] = []
    for change in event.changes:
        if change.device_flag == wire.SYSTEM_DEVICE_FLAG:
            continue  # imbridge's own JSON-RPC sending connections (jsonrpc.py), never the user coming online
        entry = (f"{change.uid}-{change.device_flag}-{int(change.online)}-{change.conn_id}-"
                 f"{change.device_online_count}-{change.total_online_count}")  # fmt: skip
        common: dict[str, Any] = {
            "provider": NAME, "received_at": received_at, "event_id": f"wukong:online:{entry}",
            "raw": {"entry": entry}, "user_id": change.uid, "device": DEVICE_FLAGS.get(change.device_flag,
            DeviceKind.UNKNOWN), "platform": str(change.device_flag),
        }  # fmt: skip
        events.append(UserOnline(**common) if change.online else UserOffline(**common))
    return events


def to_events(event: Any, body: bytes, received_at: datetime) -> list[Event]:
    if isinstance(event, webhooks.MessageNotifyEvent):
        return notify_events(event, received_at)
    if isinstance(event, webhooks.MessageOfflineEvent):
        message = event.message
        payload = mapping.decode_payload(message.payload)
        if mapping.revoked_target(payload) is not None:
            # The server offers a revoke notice for offline push like any message (the recording in
            # tests/fixtures/wukong/webhooks/); it is no new message, and msg.notify already reports the revoke.
            return []
        raw = message.model_dump()
        # This timestamp is the webhook's (webhook.go:280), not the message's.
        time = seconds(message.timestamp, "timestamp", provider=NAME)
        built = message_of(message, payload, raw, time)
        common: dict[str, Any] = {
            "provider": NAME, "received_at": received_at, "raw": raw, "occurred_at": time,
            "event_id": f"wukong:offline:{message.message_id}:{event.source_id}",
        }  # fmt: skip
        if built is None:
            return [UnknownEvent(**common, name=webhooks.MSG_OFFLINE, detail=f"channel type {message.channel_type}")]
        return [RecipientsOffline(**common, message=built, recipients=event.to_uids)]
    if isinstance(event, webhooks.OnlineStatusEvent):
        return _online_events(event, received_at)
    assert isinstance(event, webhooks.UnknownWebhook)
    raw = event.body if isinstance(event.body, dict) else {"body": event.body}
    return [UnknownEvent(provider=NAME, received_at=received_at, raw=raw, name=event.event,
                         event_id=f"wukong:unknown:{event.event}:{_digest(body)}")]  # fmt: skip


class WukongInbound:
    """Verifies (path secret), parses and answers WuKongIM webhooks."""

    provider = NAME
    support = SUPPORT

    def __init__(self, *, path_secret: str | None, insecure_skip_verification: bool = False) -> None:
        if path_secret is None:
            if not insecure_skip_verification:
                raise ConfigurationError(
                    "no WuKongIM webhook path secret (IMBRIDGE_WUKONG_WEBHOOK_SECRET): WuKongIM signs nothing, so "
                    "the secret in webhook.httpAddr is what tells its requests from forged ones; set one, or "
                    "insecure_skip_verification=True to accept requests from anyone who can reach the endpoint"
                )
        elif not isinstance(path_secret, str) or len(path_secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"the WuKongIM webhook path secret must be at least {MIN_SECRET_LENGTH} "
                                     "characters (make one with secrets.token_urlsafe(32))")  # fmt: skip
        elif "/" in path_secret or "?" in path_secret or "#" in path_secret:
            raise ConfigurationError("the WuKongIM webhook path secret is one path segment: no '/', '?' or '#'")
        self._secret = path_secret.encode() if path_secret is not None else None

    def verify(self, request: InboundRequest, now: float) -> None:
        if self._secret is not None:
            segment = request.path.rstrip("/").rsplit("/", 1)[-1]
            # Not found, as for any other path: a prober learns nothing about the endpoint.
            if not hmac.compare_digest(segment.encode("utf-8", "replace"), self._secret):
                raise forged("wrong_path_secret", "not found", provider=NAME, status=404)
        if request.method.upper() != "POST":
            raise forged("method", "webhooks are POSTed", provider=NAME, status=405)

    def parse(self, request: InboundRequest, received_at: datetime, limits: Limits) -> Delivery:
        name = request.query.get("event", "")
        event = webhooks.parse_webhook(name if isinstance(name, str) else "", request.body, limits=limits)
        return Delivery(events=tuple(to_events(event, request.body, received_at)))

    def acknowledge(self) -> Reply:
        return Reply(200, b"", {})

    def answer(self, pending: MessageSending, decision: Decision) -> Reply:  # pragma: no cover - never asked
        raise AssertionError("WuKongIM sends no before-send webhook")

    def refuse(self, error: IMBridgeError, status: int) -> Reply:
        text = "not found" if status == 404 else error.message[:200]
        return Reply(status, text.encode(), {"content-type": "text/plain; charset=utf-8"})
