"""The neutral inbound events: what happened on the IM service, whatever vendor reported it.

Every event carries ``provider``, an ``event_id`` that stays the same when the vendor delivers the same
event again (retries, replays: the receiver deduplicates on it), ``occurred_at`` (the vendor's time of
the event; None when its payload carries none), ``received_at`` (when imbridge parsed it) and ``raw``
(the vendor's payload for this event, never a signature or token). ``docs/events.md`` maps each vendor
callback onto these classes, with sources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from imbridge.models import Conversation, Element, Gender, Message, MessageRef, Text
from imbridge.models._build import prevalidated

M = TypeVar("M", bound=BaseModel)
_DEFAULTS: dict[type[BaseModel], list[tuple[str, Any, Callable[[], Any] | None]]] = {}


def build(model: type[M], **fields: Any) -> M:
    """``model`` from values already checked (a vendor payload its wire model validated, ids and times read by
    imbridge), without validating them again: a receiver builds several models per event, and pydantic's
    validation of them was most of its own time per delivery. Fields not given take their defaults; the
    fields are kept in declaration order (serialization follows it). Tests build the same events through the
    validating constructors and compare them, their dumps and their refs' strings."""
    order = _DEFAULTS.get(model)
    if order is None:
        order = _DEFAULTS[model] = [
            (name, info.default, cast(Callable[[], Any] | None, info.default_factory))
            for name, info in model.model_fields.items()
        ]
    values = {}
    for name, default, factory in order:
        if name in fields:
            values[name] = fields[name]
        else:
            values[name] = factory() if factory is not None else default
    return prevalidated(model, values, set(fields))


class DeviceKind(StrEnum):
    """The neutral kind of device a user connected from."""

    APP = "app"
    """A mobile or tablet app (Tencent Android/iOS/iPad, WuKongIM device flag 0)."""
    WEB = "web"
    """A browser (Tencent Web, WuKongIM device flag 1)."""
    DESKTOP = "desktop"
    """A desktop client (Tencent Windows/macOS, WuKongIM device flag 2)."""
    UNKNOWN = "unknown"
    """The vendor did not say, or said something imbridge does not know."""


class BaseEvent(BaseModel):
    """What every event carries."""

    model_config = ConfigDict(frozen=True)

    provider: str
    event_id: str
    """Stable across the vendor's re-deliveries of this event: the key the receiver deduplicates on."""
    occurred_at: datetime | None = None
    received_at: datetime
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class MessageCreated(BaseEvent):
    """A message was stored (sent by the server API, imbridge, or a client SDK)."""

    kind: Literal["message.created"] = "message.created"
    message: Message

    @property
    def ref(self) -> MessageRef:
        """The same reference an imbridge send of this message returned."""
        return self.message.ref


class MessageRevoked(BaseEvent):
    """A message was revoked (recalled).

    ``ref`` is the full reference when the vendor names everything a reference holds; Tencent's group
    recall callback names the group and the sequence but not the sender, so there it is None and
    :meth:`refers_to` compares what is known.
    """

    kind: Literal["message.revoked"] = "message.revoked"
    conversation: Conversation
    key: str
    """The provider's own message key (Tencent MsgKey or group MsgSeq, WuKongIM message_id)."""
    seq: int | None = None
    sender: str | None = None
    revoked_by: str | None = None
    ref: MessageRef | None = None

    def refers_to(self, ref: MessageRef) -> bool:
        """Whether this revoke is of the message ``ref`` names."""
        if ref.provider != self.provider or ref.key != self.key:
            return False
        if self.sender is not None and ref.sender != self.sender:
            return False
        return ref.conversation == self.conversation


class MemberJoined(BaseEvent):
    kind: Literal["member.joined"] = "member.joined"
    group_id: str
    user_id: str
    operator: str | None = None
    """Who added the member, when the vendor says (Tencent ``Operator_Account``)."""
    how: str | None = None
    """The vendor's own word for how (Tencent ``JoinType``: Apply, Invited)."""


class MemberLeft(BaseEvent):
    kind: Literal["member.left"] = "member.left"
    group_id: str
    user_id: str
    operator: str | None = None
    how: str | None = None
    """The vendor's own word for how (Tencent ``ExitType``: Quit, Kicked)."""


class GroupCreated(BaseEvent):
    kind: Literal["group.created"] = "group.created"
    group_id: str
    name: str | None = None
    owner: str | None = None
    members: list[str] = Field(default_factory=list)
    """The initial members the vendor lists (the owner may or may not be among them)."""
    operator: str | None = None


class GroupDismissed(BaseEvent):
    kind: Literal["group.dismissed"] = "group.dismissed"
    group_id: str
    operator: str | None = None


