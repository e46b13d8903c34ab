"""Tencent IM third-party callbacks (webhooks): verify, guard against replays, parse into typed events.

``Sign = sha256_hex(Token + RequestTime)``. Note what it does not cover: the body and the command.
Any callback of the same second carries the same Sign, so the signature proves only that the sender
knows the token and when it signed; pair it with HTTPS, the ``SdkAppid`` check and the replay guard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imbridge.errors import AuthenticationError, InvalidRequestError
from imbridge.models import Element, Message
from imbridge.models.conversation import Conversation
from imbridge.providers.tencent import mapping, wire

__all__ = [
    "ACK",
    "C2CAfterSendMsg",
    "GroupAfterSendMsg",
    "GroupMemberExit",
    "GroupNewMemberJoin",
    "ReplayGuard",
    "StateChange",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookVerifier",
    "ack_body",
    "compute_sign",
    "parse_event",
    "verify_sign",
]

ACK: dict[str, Any] = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
"""The reply Tencent expects (HTTP 200, within 2 s)."""

DEFAULT_MAX_AGE = 60
"""Seconds a RequestTime may differ from now (the 1-minute window Tencent's LiveKit page states)."""


def ack_body() -> bytes:
    return json.dumps(ACK, separators=(",", ":")).encode()


def compute_sign(token: str, request_time: str | int) -> str:
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def verify_sign(
    token: str, request_time: str | int, sign: str, *, now: float | None = None, max_age: float = DEFAULT_MAX_AGE
) -> None:
    """Raise AuthenticationError unless ``sign`` is the callback signature and ``request_time`` is fresh."""
    try:
        sent = int(str(request_time))
    except ValueError:
        raise AuthenticationError("webhook RequestTime is not a number", provider=mapping.NAME) from None
    current = time.time() if now is None else now
    if abs(current - sent) > max_age:
        raise AuthenticationError("webhook RequestTime is outside the accepted window", provider=mapping.NAME)
    expected = compute_sign(token, sent)
    if not hmac.compare_digest(expected.encode(), str(sign).strip().lower().encode()):
        raise AuthenticationError("webhook Sign does not match", provider=mapping.NAME)


class ReplayGuard:
    """Refuses a callback seen before inside the freshness window (thread-safe, bounded by the window).

    The key is RequestTime + Sign + a hash of the body: several genuine callbacks share a Sign within
    one second, so the Sign alone cannot identify a request.
    """

    def __init__(self, window: float = DEFAULT_MAX_AGE) -> None:
        self._window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, request_time: int, sign: str, body: bytes, *, now: float | None = None) -> None:
        current = time.time() if now is None else now
        key = f"{request_time}:{sign}:{hashlib.sha256(body).hexdigest()}"
        with self._lock:
            for old, seen_at in list(self._seen.items()):
                if current - seen_at > 2 * self._window:
                    del self._seen[old]
            if key in self._seen:
                raise AuthenticationError("webhook replayed", provider=mapping.NAME)
            self._seen[key] = current


# -- events ---------------------------------------------------------------------------------------


def _millis(value: Any) -> datetime | None:
    # EventTime is milliseconds, printed as a string in some samples and a number in others.
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)


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
            conversation=Conversation.user(self.recipient), elements=self.elements, time=self.time,
            metadata=self.metadata, provider=mapping.NAME, raw=self.raw,
        )  # fmt: skip


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
            conversation=Conversation.group(self.group_id), elements=self.elements, time=self.time, seq=self.seq,
            metadata=self.metadata, provider=mapping.NAME, raw=self.raw,
        )  # fmt: skip


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


class StateChange(_Event):
    command: Literal["State.StateChange"] = "State.StateChange"
    user_id: str
    action: str
    reason: str | None = None
    kicked_platforms: list[str] = Field(default_factory=list)
    event_time: datetime | None = None


class UnknownEvent(_Event):
    """A command imbridge does not model yet: the payload is in ``raw``."""


WebhookEvent = C2CAfterSendMsg | GroupAfterSendMsg | GroupNewMemberJoin | GroupMemberExit | StateChange | UnknownEvent


def _elements(body: dict[str, Any]) -> list[Element]:
    return [mapping.element_from_wire(wire.MsgElement.model_validate(e)) for e in body.get("MsgBody", [])]


def _accounts(items: Any) -> list[str]:
    return [str(item["Member_Account"]) for item in items or []]


