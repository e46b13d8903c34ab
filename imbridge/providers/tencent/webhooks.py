"""Tencent IM third-party callbacks (webhooks): verify, guard against replays, parse into typed events.

``Sign = sha256_hex(Token + RequestTime)`` (overview page, https://www.tencentcloud.com/document/product/1047/34354).
Note what it does not cover: the body and the command. Any callback of the same second carries the same
Sign, so the signature proves only that the sender knows the token and when it signed; pair it with HTTPS,
the ``SdkAppid`` check and the replay guard (or the event receiver's deduplication, which keys on what the
body says happened).

These are Tencent's own shapes; :mod:`imbridge.events` maps them onto the neutral events. Every command
modelled here has its official example in ``tests/fixtures/tencent/official/webhook_<command>.json``.
Everything that arrives is treated as hostile: parsing fails only with :class:`InvalidRequestError`,
within the bounds of :class:`imbridge._inbound.Limits`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbridge._inbound import Limits, forged, load_json, malformed, millis, seconds
from imbridge.errors import ConfigurationError, InvalidRequestError
from imbridge.models import Element, Message
from imbridge.models.conversation import Conversation, ConversationKind
from imbridge.providers.tencent import mapping, wire

if TYPE_CHECKING:
    from imbridge.events.dedupe import DedupeStore

__all__ = [
    "ACK",
    "C2CAfterMsgWithDraw",
    "C2CAfterSendMsg",
    "C2CBeforeSendMsg",
    "GroupAfterCreateGroup",
    "GroupAfterGroupDestroyed",
    "GroupAfterGroupInfoChanged",
    "GroupAfterRecallMsg",
    "GroupAfterSendMsg",
    "GroupBeforeSendMsg",
    "GroupMemberExit",
    "GroupNewMemberJoin",
    "PortraitSet",
    "ReplayGuard",
    "StateChange",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookVerifier",
    "ack_body",
    "check_request_time",
    "compute_sign",
    "parse_event",
    "verify_sign",
]

ACK: dict[str, Any] = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
"""The reply Tencent expects (HTTP 200, within 2 s)."""

DEFAULT_MAX_AGE = 60
"""Seconds a RequestTime may differ from now (the 1-minute window Tencent's LiveKit page states)."""

_NAME = mapping.NAME


def ack_body() -> bytes:
    return b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'


def compute_sign(token: str, request_time: str | int) -> str:
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def check_request_time(request_time: object) -> int:
    """RequestTime as an integer: Unix seconds, so at most 12 digits (AuthenticationError otherwise)."""
    text = str(request_time)
    if not (0 < len(text) <= 12 and text.isascii() and text.isdigit()):
        raise forged("bad_request_time", "webhook RequestTime is not a Unix time in seconds", provider=_NAME)
    return int(text)


def verify_sign(
    token: str, request_time: str | int, sign: str, *, now: float | None = None, max_age: float = DEFAULT_MAX_AGE
) -> None:
    """Raise AuthenticationError unless ``sign`` is the callback signature and ``request_time`` is fresh."""
    if not token:
        raise ConfigurationError("the Tencent callback token is empty: an empty token signs anything")
    sent = check_request_time(request_time)
    current = time.time() if now is None else now
    if abs(current - sent) > max_age:
        raise forged("stale", "webhook RequestTime is outside the accepted window", provider=_NAME)
    expected = compute_sign(token, sent)
    received = str(sign).strip().lower()
    matches = hmac.compare_digest(expected.encode(), received.encode("utf-8", "replace"))
    if len(received) != len(expected) or not matches:
        raise forged("bad_sign", "webhook Sign does not match", provider=_NAME)


class ReplayGuard:
    """Refuses a callback seen before inside the freshness window.

    The key is RequestTime + Sign + a hash of the body: several genuine callbacks share a Sign within
    one second, so the Sign alone cannot identify a request. Claims live in a :class:`DedupeStore`:
    in this process by default; give every worker the same database-backed store so that a replay
    sent to a second worker is refused too.
    """

    def __init__(self, window: float = DEFAULT_MAX_AGE, store: DedupeStore | None = None) -> None:
        from imbridge.events.dedupe import MemoryDedupeStore

        self._window = window
        self._store: DedupeStore = store if store is not None else MemoryDedupeStore()

    def check(self, request_time: int, sign: str, body: bytes, *, now: float | None = None) -> None:
        current = time.time() if now is None else now
        key = f"tencent-replay:{request_time}:{sign}:{hashlib.sha256(body).hexdigest()}"
        # A request stays acceptable for max_age on either side of its RequestTime: guard twice that.
        if not self._store.claim(key, ttl=2 * self._window, now=current):
            raise forged("replayed", "webhook replayed", provider=_NAME)


# -- events ---------------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    command: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class C2CAfterSendMsg(_Event):
    command: Literal["C2C.CallbackAfterSendMsg"] = "C2C.CallbackAfterSendMsg"
    sender: str
    recipient: str
    msg_key: str
    time: datetime
    delivered: bool
    unread: int | None = None
    elements: list[Element]
    metadata: dict[str, Any] = Field(default_factory=dict)

    def message(self) -> Message:
        """The callback as a normalized Message (the conversation as the sender sees it)."""
        return Message(
            ref=mapping.c2c_ref(self.sender, self.recipient, self.msg_key), sender=self.sender,
            conversation=_conversation(ConversationKind.USER, self.recipient), elements=self.elements,
            time=self.time, metadata=self.metadata, provider=_NAME, raw=self.raw,
        )  # fmt: skip


class C2CBeforeSendMsg(_Event):
    """``C2C.CallbackBeforeSendMsg`` (/1047/34364): the message before delivery; the answer decides."""

    command: Literal["C2C.CallbackBeforeSendMsg"] = "C2C.CallbackBeforeSendMsg"
    sender: str
    recipient: str
    msg_key: str = ""
    time: datetime | None = None
    elements: list[Element]
    metadata: dict[str, Any] = Field(default_factory=dict)


class GroupAfterSendMsg(_Event):
    command: Literal["Group.CallbackAfterSendMsg"] = "Group.CallbackAfterSendMsg"
    group_id: str
    group_type: str | None = None
    sender: str
    operator: str | None = None
    seq: int
    time: datetime
    elements: list[Element]
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_time: datetime | None = None

    def message(self) -> Message:
        return Message(
            ref=mapping.group_ref(self.group_id, self.sender, self.seq), sender=self.sender,
            conversation=_conversation(ConversationKind.GROUP, self.group_id), elements=self.elements,
            time=self.time, seq=self.seq, metadata=self.metadata, provider=_NAME, raw=self.raw,
        )  # fmt: skip


class GroupBeforeSendMsg(_Event):
    """``Group.CallbackBeforeSendMsg`` (/1047/34374): the message before delivery; the answer decides."""

    command: Literal["Group.CallbackBeforeSendMsg"] = "Group.CallbackBeforeSendMsg"
    group_id: str
    group_type: str | None = None
    sender: str
    operator: str | None = None
    random: int | None = None
    elements: list[Element]
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_time: datetime | None = None


class C2CAfterMsgWithDraw(_Event):
    """``C2C.CallbackAfterMsgWithDraw`` (/1047/43466). It carries no time."""

    command: Literal["C2C.CallbackAfterMsgWithDraw"] = "C2C.CallbackAfterMsgWithDraw"
    sender: str
    recipient: str
    msg_key: str
    unread: int | None = None


class GroupAfterRecallMsg(_Event):
    """``Group.CallbackAfterRecallMsg`` (/1047/46979): the recalled MsgSeqs, not their senders."""

    command: Literal["Group.CallbackAfterRecallMsg"] = "Group.CallbackAfterRecallMsg"
    group_id: str
    group_type: str | None = None
    operator: str | None = None
    seqs: list[int]
    event_time: datetime | None = None


class GroupNewMemberJoin(_Event):
    command: Literal["Group.CallbackAfterNewMemberJoin"] = "Group.CallbackAfterNewMemberJoin"
    group_id: str
    group_type: str | None = None
    join_type: str | None = None
    operator: str | None = None
    members: list[str]
    event_time: datetime | None = None


class GroupMemberExit(_Event):
    command: Literal["Group.CallbackAfterMemberExit"] = "Group.CallbackAfterMemberExit"
    group_id: str
    group_type: str | None = None
    exit_type: str | None = None
    operator: str | None = None
    members: list[str]
    event_time: datetime | None = None


class GroupAfterCreateGroup(_Event):
    """``Group.CallbackAfterCreateGroup`` (/1047/34369)."""

    command: Literal["Group.CallbackAfterCreateGroup"] = "Group.CallbackAfterCreateGroup"
    group_id: str
    group_type: str | None = None
    name: str | None = None
    owner: str | None = None
    operator: str | None = None
    members: list[str] = Field(default_factory=list)
    event_time: datetime | None = None


class GroupAfterGroupDestroyed(_Event):
    """``Group.CallbackAfterGroupDestroyed`` (/1047/34377)."""

    command: Literal["Group.CallbackAfterGroupDestroyed"] = "Group.CallbackAfterGroupDestroyed"
    group_id: str
    group_type: str | None = None
    name: str | None = None
    owner: str | None = None
    members: list[str] = Field(default_factory=list)
    event_time: datetime | None = None


class GroupAfterGroupInfoChanged(_Event):
    """``Group.CallbackAfterGroupInfoChanged`` (/1047/34378): only the fields that changed are present."""

    command: Literal["Group.CallbackAfterGroupInfoChanged"] = "Group.CallbackAfterGroupInfoChanged"
    group_id: str
    group_type: str | None = None
    operator: str | None = None
    changes: dict[str, str]
    """Tencent field name (``Name``, ``Introduction``, ``Notification``, ``FaceUrl``) -> new value."""
    event_time: datetime | None = None


class PortraitSet(_Event):
    """``Profile.CallbackPortraitSet`` (/1047/48733): the profile tags that were set."""

    command: Literal["Profile.CallbackPortraitSet"] = "Profile.CallbackPortraitSet"
    user_id: str
    operator: str | None = None
    items: dict[str, str | int]
    event_time: datetime | None = None


class StateChange(_Event):
    command: Literal["State.StateChange"] = "State.StateChange"
    user_id: str
    action: str
    reason: str | None = None
    kicked_platforms: list[str] = Field(default_factory=list)
    event_time: datetime | None = None


class UnknownEvent(_Event):
    """A command imbridge does not model yet: the payload is in ``raw``."""


WebhookEvent = (
    C2CAfterSendMsg | C2CBeforeSendMsg | C2CAfterMsgWithDraw | GroupAfterSendMsg | GroupBeforeSendMsg
    | GroupAfterRecallMsg | GroupNewMemberJoin | GroupMemberExit | GroupAfterCreateGroup | GroupAfterGroupDestroyed
    | GroupAfterGroupInfoChanged | PortraitSet | StateChange | UnknownEvent
)  # fmt: skip

#: Group profile fields of ``Group.CallbackAfterGroupInfoChanged``.
GROUP_INFO_FIELDS = ("Name", "Introduction", "Notification", "FaceUrl")


def _conversation(kind: ConversationKind, ident: str) -> Conversation:
    # Ids the vendor reports are taken as they are: an event must not be lost to imbridge's stricter send checks.
    return Conversation(kind=kind, id=ident)


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise KeyError(name)
    return value


def _elements(body: Mapping[str, Any]) -> list[Element]:
    items = body.get("MsgBody")
    if not isinstance(items, list):
        raise KeyError("MsgBody")
    return [mapping.element_from_wire(wire.MsgElement.model_validate(e)) for e in items]


def _accounts(items: Any) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise TypeError("member list is not an array")
    accounts = []
    for item in items:
        account = item.get("Member_Account") if isinstance(item, dict) else None
        if not isinstance(account, str) or not account:
            raise TypeError("member entry without a Member_Account string")
        accounts.append(account)
    return accounts


def _metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    cloud = body.get("CloudCustomData", "")
    if not isinstance(cloud, str):
        raise TypeError("CloudCustomData is not a string")
    return mapping.metadata_from(cloud)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is not an integer")
    return value


def _optional_int(value: Any, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _event_time(body: Mapping[str, Any]) -> datetime | None:
    # EventTime is milliseconds, printed as a string in some samples and a number in others.
    return millis(body.get("EventTime"), "EventTime", provider=_NAME)


def _parse(name: str, body: dict[str, Any]) -> WebhookEvent:
    text, event_time = _text, _event_time
    match name:
        case "C2C.CallbackAfterSendMsg":
            result = body.get("SendMsgResult", 0)
            return C2CAfterSendMsg(
                sender=text(body, "From_Account"), recipient=text(body, "To_Account"), msg_key=text(body, "MsgKey"),
                time=seconds(body.get("MsgTime"), "MsgTime", provider=_NAME),
                delivered=_int(result, "SendMsgResult") == 0, unread=_optional_int(body.get("UnreadMsgNum"), "Unread"),
                elements=_elements(body), metadata=_metadata(body), raw=body,
            )  # fmt: skip
        case "C2C.CallbackBeforeSendMsg":
            sent_at = body.get("MsgTime")
            return C2CBeforeSendMsg(
                sender=text(body, "From_Account"), recipient=text(body, "To_Account"),
                msg_key=text(body, "MsgKey", required=False) or "",
                time=None if sent_at is None else seconds(sent_at, "MsgTime", provider=_NAME),
                elements=_elements(body), metadata=_metadata(body), raw=body,
            )  # fmt: skip
        case "C2C.CallbackAfterMsgWithDraw":
            return C2CAfterMsgWithDraw(
                sender=text(body, "From_Account"), recipient=text(body, "To_Account"), msg_key=text(body, "MsgKey"),
                unread=_optional_int(body.get("UnreadMsgNum"), "UnreadMsgNum"), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterSendMsg":
            return GroupAfterSendMsg(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                sender=text(body, "From_Account"), operator=text(body, "Operator_Account", required=False),
                seq=_int(body.get("MsgSeq"), "MsgSeq"), time=seconds(body.get("MsgTime"), "MsgTime", provider=_NAME),
                elements=_elements(body), metadata=_metadata(body), event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackBeforeSendMsg":
            return GroupBeforeSendMsg(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                sender=text(body, "From_Account"), operator=text(body, "Operator_Account", required=False),
                random=_optional_int(body.get("Random"), "Random"), elements=_elements(body),
                metadata=_metadata(body), event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterRecallMsg":
            items = body.get("MsgSeqList")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise TypeError("MsgSeqList is not an array of objects")
            return GroupAfterRecallMsg(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                operator=text(body, "Operator_Account", required=False),
                seqs=[_int(item.get("MsgSeq"), "MsgSeq") for item in items], event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterNewMemberJoin":
            return GroupNewMemberJoin(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                join_type=text(body, "JoinType", required=False),
                operator=text(body, "Operator_Account", required=False), members=_accounts(body.get("NewMemberList")),
                event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterMemberExit":
            return GroupMemberExit(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                exit_type=text(body, "ExitType", required=False),
                operator=text(body, "Operator_Account", required=False), members=_accounts(body.get("ExitMemberList")),
                event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterCreateGroup":
            return GroupAfterCreateGroup(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                name=text(body, "Name", required=False), owner=text(body, "Owner_Account", required=False),
                operator=text(body, "Operator_Account", required=False), members=_accounts(body.get("MemberList")),
                event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterGroupDestroyed":
            return GroupAfterGroupDestroyed(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                name=text(body, "Name", required=False), owner=text(body, "Owner_Account", required=False),
                members=_accounts(body.get("MemberList")), event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Group.CallbackAfterGroupInfoChanged":
            changes = {}
            for field in GROUP_INFO_FIELDS:
                value = text(body, field, required=False)
                if value is not None:
                    changes[field] = value
            return GroupAfterGroupInfoChanged(
                group_id=text(body, "GroupId"), group_type=text(body, "Type", required=False),
                operator=text(body, "Operator_Account", required=False), changes=changes,
                event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "Profile.CallbackPortraitSet":
            items = body.get("ProfileItem")
            if not isinstance(items, list):
                raise TypeError("ProfileItem is not an array")
            tags: dict[str, str | int] = {}
            for item in items:
                tag, value = (item.get("Tag"), item.get("Value")) if isinstance(item, dict) else (None, None)
                if not isinstance(tag, str) or isinstance(value, bool) or not isinstance(value, str | int):
                    raise TypeError("ProfileItem entry without a Tag and a string or integer Value")
                tags[tag] = value
            return PortraitSet(
                user_id=text(body, "From_Account"), operator=text(body, "Operator_Account", required=False),
                items=tags, event_time=event_time(body), raw=body,
            )  # fmt: skip
        case "State.StateChange":
            info = body.get("Info")
            if not isinstance(info, dict):
                raise KeyError("Info")
            kicked = body.get("KickedDevice") or []
            if not isinstance(kicked, list) or not all(isinstance(d, dict) for d in kicked):
                raise TypeError("KickedDevice is not an array of objects")
            return StateChange(
                user_id=text(info, "To_Account"), action=text(info, "Action"),
                reason=text(info, "Reason", required=False),
                kicked_platforms=[str(d.get("Platform")) for d in kicked],
                event_time=event_time(body), raw=body,
            )  # fmt: skip
    return UnknownEvent(command=name, raw=body)


def parse_event(
    payload: bytes | str | Mapping[str, Any], command: str | None = None, *, limits: Limits | None = None
) -> WebhookEvent:
    """A callback body as a typed event. ``command`` (the query's CallbackCommand) wins over the body's.

    Raises InvalidRequestError (never another exception) for a body that is not a JSON object or does
    not have the documented shape of its command; an unmodelled command is an :class:`UnknownEvent`.
    """
    if isinstance(payload, Mapping):
        body: Any = dict(payload)
    else:
        raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
        body = load_json(raw, limits or Limits(), provider=_NAME)
    if not isinstance(body, dict):
        raise malformed("not_an_object", "webhook body is not a JSON object", provider=_NAME)
    given = command if command is not None else body.get("CallbackCommand", "")
    if not isinstance(given, str):
        raise malformed("malformed", "CallbackCommand is not a string", provider=_NAME)
    name = given[:100]
    try:
        return _parse(name, body)
    except InvalidRequestError:
        raise
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        what = exc.args[0] if isinstance(exc, KeyError) and exc.args else type(exc).__name__
        raise malformed("malformed", f"malformed {name} callback: {str(what)[:80]}", provider=_NAME) from None


class WebhookVerifier:
    """Everything a callback endpoint checks, in one call: app id, Sign, freshness, replay; then parse.

    >>> verifier = WebhookVerifier(token="…", sdk_app_id=1400000000)
    >>> event = verifier.handle(dict(request.query), request.body)   # raises AuthenticationError
    >>> return ack_body()

    An empty token is refused (it would sign anything). ``token=None`` turns the signature check off only
    with ``insecure_skip_verification=True`` (for a console where authentication is not enabled), with a
    warning. Give every worker the same ``store`` to refuse replays across workers.
    """

    def __init__(
        self,
        token: str | None,
        sdk_app_id: int,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        guard: ReplayGuard | None = None,
        store: DedupeStore | None = None,
        insecure_skip_verification: bool = False,
        limits: Limits | None = None,
    ) -> None:
        if token is not None and not isinstance(token, str):
            raise ConfigurationError("the Tencent callback token must be a string")
        if token == "":
            raise ConfigurationError("the Tencent callback token is empty: an empty token signs anything")
        if token is None:
            if not insecure_skip_verification:
                raise ConfigurationError(
                    "no Tencent callback token: pass the token configured in the console, or "
                    "insecure_skip_verification=True to accept unsigned callbacks from anyone"
                )
            warnings.warn(
                "Tencent callback signatures are NOT verified (insecure_skip_verification=True): anyone who "
                "can reach this endpoint can forge callbacks",
                stacklevel=2,
            )
        self._token = token
        self._sdk_app_id = sdk_app_id
        self._max_age = max_age
        self._guard = guard or ReplayGuard(max_age, store)
        self._limits = limits or Limits()

    def verify(self, query: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        """The checks alone: AuthenticationError unless the request is for this app, signed, fresh and new."""
        if str(query.get("SdkAppid", "")) != str(self._sdk_app_id):
            raise forged("wrong_app", "webhook is for another SdkAppid", provider=_NAME, status=403)
        if self._token is not None:
            request_time, sign = query.get("RequestTime"), query.get("Sign")
            if not request_time or not sign:
                raise forged("unsigned", "webhook is not signed", provider=_NAME)
            verify_sign(self._token, request_time, sign, now=now, max_age=self._max_age)
            self._guard.check(check_request_time(request_time), sign, body, now=now)

    def handle(self, query: Mapping[str, str], body: bytes, *, now: float | None = None) -> WebhookEvent:
        self.verify(query, body, now=now)
        command = query.get("CallbackCommand")
        return parse_event(body, command if isinstance(command, str) else None, limits=self._limits)

    def __repr__(self) -> str:
        return f"WebhookVerifier(sdk_app_id={self._sdk_app_id}, max_age={self._max_age})"