class GroupUpdated(BaseEvent):
    """A group's profile changed. ``changes`` holds only what changed, under the neutral field names
    of :class:`imbridge.Group` (``name``, ``introduction``, ``notification``, ``face_url``)."""

    kind: Literal["group.updated"] = "group.updated"
    group_id: str
    changes: dict[str, str] = Field(default_factory=dict)
    operator: str | None = None


class UserOnline(BaseEvent):
    kind: Literal["user.online"] = "user.online"
    user_id: str
    device: DeviceKind = DeviceKind.UNKNOWN
    platform: str | None = None
    """The vendor's own platform name or device flag, as sent."""


class UserOffline(BaseEvent):
    kind: Literal["user.offline"] = "user.offline"
    user_id: str
    device: DeviceKind = DeviceKind.UNKNOWN
    platform: str | None = None
    reason: str | None = None
    """The vendor's reason when it gives one (Tencent ``Logout``/``Disconnect`` with ``Reason``)."""


class ProfileUpdated(BaseEvent):
    """A user's profile changed. ``changes`` uses the field names of :class:`imbridge.Profile`
    (``nickname``, ``avatar_url``, ``gender``, ``signature``); app-defined keys are in ``custom``."""

    kind: Literal["profile.updated"] = "profile.updated"
    user_id: str
    changes: dict[str, str] = Field(default_factory=dict)
    custom: dict[str, str] = Field(default_factory=dict)
    operator: str | None = None

    @property
    def gender(self) -> Gender | None:
        value = self.changes.get("gender")
        return Gender(value) if value in {gender.value for gender in Gender} else None


class RecipientsOffline(BaseEvent):
    """A stored message some recipients could not get live (WuKongIM ``msg.offline``): the cue for an
    offline push. ``message`` is the same message a :class:`MessageCreated` reports."""

    kind: Literal["message.recipients_offline"] = "message.recipients_offline"
    message: Message
    recipients: list[str]


class MessageSending(BaseEvent):
    """A message about to be delivered, waiting for the app's decision (Tencent's before-send
    callbacks). ``on_before_send`` handlers receive it and answer :class:`Allow`, :class:`Refuse`
    or :class:`Rewrite`; it is never handed to ordinary event handlers."""

    kind: Literal["message.sending"] = "message.sending"
    sender: str
    conversation: Conversation
    elements: list[Element]
    metadata: dict[str, Any] = Field(default_factory=dict)


class UnknownEvent(BaseEvent):
    """Anything imbridge does not model, or a modelled callback that reports no change imbridge can
    name: never an exception. ``name`` is the vendor's event or command name; ``detail`` says why."""

    kind: Literal["unknown"] = "unknown"
    name: str
    detail: str = ""


Event = Annotated[
    MessageCreated
    | MessageRevoked
    | MemberJoined
    | MemberLeft
    | GroupCreated
    | GroupDismissed
    | GroupUpdated
    | UserOnline
    | UserOffline
    | ProfileUpdated
    | RecipientsOffline
    | MessageSending
    | UnknownEvent,
    Field(discriminator="kind"),
]
"""Any inbound event (a discriminated union on ``kind``)."""

EVENT_TYPES: tuple[type[BaseEvent], ...] = (
    MessageCreated, MessageRevoked, MemberJoined, MemberLeft, GroupCreated, GroupDismissed, GroupUpdated,
    UserOnline, UserOffline, ProfileUpdated, RecipientsOffline, MessageSending, UnknownEvent,
)  # fmt: skip

# -- before-send decisions ---------------------------------------------------------------------------


class Allow(BaseModel):
    """Deliver the message as sent."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["allow"] = "allow"


class Refuse(BaseModel):
    """Do not deliver the message; the sender's send fails with ``reason``.

    ``code`` is the vendor's refusal code when the app wants a specific one (Tencent: 1, or an app code
    in [120001, 130000] for one-to-one and [10100, 10200] for groups, which also passes ``reason`` to
    the sender); by default imbridge uses the first app code, so the reason reaches the sender.
    """

    model_config = ConfigDict(frozen=True)

    decision: Literal["refuse"] = "refuse"
    reason: str = ""
    code: int | None = None

    def __init__(self, reason: str = "", code: int | None = None) -> None:
        super().__init__(reason=reason, code=code)


class Rewrite(BaseModel):
    """Deliver this content instead (and, when given, this metadata)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["rewrite"] = "rewrite"
    content: list[Element]
    metadata: dict[str, Any] | None = None

    def __init__(self, content: str | Element | Sequence[Element], metadata: dict[str, Any] | None = None) -> None:
        if isinstance(content, str):
            elements: list[Any] = [Text(content)]
        elif isinstance(content, BaseModel):
            elements = [content]
        else:
            elements = list(content)
        super().__init__(content=elements, metadata=metadata)


Decision = Allow | Refuse | Rewrite
"""What an ``on_before_send`` handler answers."""