def parse_event(payload: bytes | str | Mapping[str, Any], command: str | None = None) -> WebhookEvent:
    """A callback body as a typed event. ``command`` (the query's CallbackCommand) wins over the body's."""
    try:
        body: dict[str, Any] = dict(payload) if isinstance(payload, Mapping) else json.loads(payload)
    except ValueError:
        raise InvalidRequestError("webhook body is not JSON", provider=mapping.NAME) from None
    name = command or str(body.get("CallbackCommand", ""))
    try:
        match name:
            case "C2C.CallbackAfterSendMsg":
                return C2CAfterSendMsg(
                    sender=body["From_Account"], recipient=body["To_Account"], msg_key=body["MsgKey"],
                    time=datetime.fromtimestamp(int(body["MsgTime"]), UTC),
                    delivered=int(body.get("SendMsgResult", 0)) == 0, unread=body.get("UnreadMsgNum"),
                    elements=_elements(body), metadata=mapping.metadata_from(body.get("CloudCustomData", "")),
                    raw=body,
                )  # fmt: skip
            case "Group.CallbackAfterSendMsg":
                return GroupAfterSendMsg(
                    group_id=body["GroupId"], group_type=body.get("Type"), sender=body["From_Account"],
                    operator=body.get("Operator_Account"), seq=int(body["MsgSeq"]),
                    time=datetime.fromtimestamp(int(body["MsgTime"]), UTC), elements=_elements(body),
                    metadata=mapping.metadata_from(body.get("CloudCustomData", "")),
                    event_time=_millis(body.get("EventTime")), raw=body,
                )  # fmt: skip
            case "Group.CallbackAfterNewMemberJoin":
                return GroupNewMemberJoin(
                    group_id=body["GroupId"], group_type=body.get("Type"), join_type=body.get("JoinType"),
                    operator=body.get("Operator_Account"), members=_accounts(body.get("NewMemberList")),
                    event_time=_millis(body.get("EventTime")), raw=body,
                )  # fmt: skip
            case "Group.CallbackAfterMemberExit":
                return GroupMemberExit(
                    group_id=body["GroupId"], group_type=body.get("Type"), exit_type=body.get("ExitType"),
                    operator=body.get("Operator_Account"), members=_accounts(body.get("ExitMemberList")),
                    event_time=_millis(body.get("EventTime")), raw=body,
                )  # fmt: skip
            case "State.StateChange":
                info = body["Info"]
                return StateChange(
                    user_id=info["To_Account"], action=info["Action"], reason=info.get("Reason"),
                    kicked_platforms=[str(d.get("Platform")) for d in body.get("KickedDevice", [])],
                    event_time=_millis(body.get("EventTime")), raw=body,
                )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(f"malformed {name} callback: {type(exc).__name__}", provider=mapping.NAME) from None
    return UnknownEvent(command=name, raw=body)


class WebhookVerifier:
    """Everything a callback endpoint checks, in one call: app id, Sign, freshness, replay; then parse.

    >>> verifier = WebhookVerifier(token="…", sdk_app_id=1400000000)
    >>> event = verifier.handle(dict(request.query), request.body)   # raises AuthenticationError
    >>> return ack_body()
    """

    def __init__(
        self,
        token: str | None,
        sdk_app_id: int,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        guard: ReplayGuard | None = None,
    ) -> None:
        self._token = token
        self._sdk_app_id = sdk_app_id
        self._max_age = max_age
        self._guard = guard or ReplayGuard(max_age)

    def handle(self, query: Mapping[str, str], body: bytes, *, now: float | None = None) -> WebhookEvent:
        if str(query.get("SdkAppid", "")) != str(self._sdk_app_id):
            raise AuthenticationError("webhook is for another SdkAppid", provider=mapping.NAME)
        if self._token is not None:
            request_time, sign = query.get("RequestTime"), query.get("Sign")
            if not request_time or not sign:
                raise AuthenticationError("webhook is not signed", provider=mapping.NAME)
            verify_sign(self._token, request_time, sign, now=now, max_age=self._max_age)
            self._guard.check(int(request_time), sign, body, now=now)
        return parse_event(body, query.get("CallbackCommand"))

    def __repr__(self) -> str:
        return f"WebhookVerifier(sdk_app_id={self._sdk_app_id}, max_age={self._max_age})"
